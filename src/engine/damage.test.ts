// Bad input and damaged repositories: every failure is a clear AmberError naming the object, damage
// is reported and never silently used, and whatever is intact still restores.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, promises as fs } from 'node:fs';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { systemClock } from '../core/clock.ts';
import type { PackId, TreeId } from '../core/ids.ts';
import {
  alterObjectFile,
  createTestRepo,
  flipByte,
  liftAttributes,
  listNames,
  makeTempDir,
  openTestRepo,
  rejectsWithCode,
  removeTree,
  seededBytes,
  NOBODY,
  SMALL_CHUNKER,
  TEST_PASSPHRASE,
  whyNobodyCannotRun,
} from '../testing/repo-fixture.ts';
import { createFaultyStore } from '../testing/faulty-store.ts';
import { compareTrees } from '../testing/tree-compare.ts';
import type { BackupChildRequest } from '../testing/backup-child.ts';
import { createFsStore } from '../storage/fs/fs-store.ts';
import type { Store } from '../storage/store.ts';
import { openRepository } from '../repo/repository.ts';
import { loadIndex } from '../repo/index-loader.ts';
import { createBlobReader } from '../repo/blob-reader.ts';
import { CONFIG_NAME, objectName, packName } from '../repo/layout.ts';
import { encodeSignedRecord } from '../repo/signed-record.ts';
import { sha256Hex } from '../crypto/index.ts';
import { backup, type BackupResult } from './backup.ts';
import { restore } from './restore.ts';
import { verify, type VerifyProblem } from './verify.ts';
import { findSnapshot, listSnapshots } from './snapshots.ts';
import { resolvePath, rootNode, walkNodes } from './tree-walk.ts';
import { testOperation } from '../testing/operation.ts';
import type { Operation } from '../governance/operation.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
// The child runs on the same Node as the tests (the project's pinned Node 24).
const NODE = process.execPath;
const CHILD = fileURLToPath(new URL('../testing/backup-child.ts', import.meta.url));
const FILE_COUNT = 6;

let root = '';
let cases = 0;

before(async () => {
  root = await makeTempDir('damage');
  await fs.chmod(root, 0o755); // the unprivileged child must reach its directory
});
after(async () => {
  await removeTree(root);
});

interface Case {
  dir: string;
  source: string;
  repoPath: string;
  repo: Operation;
  result: BackupResult;
}

/** A fresh repository (small chunks, packs of ~512 KiB) holding one backup of six 300 KB files. */
async function backedUpCase(): Promise<Case> {
  const dir = join(root, `case-${++cases}`);
  const source = join(dir, 'src');
  await fs.mkdir(source, { recursive: true, mode: 0o755 });
  await fs.chmod(dir, 0o755);
  for (let i = 0; i < FILE_COUNT; i++)
    await fs.writeFile(join(source, `f${i}.bin`), seededBytes(300_000, `${dir}/${i}`));
  const repoPath = join(dir, 'repo');
  const repo = await createTestRepo(repoPath, { chunker: SMALL_CHUNKER, packTargetBytes: 512 * KiB });
  const result = await backup({ repo, paths: [source] });
  return { dir, source, repoPath, repo, result };
}

/** Each file of the snapshot (absolute path) → the packs holding its chunks. */
async function packsByFile(repo: Operation, tree: TreeId): Promise<Map<string, Set<string>>> {
  const { index } = await loadIndex(repo);
  const reader = createBlobReader(repo, index);
  const files = new Map<string, Set<string>>();
  await walkNodes(reader, rootNode(tree), '/', (path, node) => {
    if (node.type === 'file')
      files.set(path, new Set((node.content ?? []).map((id) => index.get(Buffer.from(id, 'hex'))!.packId)));
  });
  return files;
}

/** The largest pack: a data pack (trees go to packs of their own) holding chunks of some files. */
async function packsBySize(store: Store): Promise<{ name: string; id: PackId; sizeBytes: number }[]> {
  const packs = [];
  for await (const info of store.list('data/')) packs.push(info);
  return packs
    .sort((a, b) => b.sizeBytes - a.sizeBytes)
    .map(({ name, sizeBytes }) => ({ name, sizeBytes, id: name.slice(name.lastIndexOf('/') + 1) as PackId }));
}

