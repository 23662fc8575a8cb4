// A real MariaDB server for tests: Debian's mariadb-server, a fresh data directory in a scratch
// folder, listening on a free port of 127.0.0.1 only (and a socket in that folder), with a
// password-protected user; stopped (and the folder removed) by stop(). As root the server runs as
// the `mysql` user the package creates.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const MARIADBD = ['/usr/sbin/mariadbd', '/usr/sbin/mysqld'].find((path) => existsSync(path));

export function whyNoMariadb(): string | undefined {
  if (!MARIADBD) return 'the MariaDB server is not installed (apt-get install mariadb-server)';
  if (spawnSync('mariadb-install-db', ['--help']).error) return 'mariadb-install-db is not installed';
  if (process.getuid?.() === 0 && spawnSync('id', ['-u', 'mysql']).status !== 0)
    return 'running as root, and there is no mysql user to run the server as';
  return undefined;
}

export interface MariadbServer {
  host: string;
  port: number;
  user: string;
  password: string;
  url(database?: string): string;
  /** Runs SQL as root over the socket; returns the tab-separated rows. */
  sql(text: string, database?: string): string;
  /** Ends the server at once (SIGKILL, as a crash would). */
  kill(): void;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export async function startMariadb(): Promise<MariadbServer> {
  if (!MARIADBD) throw new Error(whyNoMariadb());
  const dir = mkdtempSync(join(tmpdir(), 'amber-mariadb-'));
  const asRoot = process.getuid?.() === 0;
  const owner = asRoot ? 'mysql' : (process.env.USER ?? 'nobody');
  if (asRoot) {
    const uid = Number(spawnSync('id', ['-u', 'mysql'], { encoding: 'utf8' }).stdout);
    const gid = Number(spawnSync('id', ['-g', 'mysql'], { encoding: 'utf8' }).stdout);
    chownSync(dir, uid, gid);
  }
  const data = join(dir, 'data');
  const socket = join(dir, 'sock');
  const installed = spawnSync(
    'mariadb-install-db',
    [
      '--no-defaults',
      `--user=${owner}`,
      `--datadir=${data}`,
      '--auth-root-authentication-method=socket',
      '--skip-test-db',
    ],
    { encoding: 'utf8' },
  );
  if (installed.status !== 0) throw new Error(`mariadb-install-db failed: ${installed.stderr}${installed.stdout}`);
  const port = await freePort();
  const server: ChildProcess = spawn(
    MARIADBD,
    [
      '--no-defaults',
      `--user=${owner}`,
      `--datadir=${data}`,
      `--socket=${socket}`,
      `--port=${port}`,
      '--bind-address=127.0.0.1',
      `--pid-file=${join(dir, 'pid')}`,
      `--log-error=${join(dir, 'error.log')}`,
      '--innodb-flush-log-at-trx-commit=0',
      '--skip-name-resolve',
    ],
    { stdio: 'ignore' },
  );
  let exited = false;
  server.on('exit', () => {
    exited = true;
  });
  const root = (text: string, database?: string) => {
    const result = spawnSync(
      'mariadb',
      [
        '--no-defaults',
        `--socket=${socket}`,
        '-u',
        'root',
        '-N',
        '-B',
        ...(database ? [`--database=${database}`] : []),
      ],
      {
        input: text,
        encoding: 'utf8',
      },
    );
    if (result.status !== 0) throw new Error(`mariadb failed: ${result.stderr}`);
    return result.stdout.trim();
  };
  for (let i = 0; ; i++) {
    if (exited) throw new Error(`mariadbd exited at start; see ${join(dir, 'error.log')}`);
    if (spawnSync('mariadb-admin', ['--no-defaults', `--socket=${socket}`, '-u', 'root', 'ping']).status === 0) break;
    if (i > 300) throw new Error('mariadbd did not start within 30 s');
    await sleep(100);
  }
  const user = 'amber_test';
  const password = 'maria test password';
  root(
    `create user '${user}'@'127.0.0.1' identified by '${password}'; grant all on *.* to '${user}'@'127.0.0.1' with grant option;`,
  );
  return {
    host: '127.0.0.1',
    port,
    user,
    password,
    url: (database = '') => `mysql://${user}@127.0.0.1:${port}/${database}`,
    sql: root,
    kill() {
      server.kill('SIGKILL');
    },
    async stop() {
      if (!exited) {
        server.kill('SIGTERM');
        for (let i = 0; i < 300 && !exited; i++) await sleep(100);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
