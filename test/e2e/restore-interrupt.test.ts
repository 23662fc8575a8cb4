// A restore stopped part-way, as a user stops one: Ctrl-C (SIGINT) or kill -9 on the real process.
// No file under its final name may ever be wrong, and running the same restore again must finish it.
//
// To stop it part-way for certain, the test freezes the child (SIGSTOP) at a moment when a few but
// fewer than half of the large files have their final names, then sends the signal and lets it go
// on (SIGCONT): the signal lands while the restore still has work left.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { link, mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { removeTree } from '../../src/testing/repo-fixture.ts';
import { compareTrees } from '../../src/testing/tree-compare.ts';

const BIN = fileURLToPath(new URL('../../bin/amber.js', import.meta.url));
const PARTIAL = /^\.(?:.+\.)?amber-partial-[0-9a-f]{16}$/;
const LARGE_FILES = 48;
const LARGE_BYTES = 5 * 1024 * 1024;
let dir: string;
let repo: string;
let source: string;

const env = () => ({
  PATH: process.env.PATH,
  AMBER_PASSWORD: 'test passphrase',
  AMBER_KDF_LOG_N: '10',
  AMBER_REPO: repo,
  AMBER_CACHE_DIR: join(dir, 'cache'),
});

function amber(args: string[]) {
  const result = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: env() });
  return { status: result.status, stdout: String(result.stdout), stderr: String(result.stderr) };
}

/** Every file below `root`: partial files apart from the rest (relative names). */
function filesBelow(root: string): { complete: string[]; partial: string[] } {
  const complete: string[] = [];
  const partial: string[] = [];
  const visit = (path: string) => {
    let entries;
    try {
      entries = readdirSync(path, { withFileTypes: true });
    } catch {
      return; // not made yet
    }
    for (const entry of entries) {
      const full = join(path, entry.name);
      if (entry.isDirectory()) visit(full);
      else (PARTIAL.test(entry.name) ? partial : complete).push(relative(root, full));
    }
  };
  visit(root);
  return { complete, partial };
}

/** Asserts that every file under its final name in the restored tree is byte for byte the source's. */
async function assertNoWrongFile(restored: string): Promise<number> {
  const { complete } = filesBelow(restored);
  for (const name of complete) {
    assert.ok(
      (await readFile(join(restored, name))).equals(await readFile(join(source, name))),
      `${name} under its final name is whole and right`,
    );
  }
  return complete.length;
}

/** Starts a restore and freezes it while it is part-way: a few large files are there, most are still to come. */
async function restoreStoppedPartWay(target: string) {
  const child = spawn(process.execPath, [BIN, 'restore', 'latest', '--target', target], {
    env: env(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let stdout = '';
  child.stderr.on('data', (chunk) => (stderr += chunk));
  child.stdout.on('data', (chunk) => (stdout += chunk));
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  const restored = join(target, source);
  // Judged by final names only, whatever they hold, so the test stops any restore the same way.
  const largeAtFinalNames = () => filesBelow(restored).complete.filter((name) => name.startsWith('large/')).length;
  for (;;) {
    if (child.exitCode !== null) assert.fail(`the restore ended before it could be stopped part-way: ${stderr}`);
    const seen = largeAtFinalNames();
    if (seen >= 3 && seen < LARGE_FILES / 2) {
      child.kill('SIGSTOP');
      const frozen = largeAtFinalNames();
      if (frozen >= 3 && frozen < LARGE_FILES / 2) break;
      child.kill('SIGCONT');
    }
    await sleep(2);
  }
  return {
    restored,
    /** Sends `signal` to the frozen child, lets it run, and waits for it to end. */
    async stop(signal: NodeJS.Signals) {
      child.kill(signal);
      child.kill('SIGCONT');
      const [code, bySignal] = await exited;
      return { code, bySignal, stdout, stderr };
    },
  };
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'amber-interrupt-'));
  repo = join(dir, 'repo');
  source = join(dir, 'source');
  await mkdir(join(source, 'large'), { recursive: true });
  await mkdir(join(source, 'small', 'deeper'), { recursive: true });
  // Random content: every byte must come from the repository, none of it compresses away.
  for (let i = 0; i < LARGE_FILES; i++)
    await writeFile(join(source, 'large', `f${String(i).padStart(2, '0')}.bin`), randomBytes(LARGE_BYTES));
  for (let i = 0; i < 200; i++)
    await writeFile(join(source, 'small', i % 2 ? 'deeper' : '', `s${i}.txt`), randomBytes(100 + i * 37));
  await link(join(source, 'large', 'f00.bin'), join(source, 'small', 'hard-link-to-f00.bin'));
  assert.equal(amber(['init']).status, 0);
  const backup = amber(['backup', source]);
  assert.equal(backup.status, 0, backup.stderr);
});

after(() => removeTree(dir));

test('Ctrl-C during a restore leaves no wrong file under a final name, removes the partial files, exits 130, and a re-run finishes', async () => {
  const target = join(dir, 'target-sigint');
  const run = await restoreStoppedPartWay(target);
  const { code, bySignal, stderr } = await run.stop('SIGINT');
  assert.equal(bySignal, null, 'the restore handled the signal and exited');
  assert.equal(code, 130, stderr);
  assert.match(
    stderr,
    /the restore was interrupted: \d+ files are complete under their names(?:, \d+ partial files? removed)?; no file under its final name is incomplete \[INTERRUPTED\]/,
  );
  assert.match(stderr, /hint: run the same restore again to finish it/);
  assert.doesNotMatch(stderr, /unexpected error|at .*\.ts:\d+/);
  const { partial, complete } = filesBelow(run.restored);
  assert.deepEqual(partial, [], 'the partial files were removed');
  assert.ok(
    complete.filter((name) => name.startsWith('large/')).length < LARGE_FILES,
    'the restore stopped before the end',
  );
  assert.equal(await assertNoWrongFile(run.restored), complete.length);

  const again = amber(['restore', 'latest', '--target', target]);
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stdout, /files were already restored \(same size, mode and time\) and were kept/);
  assert.deepEqual(await compareTrees(source, run.restored), []);
  assert.deepEqual(filesBelow(run.restored).partial, []);
});

test('kill -9 during a restore leaves no wrong file under a final name, and a re-run removes its partial files and finishes', async () => {
  const target = join(dir, 'target-sigkill');
  const run = await restoreStoppedPartWay(target);
  const { bySignal } = await run.stop('SIGKILL');
  assert.equal(bySignal, 'SIGKILL');
  await assertNoWrongFile(run.restored);
  const left = filesBelow(run.restored).partial;
  assert.ok(left.length > 0, 'a killed restore cannot clean up: its partial files are still there');

  const again = amber(['restore', 'latest', '--target', target]);
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stdout, new RegExp(`removed ${left.length} partial files left by an interrupted restore`));
  assert.deepEqual(await compareTrees(source, run.restored), []);
  assert.deepEqual(filesBelow(run.restored).partial, []);
  assert.deepEqual(
    (await readdir(target)).filter((name) => PARTIAL.test(name)),
    [],
  );
});