async function largestPack(store: Store): Promise<{ name: string; id: PackId; sizeBytes: number }> {
  return (await packsBySize(store))[0];
}

async function restoreAll(c: Case, repo: Operation, snapshotId: string = c.result.snapshotId) {
  const target = join(c.dir, `target-${randomBytes(4).toString('hex')}`);
  const result = await restore({ repo, snapshot: await findSnapshot(repo, snapshotId), target });
  return { target, result, restoredSource: join(target, c.source) };
}

const exists = (path: string) =>
  fs.lstat(path).then(
    () => true,
    () => false,
  );
const objects = (problems: VerifyProblem[]) => problems.map(({ object, code }) => `${code} ${object}`).sort();

test('a wrong passphrase is WRONG_PASSWORD and names the repository', async () => {
  const dir = join(root, `case-${++cases}`);
  await createTestRepo(join(dir, 'repo'));
  const error = await rejectsWithCode(
    openRepository({ store: createFsStore(join(dir, 'repo')), passphrase: 'not the passphrase', clock: systemClock }),
    'WRONG_PASSWORD',
  );
  assert.match(error.message, new RegExp(join(dir, 'repo')));
  assert.ok(error.hint);
});

test('a damaged key file is named as damaged, not taken for a wrong passphrase', async () => {
  const dir = join(root, `case-${++cases}`);
  const repo = await createTestRepo(join(dir, 'repo'));
  const [keyName] = await listNames(repo.store, 'keys/');
  await flipByte(join(dir, 'repo', keyName));
  const error = await rejectsWithCode(openTestRepo(join(dir, 'repo')), 'OBJECT_CORRUPT');
  assert.ok(error.message.includes(keyName), error.message);
});

test('a missing repository is REPO_NOT_FOUND, whether the directory is absent or empty', async () => {
  const absent = join(root, 'no-such-repo');
  const error = await rejectsWithCode(openTestRepo(absent), 'REPO_NOT_FOUND');
  assert.match(error.message, new RegExp(absent));
  const empty = join(root, 'empty-repo');
  await fs.mkdir(empty);
  await rejectsWithCode(openTestRepo(empty), 'REPO_NOT_FOUND');
});

test('a config with any one byte flipped is refused as CONFIG_CORRUPT, and the repository is intact once it is repaired', async () => {
  const c = await backedUpCase();
  const configPath = join(c.repoPath, CONFIG_NAME);
  const at = await flipByte(configPath);
  const error = await rejectsWithCode(openTestRepo(c.repoPath), 'CONFIG_CORRUPT');
  assert.match(error.message, /config/);
  assert.ok(error.hint);

  // Every other position too, served through a store that damages only the config on read.
  await flipByte(configPath, at);
  const good = Buffer.from(await fs.readFile(configPath));
  const codes = new Map<string, number[]>();
  for (let offset = 0; offset < good.length; offset++) {
    const damaged = Buffer.from(good);
    damaged[offset] ^= 0x01;
    const inner = createFsStore(c.repoPath);
    const store: Store = {
      ...inner,
      get: async (name, range) => (name === CONFIG_NAME ? damaged : inner.get(name, range)),
    };
    let code = 'opened';
    try {
      testOperation(await openRepository({ store, passphrase: TEST_PASSPHRASE, clock: systemClock }));
    } catch (caught) {
      code = (caught as { code?: string }).code ?? String(caught);
    }
    codes.set(code, [...(codes.get(code) ?? []), offset]);
  }
  // Byte 4 is the format version: a changed version reads as a format this Amber does not know.
  assert.deepEqual(codes.get('FORMAT_UNSUPPORTED'), [4]);
  codes.delete('FORMAT_UNSUPPORTED');
  assert.deepEqual([...codes.keys()], ['CONFIG_CORRUPT']);

  const { result, restoredSource } = await restoreAll(c, await openTestRepo(c.repoPath));
  assert.deepEqual(result.errors, []);
  assert.deepEqual(await compareTrees(c.source, restoredSource), []);
});

