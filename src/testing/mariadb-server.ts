// A real MariaDB server for tests: the throwaway server Amber's drills use (Debian's
// mariadb-server, a fresh data directory in a scratch folder, 127.0.0.1 only), with a
// password-protected user that holds every privilege and a client helper; stopped (and the folder
// removed) by stop().
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startScratchMariadb, whyNoScratchMariadb } from '../source/database/scratch-server.ts';

export const whyNoMariadb = whyNoScratchMariadb;

export interface MariadbServer {
  host: string;
  port: number;
  user: string;
  password: string;
  url(database?: string): string;
  /** Runs SQL as the privileged user; returns the tab-separated rows. */
  sql(text: string, database?: string): string;
  /** Ends the server at once (SIGKILL, as a crash would). */
  kill(): void;
  stop(): Promise<void>;
}

export async function startMariadb(): Promise<MariadbServer> {
  const dir = mkdtempSync(join(tmpdir(), 'amber-mariadb-'));
  chmodSync(dir, 0o711); // the mysql user, when root starts it, reaches its directory inside
  const server = await startScratchMariadb({ dir, user: 'amber_test', password: 'maria test password' });
  return {
    host: server.host,
    port: server.port,
    user: server.user,
    password: server.password,
    url: (database = '') => `mysql://${server.user}@127.0.0.1:${server.port}/${database}`,
    sql(text, database) {
      const result = spawnSync(
        'mariadb',
        [
          '--no-defaults',
          '--protocol=TCP',
          '-h',
          '127.0.0.1',
          '-P',
          String(server.port),
          '-u',
          server.user,
          '-N',
          '-B',
          ...(database ? [`--database=${database}`] : []),
        ],
        { input: text, encoding: 'utf8', env: { ...process.env, MYSQL_PWD: server.password } },
      );
      if (result.status !== 0) throw new Error(`mariadb failed: ${result.stderr}`);
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
