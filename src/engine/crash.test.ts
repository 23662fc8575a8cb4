// Killing a backup at any point leaves a repository that verifies: objects appear whole under their
// final names or not at all, and an unfinished backup leaves only unreferenced data behind.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sha256Hex } from '../crypto/index.ts';
import { hashOfName, packName } from '../repo/layout.ts';
import { asPackId } from '../core/ids.ts';
import { compareTrees } from '../testing/tree-compare.ts';
import {
  createTestRepo,
  listNames,
  makeTempDir,
  openTestRepo,
  removeTree,
  seededBytes,
  seededRandom,
  SMALL_CHUNKER,
  TEST_PASSPHRASE,
} from '../testing/repo-fixture.ts';
import type { BackupChildRequest } from '../testing/backup-child.ts';
import { backup, type BackupResult } from './backup.ts';
import { restore } from './restore.ts';
import { findSnapshot, listSnapshots } from './snapshots.ts';
import { verify } from './verify.ts';
import type { Operation } from '../governance/operation.ts';

const KiB = 1024;
// The child runs on the same Node as the tests (the project's pinned Node 24).
const NODE = process.execPath;
const CHILD = fileURLToPath(new URL('../testing/backup-child.ts', import.meta.url));
const ITERATIONS = 6;
/** A child's backup of one iteration's new data takes roughly this long once the repository is open. */
const BACKUP_WINDOW_MS = 700;

let root = '';
let source = '';
let repoPath = '';
let repo: Operation;
let first: BackupResult;

before(async () => {
  root = await makeTempDir('crash');
  source = join(root, 'src');
  await fs.mkdir(join(source, 'base'), { recursive: true });
  for (let i = 0; i < 4; i++)
    await fs.writeFile(join(source, 'base', `b${i}.bin`), seededBytes(200 * KiB, `base-${i}`));
  repoPath = join(root, 'repo');
  // Small packs, so each backup makes many puts and a kill can land between any two of them.
  repo = await createTestRepo(repoPath, { chunker: SMALL_CHUNKER, packTargetBytes: 128 * KiB });
  first = await backup({ repo, paths: [source] });
});

after(async () => {
  await removeTree(root);
});

interface ChildOutcome {
  signal: NodeJS.Signals | null;
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a backup in a child. With `killAfterMs` the parent SIGKILLs it that long after it has opened
 * the repository; with `killAfterPuts` the child SIGKILLs itself right after that many puts.
 */
async function runChild(options: { killAfterMs?: number; killAfterPuts?: number }): Promise<ChildOutcome> {
  const request: BackupChildRequest = {
    repo: repoPath,
    passphrase: TEST_PASSPHRASE,
    paths: [source],
    killAfterPuts: options.killAfterPuts,
  };
  const child = spawn(NODE, [CHILD, JSON.stringify(request)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const outcome: ChildOutcome = { signal: null, status: null, stdout: '', stderr: '' };
  child.stderr.on('data', (piece) => {
    outcome.stderr += piece;
  });
  child.stdout.on('data', (piece) => {
    const wasReady = outcome.stdout.includes('ready\n');
    outcome.stdout += piece;
    if (!wasReady && outcome.stdout.includes('ready\n') && options.killAfterMs !== undefined) {
      setTimeout(() => child.kill('SIGKILL'), options.killAfterMs);
    }
  });
  await new Promise<void>((resolve) =>
    child.on('close', (status, signal) => {
      outcome.status = status;
      outcome.signal = signal;
      resolve();
    }),
  );
  return outcome;
}

test('backups killed at random points leave a repository that verifies, restores and takes the next backup', async (t) => {
  const random = seededRandom(20240611);
  let interruptedAfterWriting = 0;
  let killed = 0;
  for (let iteration = 0; iteration < ITERATIONS; iteration++) {
    // New data each time, so every backup has packs to write.
    const dir = join(source, `new-${iteration}`);
    await fs.mkdir(dir);
    for (let i = 0; i < 6; i++)
      await fs.writeFile(join(dir, `n${i}.bin`), seededBytes(160 * KiB, `new-${iteration}-${i}`));
    const packsBefore = (await listNames(repo.store, 'data/')).length;
    const snapshotsBefore = (await listNames(repo.store, 'snapshots/')).length;

    const outcome =
      iteration % 2 === 0
        ? await runChild({ killAfterMs: Math.floor(random() * BACKUP_WINDOW_MS) })
        : await runChild({ killAfterPuts: 1 + Math.floor(random() * 12) });
    if (outcome.signal === 'SIGKILL') killed += 1;
    else assert.equal(outcome.status, 0, `the child failed: ${outcome.stdout}${outcome.stderr}`);

    const packsAfter = (await listNames(repo.store, 'data/')).length;
    const snapshotsAfter = (await listNames(repo.store, 'snapshots/')).length;
    if (outcome.signal === 'SIGKILL' && packsAfter > packsBefore && snapshotsAfter === snapshotsBefore)
      interruptedAfterWriting += 1;
    await checkEveryObjectMatchesItsName();
  }
  t.diagnostic(
    `${killed} of ${ITERATIONS} backups killed, ${interruptedAfterWriting} after storing packs and before the snapshot`,
  );
  assert.ok(killed >= ITERATIONS / 2, `${killed} of ${ITERATIONS} children were killed`);
  assert.ok(
    interruptedAfterWriting >= 1,
    'at least one backup was killed after it had stored packs and before its snapshot',
  );

  const reopened = await openTestRepo(repoPath);
  const result = await verify({ repo: reopened, readDataFraction: 1 });
  assert.deepEqual(result.problems, []);
  assert.equal(result.packsRead, result.packs, 'every pack, referenced or left over, was read');

  // The snapshot from before the crashes restores exactly.
  const target = join(root, 'target-first');
  const restored = await restore({ repo: reopened, snapshot: await findSnapshot(reopened, first.snapshotId), target });
  assert.deepEqual(restored.errors, []);
  assert.deepEqual(await fs.readdir(join(target, source)), ['base']);
  assert.deepEqual(await compareTrees(join(source, 'base'), join(target, source, 'base')), []);

  // Every snapshot a child did complete verifies (above) and restores without errors.
  for (const entry of await listSnapshots(reopened)) {
    const out = join(root, `target-${entry.id.slice(0, 8)}`);
    assert.deepEqual((await restore({ repo: reopened, snapshot: entry, target: out })).errors, []);
  }

  // The next backup completes and holds everything.
  const next = await backup({ repo: reopened, paths: [source] });
  assert.equal(next.partial, false);
  const finalTarget = join(root, 'target-final');
  assert.deepEqual(
    (await restore({ repo: reopened, snapshot: await findSnapshot(reopened, next.snapshotId), target: finalTarget }))
      .errors,
    [],
  );
  assert.deepEqual(await compareTrees(source, join(finalTarget, source)), []);
  assert.deepEqual((await verify({ repo: reopened, readDataFraction: 1 })).problems, []);
});

/** No object under data/, index/ or snapshots/ is partial: each one's bytes hash to its name. */
async function checkEveryObjectMatchesItsName(): Promise<void> {
  for (const prefix of ['data/', 'index/', 'snapshots/']) {
    for (const name of await listNames(repo.store, prefix)) {
      const hash = hashOfName(name);
      assert.ok(hash, `${name} is a content-addressed name`);
      if (prefix === 'data/') assert.equal(name, packName(asPackId(hash)));
      assert.equal(sha256Hex(await repo.store.get(name)), hash, `${name} holds exactly the bytes it is named for`);
    }
  }
}