test('a config copied from another repository is refused as CONFIG_CORRUPT (replaced)', async () => {
  const c = await backedUpCase();
  const other = join(c.dir, 'other-repo');
  await createTestRepo(other);
  const configPath = join(c.repoPath, CONFIG_NAME);
  const original = await fs.readFile(configPath);
  // Protected objects are immutable: whoever replaces one by hand (root) lifts that first.
  await liftAttributes(c.repoPath);
  await fs.chmod(configPath, 0o644);
  await fs.copyFile(join(other, CONFIG_NAME), configPath);
  const error = await rejectsWithCode(openTestRepo(c.repoPath), 'CONFIG_CORRUPT');
  assert.match(error.message, /replaced/);
  assert.match(error.message, new RegExp(c.repoPath));

  await fs.writeFile(configPath, original);
  assert.equal((await listSnapshots(await openTestRepo(c.repoPath))).length, 1);
});

test('a truncated pack: restore fails only the files it holds, naming the pack; verify reports it, with or without reading data', async () => {
  const c = await backedUpCase();
  const holders = await packsByFile(c.repo, c.result.snapshot.tree);
  const filesIn = (id: PackId) =>
    [...holders]
      .filter(([, packs]) => packs.has(id))
      .map(([path]) => path)
      .sort();
  // Blobs land in packs in the order the encoding workers finish, so pick a pack that holds chunks
  // of some files but not all: the others must restore untouched.
  const victim = (await packsBySize(c.repo.store)).find(
    ({ id }) => filesIn(id).length > 0 && filesIn(id).length < FILE_COUNT,
  );
  assert.ok(victim, 'some pack holds chunks of some files but not all');
  const affected = filesIn(victim.id);
  await alterObjectFile(join(c.repoPath, victim.name), (bytes) => bytes.subarray(0, Math.floor(bytes.length / 2)));

  const repo = await openTestRepo(c.repoPath);
  const { result, target } = await restoreAll(c, repo);
  assert.deepEqual(result.errors.map(({ path }) => path).sort(), affected);
  for (const failure of result.errors) {
    assert.equal(failure.code, 'OBJECT_CORRUPT');
    assert.ok(failure.message.includes(victim.name), failure.message);
    assert.equal(await exists(join(target, failure.path)), false, `${failure.path} must not be written`);
  }
  for (const [path] of holders) {
    if (!affected.includes(path)) assert.deepEqual(await compareTrees(path, join(target, path)), []);
  }

  for (const readDataFraction of [0, 1]) {
    const { problems } = await verify({ repo, readDataFraction });
    assert.ok(problems.length > 0, `verify with readDataFraction ${readDataFraction} reports the damage`);
    assert.ok(
      problems.every(({ object }) => object === victim.name),
      JSON.stringify(problems),
    );
    assert.ok(problems.some(({ message }) => /truncated/.test(message)));
  }
});

test('a pack renamed to another valid-looking name: verify reports the missing name and the one that does not match its bytes', async () => {
  const c = await backedUpCase();
  const victim = await largestPack(c.repo.store);
  const fakeId = randomBytes(32).toString('hex') as PackId;
  await liftAttributes(c.repoPath);
  await fs.mkdir(join(c.repoPath, 'data', fakeId.slice(0, 2)), { recursive: true });
  await fs.rename(join(c.repoPath, victim.name), join(c.repoPath, packName(fakeId)));

  const repo = await openTestRepo(c.repoPath);
  // The snapshots that need the pack have also lost its lock: a gap.
  assert.deepEqual(
    objects((await verify({ repo, readDataFraction: 1 })).problems),
    [`OBJECT_CORRUPT ${packName(fakeId)}`, `OBJECT_NOT_FOUND ${victim.name}`, `LOCK_GAP ${victim.name}`].sort(),
  );
  assert.deepEqual(objects((await verify({ repo, readDataFraction: 0 })).problems), [
    `LOCK_GAP ${victim.name}`,
    `OBJECT_NOT_FOUND ${victim.name}`,
  ]);
  const { result } = await restoreAll(c, repo);
  assert.ok(
    result.errors.length > 0 &&
      result.errors.every(({ code, message }) => code === 'OBJECT_NOT_FOUND' && message.includes(victim.name)),
  );
});

