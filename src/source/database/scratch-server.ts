// A throwaway database server: a fresh PostgreSQL cluster or MariaDB data directory in a scratch
// directory, listening on a free port of 127.0.0.1 only, with a superuser and a random password,
// started from the server binaries installed on this host and removed by stop(). A database drill
// restores its snapshot into one (so the RTO covers "the database answers"), and the tests run
// their real servers on it. Neither server runs as root, nor as the `postgres` or `mysql` account
// that owns the host's own databases: a restored database's code runs with superuser rights inside
// the throwaway server (COPY … TO PROGRAM, SELECT … INTO OUTFILE), so as root the server runs as an
// account that owns nothing: `amber-drill` where it exists, else `nobody`. Its environment holds
// nothing of Amber's (no AMBER_PASSWORD for a restored function to read).
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  appendFileSync,
  chownSync,
  existsSync,
  mkdirSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { userInfo } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AmberError } from '../../core/errors.ts';

export interface ScratchServer {
  kind: 'postgresql' | 'mysql';
  host: '127.0.0.1';
  port: number;
  /** The superuser, and its password (give it to the tools as AMBER_SOURCE_PASSWORD would be). */
  user: string;
  password: string;
  /** The server's version as its binaries report it, e.g. "15.14" or "10.11.11-MariaDB". */
  version: string;
  /** SCHEME://USER@127.0.0.1:PORT/DB, without the password. */
  url(database?: string): string;
  /** Ends the server at once, as a crash would (its directory stays until stop()). */
  kill(): void;
  /** Stops the server and removes its directory (`keepFiles`: leaves it, to be looked at). */
  stop(options?: { keepFiles?: boolean }): Promise<void>;
}

export interface ScratchOptions {
  /** An existing directory the server's own directory is made in (it must be traversable by the service user when root). */
  dir: string;
  user?: string;
  password?: string;
}

const asRoot = () => process.getuid?.() === 0;

/** The account a throwaway server runs as when root starts it: one that owns nothing. */
function serviceAccount(): { name: string; uid: number; gid: number } | undefined {
  for (const name of ['amber-drill', 'nobody']) {
    const found = account(name);
    if (found) return { name, ...found };
  }
  return undefined;
}

/** The servers' and their setup tools' environment: a PATH and the C locale, nothing of the caller's. */
const serverEnv = (): NodeJS.ProcessEnv => ({
  PATH: process.env.PATH ?? '/usr/bin:/bin',
  LANG: 'C',
  LC_ALL: 'C',
});

