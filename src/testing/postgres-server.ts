// A real PostgreSQL server for tests: the throwaway server Amber's drills use (Debian's
// postgresql-15 binaries, a fresh cluster in a scratch directory, 127.0.0.1 only), with a
// password-protected superuser and a psql helper; stopped (and its directory removed) by stop().
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { postgresBinDir, startScratchPostgres, whyNoScratchPostgres } from '../source/database/scratch-server.ts';

export const whyNoPostgres = whyNoScratchPostgres;
export const PG_BIN = postgresBinDir();

export interface PostgresServer {
  host: string;
  port: number;
  user: string;
  password: string;
  /** postgresql://USER@127.0.0.1:PORT/DB (no password in it). */
  url(database?: string): string;
  /** Runs SQL with psql as the superuser; returns its unaligned, tuples-only output. */
  sql(text: string, database?: string): string;
  /** Stops the server at once (an immediate shutdown, as a crash would). */
  kill(): void;
  stop(): Promise<void>;
}

export async function startPostgres(): Promise<PostgresServer> {
  const dir = mkdtempSync(join(tmpdir(), 'amber-pg-'));
  chmodSync(dir, 0o711); // the postgres user, when root starts it, reaches its directory inside
  const server = await startScratchPostgres({ dir, user: 'amber_test', password: 'pg test password' });
  const env = {
    ...process.env,
    PGPASSWORD: server.password,
    PGHOST: '127.0.0.1',
    PGPORT: String(server.port),
    PGUSER: server.user,
  };
  return {
    host: server.host,
    port: server.port,
    user: server.user,
    password: server.password,
    url: (database = 'postgres') => `postgresql://${server.user}@127.0.0.1:${server.port}/${database}`,
    sql(text, database = 'postgres') {
      const result = spawnSync('psql', ['-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-d', database], {
        input: text,
        encoding: 'utf8',
        env,
      });
      if (result.status !== 0) throw new Error(`psql failed: ${result.stderr}`);
      return result.stdout.trim();
    },
    kill: () => server.kill(),
    async stop() {
      try {
        await server.stop();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