test('a flipped byte inside a pack: verify names the pack and the blob; restore fails that one file without writing it', async () => {
  const c = await backedUpCase();
  const victim = await largestPack(c.repo.store);
  // Find the blob that holds the middle byte of the pack, and the file that holds the blob.
  const { index } = await loadIndex(c.repo);
  const reader = createBlobReader(c.repo, index);
  const middle = Math.floor(victim.sizeBytes / 2);
  let hit: { blob: string; file: string } | undefined;
  await walkNodes(reader, rootNode(c.result.snapshot.tree), '/', (path, node) => {
    for (const id of node.content ?? []) {
      const at = index.get(Buffer.from(id, 'hex'))!;
      if (at.packId === victim.id && at.offset <= middle && middle < at.offset + at.sealedLength)
        hit = { blob: id, file: path };
    }
  });
  assert.ok(hit, 'the middle of the largest pack lies inside a file chunk');
  await flipByte(join(c.repoPath, victim.name), middle);

  const repo = await openTestRepo(c.repoPath);
  const { problems } = await verify({ repo, readDataFraction: 1 });
  assert.ok(
    problems.every(({ object }) => object === victim.name),
    JSON.stringify(problems),
  );
  assert.deepEqual(
    problems.filter(({ blob }) => blob).map(({ blob, code }) => ({ blob, code })),
    [{ blob: hit.blob, code: 'OBJECT_CORRUPT' }],
  );
  assert.ok(problems.some(({ blob, message }) => !blob && /does not hash to its name/.test(message)));

  const { result, target } = await restoreAll(c, repo);
  assert.deepEqual(
    result.errors.map(({ path, code }) => ({ path, code })),
    [{ path: hit.file, code: 'OBJECT_CORRUPT' }],
  );
  assert.ok(result.errors[0].message.includes(victim.name) && result.errors[0].message.includes(hit.blob.slice(0, 16)));
  assert.equal(await exists(join(target, hit.file)), false);
  for (let i = 0; i < FILE_COUNT; i++) {
    const path = join(c.source, `f${i}.bin`);
    if (path !== hit.file) assert.deepEqual(await compareTrees(path, join(target, path)), []);
  }

  // Restoring over an existing copy with overwrite keeps that copy: a damaged chunk never costs it.
  const existing = join(target, hit.file);
  await fs.copyFile(hit.file, existing);
  const again = await restore({
    repo,
    snapshot: await findSnapshot(repo, 'latest'),
    target,
    include: [hit.file],
    overwrite: true,
  });
  assert.deepEqual(
    again.errors.map(({ code }) => code),
    ['OBJECT_CORRUPT'],
  );
  assert.ok((await fs.readFile(existing)).equals(await fs.readFile(hit.file)));
  assert.deepEqual(
    (await fs.readdir(join(target, c.source))).filter((name) => name.startsWith('.amber')),
    [],
    'no temporary file is left behind',
  );
});