/** uid and gid of a system user, or undefined when there is none. */
function account(name: string): { uid: number; gid: number } | undefined {
  const uid = spawnSync('id', ['-u', name], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', name], { encoding: 'utf8' });
  if (uid.status !== 0 || gid.status !== 0) return undefined;
  return { uid: Number(uid.stdout), gid: Number(gid.stdout) };
}

/** A port of 127.0.0.1 free at this moment (a server started on it may still lose a race: retry). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A program on PATH or in one of the usual places, or undefined. */
function findProgram(name: string, places: string[] = []): string | undefined {
  const dirs = [...places, ...(process.env.PATH ?? '').split(delimiter).filter(Boolean), '/usr/sbin', '/sbin'];
  return dirs.map((dir) => join(dir, name)).find((path) => existsSync(path));
}

const versionOf = (program: string): string =>
  /(\d+(?:\.\d+)+(?:-MariaDB)?)/.exec(spawnSync(program, ['--version'], { encoding: 'utf8' }).stdout ?? '')?.[1] ?? '0';

const lastLines = (text: string | null | undefined, n = 3): string =>
  (text ?? '').trim().split('\n').filter(Boolean).slice(-n).join(' ').replace(/\s+/g, ' ');

/** mariadb-install-db ends a failure with a page of advice: the first line that says ERROR is the news. */
const firstError = (text: string | null | undefined): string =>
  (text ?? '')
    .split('\n')
    .find((line) => /\bERROR\b|\[ERROR\]/i.test(line))
    ?.trim() ?? lastLines(text);

/**
 * As root, the server's own user must pass through every directory above its own: the first one
 * it cannot (not searchable by others), or undefined.
 */
export function blockedAncestor(dir: string): string | undefined {
  if (!asRoot()) return undefined;
  for (let path = dir; ; path = dirname(path)) {
    const stats = statSync(path);
    if ((stats.mode & 0o001) === 0) return path;
    if (path === dirname(path)) return undefined;
  }
}

function checkReachable(dir: string, serviceUser: string): void {
  const blocked = blockedAncestor(dir);
  if (blocked)
    throw new AmberError(
      'USAGE',
      `the throwaway server runs as the ${serviceUser} user, which cannot pass through ${blocked} (not searchable by others)`,
      { hint: `chmod o+x ${blocked}, or give a scratch directory under one it can pass through (such as /var/tmp)` },
    );
}

// --- PostgreSQL ---------------------------------------------------------------------------------

/** Directories holding initdb, pg_ctl and postgres, newest major version first. */
let foundBinDirs: { dir: string; version: string }[] | undefined;
function postgresBinDirs(): { dir: string; version: string }[] {
  foundBinDirs ??= findPostgresBinDirs();
  return foundBinDirs;
}

/** Looked for once a process: each candidate's `postgres --version` is a program started. */
function findPostgresBinDirs(): { dir: string; version: string }[] {
  const dirs: string[] = [];
  for (const base of ['/usr/lib/postgresql', '/usr/local/pgsql']) {
    if (!existsSync(base)) continue;
    for (const name of readdirSync(base)) dirs.push(join(base, name, 'bin'));
  }
  if (existsSync('/usr'))
    for (const name of readdirSync('/usr')) if (/^pgsql-\d+$/.test(name)) dirs.push(join('/usr', name, 'bin'));
  const onPath = findProgram('initdb');
  if (onPath) dirs.push(join(onPath, '..'));
  const usable = [...new Set(dirs)]
    .filter((dir) => ['initdb', 'pg_ctl', 'postgres'].every((p) => existsSync(join(dir, p))))
    .map((dir) => ({ dir, version: versionOf(join(dir, 'postgres')) }));
  const major = (v: string) => Number.parseFloat(v) || 0;
  return usable.sort((a, b) => major(b.version) - major(a.version));
}

/** The newest installed PostgreSQL's bin directory (initdb, pg_ctl, postgres, and usually its clients), if any. */
export const postgresBinDir = (): string | undefined => postgresBinDirs()[0]?.dir;

/** Why no throwaway PostgreSQL server can be started here, or undefined when one can. */
export function whyNoScratchPostgres(): string | undefined {
  if (postgresBinDirs().length === 0)
    return 'the PostgreSQL server binaries (initdb, pg_ctl, postgres) are not installed: apt-get install postgresql';
  if (asRoot() && !serviceAccount())
    return 'PostgreSQL does not run as root, and there is neither an amber-drill nor a nobody account to run it as (useradd --system amber-drill)';
  return undefined;
}

export async function startScratchPostgres(options: ScratchOptions): Promise<ScratchServer> {
  const why = whyNoScratchPostgres();
  if (why) throw new AmberError('SOURCE_TOOL_MISSING', `no throwaway PostgreSQL server: ${why}`);
  const [{ dir: bin, version }] = postgresBinDirs();
  const owner = asRoot() ? serviceAccount() : undefined;
  if (owner) checkReachable(options.dir, owner.name);
  const home = join(options.dir, 'postgresql');
  mkdirSync(home, { mode: 0o700 });
  const user = options.user ?? 'amber_drill';
  const password = options.password ?? randomBytes(18).toString('base64url');
  const passwordFile = join(home, 'password');
  writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
  if (owner) {
    chownSync(home, owner.uid, owner.gid);
    chownSync(passwordFile, owner.uid, owner.gid);
  }
  const run = (program: string, args: string[]) => {
    const argv = owner
      ? ['runuser', '-u', owner.name, '--', join(bin, program), ...args]
      : [join(bin, program), ...args];
    const result = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', cwd: home, env: serverEnv() });
    if (result.status !== 0)
      throw new AmberError(
        'SOURCE_FAILED',
        `${program} of the throwaway PostgreSQL server failed: ${lastLines(result.stderr) || lastLines(result.stdout) || result.error?.message}`,
        { hint: `its directory is ${home}` },
      );
    return result.stdout;
  };
  const data = join(home, 'data');
  // The C locale works with every encoding on every system; a collation the dump names must exist here too.
  run('initdb', ['-D', data, '-U', user, '--pwfile', passwordFile, '-A', 'scram-sha-256', '-E', 'UTF8', '--locale=C']);
  rmSync(passwordFile);
  let port = 0;
  for (let attempt = 0; ; attempt++) {
    port = await freePort();
    // TCP on 127.0.0.1 only, no Unix socket; durability off: the cluster is thrown away.
    appendFileSync(
      join(data, 'postgresql.conf'),
      `\n# amber throwaway server\nport = ${port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\nfsync = off\nfull_page_writes = off\nsynchronous_commit = off\n`,
    );
    try {
      run('pg_ctl', ['-D', data, '-l', join(home, 'log'), '-w', '-t', '120', 'start']);
      break;
    } catch (error) {
      // Another process took the port between the probe and the start: try another, twice.
      if (attempt >= 2) throw error;
    }
  }
  let stopped = false;
  const shutdown = (mode: 'immediate' | 'fast') => {
    if (stopped) return;
    stopped = true;
    run('pg_ctl', ['-D', data, '-m', mode, '-w', 'stop']);
  };
  return {
    kind: 'postgresql',
    host: '127.0.0.1',
    port,
    user,
    password,
    version,
    url: (database = 'postgres') =>
      `postgresql://${encodeURIComponent(user)}@127.0.0.1:${port}/${encodeURIComponent(database)}`,
    kill: () => shutdown('immediate'),
    async stop(options) {
      try {
        shutdown('fast');
      } finally {
        if (!options?.keepFiles) rmSync(home, { recursive: true, force: true });
      }
    },
  };
}

// --- MariaDB ------------------------------------------------------------------------------------

const mariadbd = () => ['mariadbd', 'mysqld'].map((name) => findProgram(name)).find(Boolean);

export function whyNoScratchMariadb(): string | undefined {
  const server = mariadbd();
  if (!server || !findProgram('mariadb-install-db'))
    return 'the MariaDB server (mariadbd, mariadb-install-db) is not installed: apt-get install mariadb-server';
  if (!versionOf(server).endsWith('-MariaDB'))
    return `${server} is not MariaDB's server (MySQL's is not supported as a throwaway server yet)`;
  if (asRoot() && !serviceAccount())
    return 'running as root, and there is neither an amber-drill nor a nobody account to run MariaDB as (useradd --system amber-drill)';
  return undefined;
}

export async function startScratchMariadb(options: ScratchOptions): Promise<ScratchServer> {
  const why = whyNoScratchMariadb();
  if (why) throw new AmberError('SOURCE_TOOL_MISSING', `no throwaway MariaDB server: ${why}`);
  const server = mariadbd()!;
  const version = versionOf(server);
  const owner = asRoot() ? serviceAccount() : undefined;
  const osUser = owner ? owner.name : userInfo().username;
  if (owner) checkReachable(options.dir, owner.name);
  const home = join(options.dir, 'mariadb');
  mkdirSync(home, { mode: 0o700 });
  if (owner) chownSync(home, owner.uid, owner.gid);
  const data = join(home, 'data');
  const user = options.user ?? 'amber_drill';
  const password = options.password ?? randomBytes(18).toString('base64url');
  const quote = (text: string) => `'${text.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
  const installed = spawnSync(
    findProgram('mariadb-install-db')!,
    [
      '--no-defaults',
      `--user=${osUser}`,
      `--datadir=${data}`,
      '--auth-root-authentication-method=socket',
      '--skip-test-db',
    ],
    { encoding: 'utf8', env: serverEnv() },
  );
  if (installed.status !== 0)
    throw new AmberError(
      'SOURCE_FAILED',
      `mariadb-install-db of the throwaway MariaDB server failed: ${firstError(installed.stderr) || lastLines(installed.stdout)}`,
      { hint: `its directory is ${home}` },
    );
  // The superuser, made by the server itself at start: no login over the socket is needed.
  const initFile = join(home, 'init.sql');
  writeFileSync(
    initFile,
    `CREATE USER IF NOT EXISTS ${quote(user)}@'127.0.0.1' IDENTIFIED BY ${quote(password)};\nGRANT ALL PRIVILEGES ON *.* TO ${quote(user)}@'127.0.0.1' WITH GRANT OPTION;\n`,
    { mode: 0o600 },
  );
  if (owner) chownSync(initFile, owner.uid, owner.gid);
  // LOAD DATA and SELECT … INTO OUTFILE reach this empty directory only.
  const files = join(home, 'files');
  mkdirSync(files, { mode: 0o700 });
  if (owner) chownSync(files, owner.uid, owner.gid);
  const port = await freePort();
  const child: ChildProcess = spawn(
    server,
    [
      '--no-defaults',
      `--user=${osUser}`,
      `--datadir=${data}`,
      `--socket=${join(home, 'sock')}`,
      `--port=${port}`,
      '--bind-address=127.0.0.1',
      `--pid-file=${join(home, 'pid')}`,
      `--log-error=${join(home, 'error.log')}`,
      `--init-file=${initFile}`,
      `--secure-file-priv=${files}`,
      '--innodb-flush-log-at-trx-commit=0',
      '--skip-name-resolve',
    ],
    // A group of its own: a Ctrl-C at the terminal is Amber's to handle (it stops the server).
    { stdio: 'ignore', env: serverEnv(), detached: true },
  );
  let exited = false;
  const gone = new Promise<void>((resolve) =>
    child.on('exit', () => {
      exited = true;
      resolve();
    }),
  );
  child.on('error', () => {
    exited = true;
  });
  const admin = findProgram('mariadb-admin') ?? findProgram('mysqladmin');
  const ping = () =>
    spawnSync(
      admin ?? 'mariadb-admin',
      [
        '--no-defaults',
        '--protocol=TCP',
        '-h',
        '127.0.0.1',
        '-P',
        String(port),
        '-u',
        user,
        '--connect-timeout=2',
        'ping',
      ],
      { env: { ...process.env, MYSQL_PWD: password }, stdio: 'ignore' },
    ).status === 0;
  for (let i = 0; !ping(); i++) {
    if (exited || i > 1200) {
      child.kill('SIGKILL');
      throw new AmberError(
        'SOURCE_FAILED',
        `the throwaway MariaDB server ${exited ? 'exited as it started' : 'did not answer within 120 s'}`,
        { hint: `its log is ${join(home, 'error.log')}` },
      );
    }
    await sleep(100);
  }
  rmSync(initFile, { force: true }); // it holds the password, and is read at start only
  return {
    kind: 'mysql',
    host: '127.0.0.1',
    port,
    user,
    password,
    version,
    url: (database = '') => `mysql://${encodeURIComponent(user)}@127.0.0.1:${port}/${encodeURIComponent(database)}`,
    kill() {
      child.kill('SIGKILL');
    },
    async stop(options) {
      if (!exited) {
        child.kill('SIGTERM');
        await Promise.race([gone, sleep(60_000, undefined, { ref: false })]);
        if (!exited) child.kill('SIGKILL');
        await gone;
      }
      if (!options?.keepFiles) rmSync(home, { recursive: true, force: true });
    },
  };
}

/** A throwaway server of the kind a database snapshot holds. */
export function startScratchServer(kind: 'postgresql' | 'mysql', options: ScratchOptions): Promise<ScratchServer> {
  return kind === 'postgresql' ? startScratchPostgres(options) : startScratchMariadb(options);
}

export function whyNoScratchServer(kind: 'postgresql' | 'mysql'): string | undefined {
  return kind === 'postgresql' ? whyNoScratchPostgres() : whyNoScratchMariadb();
}
