// bin/amber.js in a checkout, started by a Node older than 24 (the machine's, found on PATH): it
// hands over to the pinned Node 24, and must stay out of the way. A signal sent to it reaches the
// real amber (a `kill` of `vault serve` stops the server instead of orphaning it), and it ends as
// the real amber ended: with its exit status, or killed by the same signal.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync, readdirSync, realpathSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EXIT } from '../../src/cli/exit-status.ts';
import { removeTree } from '../../src/testing/repo-fixture.ts';

const BIN = fileURLToPath(new URL('../../bin/amber.js', import.meta.url));
const PINNED = realpathSync(fileURLToPath(new URL('../../node_modules/node/bin/node', import.meta.url)));

/** A `node` on PATH older than 24 (npm puts the pinned one first; it is skipped), or undefined. */
function olderNode(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, 'node');
    try {
      accessSync(candidate, constants.X_OK);
    } catch {
      continue;
    }
    if (realpathSync(candidate) === PINNED || realpathSync(candidate) === realpathSync(process.execPath)) continue;
    const version = spawnSync(candidate, ['-p', 'process.versions.node'], { encoding: 'utf8' }).stdout.trim();
    if (Number(version.split('.')[0]) < 24) return candidate;
  }
  return undefined;
}

const OLD_NODE = olderNode();
const skip = !OLD_NODE
  ? 'no Node older than 24 on PATH: the hand-over is not used'
  : !existsSync('/proc/self/stat')
    ? 'needs /proc to find the child'
    : false;
const dir = await mkdtemp(join(tmpdir(), 'amber-launcher-'));
const started: number[] = [];
after(async () => {
  for (const pid of started) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  await removeTree(dir);
});

const env = () => ({
  PATH: process.env.PATH,
  AMBER_PASSWORD: 'launcher pass',
  AMBER_KDF_LOG_N: '10',
  AMBER_CACHE_DIR: join(dir, 'cache'),
});

/** The pids whose parent is `pid` (from /proc/PID/stat; a zombie counts as gone). */
function childrenOf(pid: number): number[] {
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(ppid) === pid && state !== 'Z') found.push(Number(name));
    } catch {
      // ended meanwhile
    }
  }
  return found;
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function exited(child: ChildProcess, ms = 15_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve, reject) => {
    if (child.exitCode !== null || child.signalCode !== null)
      return resolve({ code: child.exitCode, signal: child.signalCode });
    const timer = setTimeout(() => reject(new Error(`the launcher did not exit within ${ms} ms`)), ms);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
  });
}

/** `amber vault serve` through the launcher on the older Node: the launcher, the real server's pid, its port. */
async function serve(name: string): Promise<{ launcher: ChildProcess; server: number; port: number }> {
  const launcher = spawn(OLD_NODE!, [BIN, 'vault', 'serve', '--data', join(dir, name), '--listen', '127.0.0.1:0'], {
    env: env(),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  started.push(launcher.pid!);
  let text = '';
  const port = await new Promise<number>((resolve, reject) => {
    launcher.stderr!.on('data', (chunk) => {
      text += chunk;
      const match = /at https?:\/\/127\.0\.0\.1:(\d+)/.exec(text);
      if (match) resolve(Number(match[1]));
    });
    launcher.once('exit', () => reject(new Error(`the vault exited: ${text}`)));
  });
  const children = childrenOf(launcher.pid!);
  assert.equal(children.length, 1, 'the launcher started one child');
  const server = children[0];
  started.push(server);
  const argv = readFileSync(`/proc/${server}/cmdline`, 'utf8').split('\0');
  assert.equal(realpathSync(argv[0]), PINNED, 'the child is the pinned Node 24');
  assert.ok(argv.includes('--max-semi-space-size=2'), `the child keeps the small young generation: ${argv.join(' ')}`);
  assert.ok(await portOpen(port), 'the server listens');
  return { launcher, server, port };
}

test('SIGTERM to the launcher stops the real vault server, and the launcher exits as the server did', {
  skip,
}, async () => {
  const { launcher, server, port } = await serve('term');
  launcher.kill('SIGTERM');
  // The vault stops cleanly on SIGTERM and exits 0, as it does when Node 24 runs it directly.
  assert.deepEqual(await exited(launcher), { code: EXIT.ok, signal: null });
  assert.equal(alive(server), false, 'the server process is gone, not orphaned');
  assert.equal(await portOpen(port), false, 'nothing listens on the port any more');
});

test('SIGINT from outside a terminal is passed on too', { skip }, async () => {
  const { launcher, server, port } = await serve('int');
  launcher.kill('SIGINT');
  assert.deepEqual(await exited(launcher), { code: EXIT.ok, signal: null });
  assert.equal(alive(server), false);
  assert.equal(await portOpen(port), false);
});

test('a signal that kills the real amber (the vault does not handle SIGHUP) kills the launcher the same way', {
  skip,
}, async () => {
  const { launcher, server, port } = await serve('hup');
  launcher.kill('SIGHUP');
  assert.deepEqual(await exited(launcher), { code: null, signal: 'SIGHUP' });
  assert.equal(alive(server), false);
  assert.equal(await portOpen(port), false);
});

test("the launcher exits with the real amber's exit status", {
  skip: OLD_NODE ? false : 'no Node older than 24 on PATH',
}, () => {
  const run = (args: string[]) => spawnSync(OLD_NODE!, [BIN, ...args], { encoding: 'utf8', env: env() });
  const missing = run(['snapshots', '--repo', join(dir, 'nonexistent')]);
  assert.equal(missing.status, EXIT.repoNotFound, missing.stderr);
  assert.match(missing.stderr, /REPO_NOT_FOUND/);
  const usage = run(['snapshots', '--no-such-option']);
  assert.equal(usage.status, EXIT.usage, usage.stderr);
  const version = run(['--version']);
  assert.equal(version.status, EXIT.ok, version.stderr);
  assert.equal(
    version.stdout.trim(),
    JSON.parse(readFileSync(fileURLToPath(new URL('../../package.json', import.meta.url)), 'utf8')).version,
  );
});