test('a flipped byte in a large chunk, decoded on a worker thread: restore fails that file naming pack and blob, and writes nothing of it', async () => {
  const c = await backedUpCase();
  const { index } = await loadIndex(c.repo);
  const reader = createBlobReader(c.repo, index);
  // A chunk of 64 KiB or more: restores decode those on the workers and write them there.
  let hit: { blob: string; file: string; packId: PackId; offset: number; sealedLength: number } | undefined;
  await walkNodes(reader, rootNode(c.result.snapshot.tree), '/', (path, node) => {
    for (const id of node.content ?? []) {
      const at = index.get(Buffer.from(id, 'hex'))!;
      if (!hit && at.rawLength >= 64 * KiB)
        hit = { blob: id, file: path, packId: at.packId, offset: at.offset, sealedLength: at.sealedLength };
    }
  });
  assert.ok(hit, 'the case has a chunk of at least 64 KiB');
  await flipByte(join(c.repoPath, packName(hit.packId)), hit.offset + Math.floor(hit.sealedLength / 2));

  const repo = await openTestRepo(c.repoPath);
  const { result, target } = await restoreAll(c, repo);
  assert.deepEqual(
    result.errors.map(({ path, code }) => ({ path, code })),
    [{ path: hit.file, code: 'OBJECT_CORRUPT' }],
  );
  assert.ok(
    result.errors[0].message.includes(packName(hit.packId)) && result.errors[0].message.includes(hit.blob.slice(0, 16)),
    result.errors[0].message,
  );
  assert.equal(await exists(join(target, hit.file)), false);
  assert.deepEqual((await fs.readdir(join(target, c.source))).length, FILE_COUNT - 1);
  for (let i = 0; i < FILE_COUNT; i++) {
    const path = join(c.source, `f${i}.bin`);
    if (path !== hit.file) assert.deepEqual(await compareTrees(path, join(target, path)), []);
  }
});

test('a flipped byte in an index object: the index is reported and ignored, never used; verify --read-data re-indexes the packs it read clean', async () => {
  const c = await backedUpCase();
  const [indexName, ...more] = await listNames(c.repo.store, 'index/');
  assert.deepEqual(more, []);
  await flipByte(join(c.repoPath, indexName));
  // A validly signed index whose payload does not open (e.g. a buggy or hostile writer) is reported too.
  const garbage = encodeSignedRecord('index', randomBytes(200), c.repo.key.signer);
  await c.repo.store.put(objectName('index', sha256Hex(garbage)), garbage);

  const damaged = await openTestRepo(c.repoPath);
  await rejectsWithCode(restoreAll(c, damaged), 'OBJECT_NOT_FOUND');
  const structure = await verify({ repo: damaged, readDataFraction: 0 });
  assert.equal(structure.certifiedPacks, 0, 'a structure-only verify writes nothing');
  // What only that index located is now missing, and said so: the snapshot's root tree.
  assert.ok(
    structure.problems.some(({ object, code }) => object.startsWith('snapshot ') && code === 'OBJECT_NOT_FOUND'),
  );

  // A check writes nothing: it counts the packs no sound index names...
  const checked = await verify({ repo: damaged, readDataFraction: 1 });
  assert.equal(checked.certifiedPacks, 0, 'verify --read-data writes no index');
  assert.ok(checked.uncertifiedPacks >= 1);
  // ...and the repair (amber repair index) indexes them again.
  const { problems, certifiedPacks } = await verify({ repo: damaged, readDataFraction: 1, certify: true });
  const byObject = new Map(problems.map((problem) => [problem.object, problem]));
  assert.equal(byObject.get(indexName)?.code, 'OBJECT_CORRUPT');
  assert.equal(byObject.get(objectName('index', sha256Hex(garbage)))?.code, 'OBJECT_CORRUPT');
  assert.ok(certifiedPacks >= 1, 'the packs only the damaged index named are indexed again from their own headers');

  const repo = await openTestRepo(c.repoPath);
  const { result, restoredSource } = await restoreAll(c, repo);
  assert.deepEqual(result.errors, []);
  assert.deepEqual(await compareTrees(c.source, restoredSource), []);
  const fresh = await backup({ repo, paths: [c.source] });
  assert.ok(fresh.snapshot.summary.bytesAdded < 300_000, 'the re-indexed data dedups');
  const clean = await verify({ repo: await openTestRepo(c.repoPath), readDataFraction: 1 });
  assert.deepEqual(
    clean.problems.map(({ object }) => object).sort(),
    [indexName, objectName('index', sha256Hex(garbage))].sort(),
  );
});

