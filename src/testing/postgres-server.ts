// A real PostgreSQL server for tests: Debian's binaries (postgresql-15), a fresh cluster in a
// scratch directory, listening on a free port of 127.0.0.1 only, with a password-protected
// superuser; stopped (and its directory removed) by stop(). PostgreSQL refuses to run as root, so
// as root the cluster belongs to the `postgres` user the package creates.
import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const PG_BIN = (() => {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return undefined;
  const versions = readdirSync(base)
    .filter((v) => existsSync(join(base, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions.length ? join(base, versions[0], 'bin') : undefined;
})();

export function whyNoPostgres(): string | undefined {
  if (!PG_BIN) return 'PostgreSQL server binaries are not installed (apt-get install postgresql-15)';
  if (process.getuid?.() === 0 && spawnSync('id', ['-u', 'postgres']).status !== 0)
    return 'running as root, and there is no postgres user to run the server as';
  return undefined;
}

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
  stop(): void;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export async function startPostgres(): Promise<PostgresServer> {
  if (!PG_BIN) throw new Error(whyNoPostgres());
  const dir = mkdtempSync(join(tmpdir(), 'amber-pg-'));
  const asRoot = process.getuid?.() === 0;
  const uid = asRoot ? Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout) : undefined;
  const gid = asRoot ? Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout) : undefined;
  const user = 'amber_test';
  const password = 'pg test password';
  writeFileSync(join(dir, 'pw'), `${password}\n`);
  if (uid !== undefined && gid !== undefined) {
    chownSync(dir, uid, gid);
    chownSync(join(dir, 'pw'), uid, gid);
  }
  const run = (command: string, args: string[]) => {
    const argv = asRoot
      ? ['runuser', '-u', 'postgres', '--', join(PG_BIN!, command), ...args]
      : [join(PG_BIN!, command), ...args];
    const result = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', cwd: dir });
    if (result.status !== 0) throw new Error(`${command} failed: ${result.stderr}${result.stdout}`);
    return result.stdout;
  };
  run('initdb', [
    '-D',
    join(dir, 'data'),
    '-U',
    user,
    '--pwfile',
    join(dir, 'pw'),
    '-A',
    'scram-sha-256',
    '-E',
    'UTF8',
    '--locale=C.UTF-8',
  ]);
  const port = await freePort();
  run('pg_ctl', [
    '-D',
    join(dir, 'data'),
    '-l',
    join(dir, 'log'),
    '-w',
    '-o',
    `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off`,
    'start',
  ]);
  const env = { ...process.env, PGPASSWORD: password, PGHOST: '127.0.0.1', PGPORT: String(port), PGUSER: user };
  let stopped = false;
  const shutdown = (mode: 'immediate' | 'fast') => {
    if (stopped) return;
    stopped = true;
    try {
      run('pg_ctl', ['-D', join(dir, 'data'), '-m', mode, '-w', 'stop']);
    } finally {
      if (mode === 'fast') rmSync(dir, { recursive: true, force: true });
    }
  };
  return {
    host: '127.0.0.1',
    port,
    user,
    password,
    url: (database = 'postgres') => `postgresql://${user}@127.0.0.1:${port}/${database}`,
    sql(text, database = 'postgres') {
      const result = spawnSync(join(PG_BIN!, 'psql'), ['-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-d', database], {
        input: text,
        encoding: 'utf8',
        env,
      });
      if (result.status !== 0) throw new Error(`psql failed: ${result.stderr}`);
      return result.stdout.trim();
    },
    kill: () => shutdown('immediate'),
    stop() {
      if (stopped) return void rmSync(dir, { recursive: true, force: true });
      shutdown('fast');
    },
  };
}