test('a flipped byte in a snapshot: it is reported and ignored, named when asked for, and the other snapshots still restore', async () => {
  const c = await backedUpCase();
  const second = await backup({ repo: c.repo, paths: [c.source] });
  const damagedName = `snapshots/${c.result.snapshotId}`;
  await flipByte(join(c.repoPath, damagedName));

  const repo = await openTestRepo(c.repoPath);
  assert.deepEqual(
    (await listSnapshots(repo)).map(({ id }) => id),
    [second.snapshotId],
  );
  const { problems } = await verify({ repo, readDataFraction: 1 });
  assert.deepEqual(objects(problems), [`OBJECT_CORRUPT ${damagedName}`]);
  const error = await rejectsWithCode(findSnapshot(repo, c.result.snapshotId.slice(0, 12)), 'OBJECT_CORRUPT');
  assert.ok(error.message.includes(damagedName), error.message);
  const { result, restoredSource } = await restoreAll(c, repo, second.snapshotId);
  assert.deepEqual(result.errors, []);
  assert.deepEqual(await compareTrees(c.source, restoredSource), []);
});

test('a full disk fails the backup with STORAGE_FULL; the earlier snapshot still restores and verifies', async () => {
  const c = await backedUpCase();
  const more = join(c.dir, 'more');
  await fs.mkdir(more);
  // Files smaller than a pack: the pack that no longer fits holds chunks of files already done.
  for (let i = 0; i < 40; i++) await fs.writeFile(join(more, `m${i}.bin`), seededBytes(100 * KiB, `${more}/${i}`));
  const packsBefore = (await listNames(c.repo.store, 'data/')).length;

  const full = await openTestRepo(c.repoPath, (store) => createFaultyStore(store, { fullAfterBytes: 1.5 * MiB }));
  const error = await rejectsWithCode(backup({ repo: full, paths: [c.source, more] }), 'STORAGE_FULL');
  assert.match(error.message, /data\/|index\/|snapshots\//);

  const repo = await openTestRepo(c.repoPath);
  assert.ok((await listNames(repo.store, 'data/')).length > packsBefore, 'the failed backup had stored some packs');
  assert.deepEqual(
    (await listSnapshots(repo)).map(({ id }) => id),
    [c.result.snapshotId],
  );
  assert.deepEqual((await verify({ repo, readDataFraction: 1 })).problems, []);
  const { result, restoredSource } = await restoreAll(c, repo);
  assert.deepEqual(result.errors, []);
  assert.deepEqual(await compareTrees(c.source, restoredSource), []);

  const retried = await backup({ repo, paths: [c.source, more] });
  const again = await restoreAll(c, repo, retried.snapshotId);
  assert.deepEqual(again.result.errors, []);
  assert.deepEqual(await compareTrees(more, join(again.target, more)), []);
});

/** Runs backup-child.ts and returns its last line of JSON. */
async function runChild(request: BackupChildRequest): Promise<Record<string, unknown>> {
  const child = spawn(NODE, [CHILD, JSON.stringify(request)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (piece) => {
    stdout += piece;
  });
  child.stderr.on('data', (piece) => {
    stderr += piece;
  });
  const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
  const last = stdout.trim().split('\n').at(-1) ?? '';
  assert.ok(last.startsWith('{'), `child exited ${status}: ${stdout}${stderr}`);
  return JSON.parse(last);
}

test('an unreadable file and directory are reported and skipped, the snapshot is partial, and the rest restores', {
  skip: whyNobodyCannotRun(),
}, async () => {
  const c = await backedUpCase();
  const secret = join(c.source, 'secret.txt');
  const locked = join(c.source, 'locked');
  await fs.writeFile(secret, 'root only\n', { mode: 0o000 });
  await fs.chmod(secret, 0o000);
  await fs.mkdir(locked);
  await fs.writeFile(join(locked, 'inside.txt'), 'root only\n');
  await fs.chmod(locked, 0o000);
  // Root reads anything, so the backup runs in a child as nobody, who owns the repository (which
  // root can hand over only once the attributes of its protected objects are lifted).
  await liftAttributes(c.repoPath);
  for await (const path of walkAll(c.repoPath)) await fs.lchown(path, NOBODY, NOBODY);

  const outcome = (await runChild({
    repo: c.repoPath,
    passphrase: TEST_PASSPHRASE,
    paths: [c.source],
    uid: NOBODY,
    gid: NOBODY,
  })) as {
    snapshotId: string;
    partial: boolean;
    flags: string[];
    warnings: { path: string; code: string; message: string }[];
    summary: { filesSkipped: number };
    uid: number;
  };
  assert.equal(outcome.uid, NOBODY);
  assert.equal(outcome.partial, true);
  assert.deepEqual(outcome.flags, ['partial']);
  assert.equal(outcome.summary.filesSkipped, 2);
  assert.deepEqual(
    outcome.warnings.map(({ path, code }) => ({ path, code })).sort((a, b) => a.path.localeCompare(b.path)),
    [
      { path: locked, code: 'SOURCE_UNREADABLE' },
      { path: secret, code: 'SOURCE_UNREADABLE' },
    ],
  );
  assert.ok(outcome.warnings.every(({ path, message }) => message.includes(path)));

  const repo = await openTestRepo(c.repoPath);
  const entry = await findSnapshot(repo, outcome.snapshotId);
  assert.deepEqual(entry.snapshot.flags, ['partial']);
  const { result, restoredSource } = await restoreAll(c, repo, outcome.snapshotId);
  assert.deepEqual(result.errors, []);
  // Everything but the two unreadable entries' contents is there and identical.
  assert.deepEqual(await compareTrees(c.source, restoredSource), [
    '"locked/inside.txt": missing in actual (a file in expected)',
    '"secret.txt": missing in actual (a file in expected)',
  ]);
});

async function* walkAll(path: string): AsyncGenerator<string> {
  yield path;
  if (!(await fs.lstat(path)).isDirectory()) return;
  for (const name of await fs.readdir(path)) yield* walkAll(join(path, name));
}

test('a file that grows while it is read is stored as read and flagged on the node, the snapshot and the result', async () => {
  const c = await backedUpCase();
  const growing = join(c.source, 'growing.log');
  const original = seededBytes(6 * MiB, 'growing');
  const appended = Buffer.from('a line appended while the backup was reading the file\n');
  await fs.writeFile(growing, original);
  let grown = false;
  const result = await backup({
    repo: c.repo,
    paths: [c.source],
    // Called as each piece is read: append once the first MiB of this file is in.
    onProgress: ({ currentPath }) => {
      if (currentPath !== growing || grown) return;
      grown = true;
      appendFileSync(growing, appended);
    },
  });
  assert.ok(grown);
  assert.equal(result.partial, true);
  assert.deepEqual(result.snapshot.flags, ['changed-while-read']);
  assert.deepEqual(
    result.warnings.map(({ path, code }) => ({ path, code })),
    [{ path: growing, code: 'SOURCE_CHANGED' }],
  );

  const repo = await openTestRepo(c.repoPath);
  const { index } = await loadIndex(repo);
  const node = await resolvePath(createBlobReader(repo, index), result.snapshot.tree, growing);
  assert.deepEqual(node.flags, ['changed-while-read']);
  const restored = await restoreAll(c, repo, result.snapshotId);
  assert.deepEqual(restored.result.errors, []);
  const bytes = await fs.readFile(join(restored.target, growing));
  assert.equal(node.sizeBytes, bytes.length, 'the node records the size that was stored');
  // The read went on to the end of the file, so it took the appended bytes too.
  assert.ok(bytes.equals(Buffer.concat([original, appended])), `restored ${bytes.length} bytes`);

  // The next backup does not trust the flagged node: it reads the file again.
  const next = await backup({ repo, paths: [c.source] });
  assert.equal(next.partial, false);
  assert.equal(next.snapshot.summary.filesChanged, 1);
  assert.equal(next.snapshot.summary.bytesRead, original.length + appended.length);
});
