// Red team, issue 18: an attacker owns the primary — root on its host, every key and passphrase of
// it — and tries to harm the isolated copy, which shares nothing with the primary but the chunker's
// seed and the blob-id key. Each attack is written as what the attacker can do: objects signed with
// the primary's keys put into the copy's storage, the primary's snapshots forgotten and pruned, a
// forged or damaged snapshot left at the primary for the next `amber copy` to pick up.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { systemClock } from '../../src/core/clock.ts';
import { asSnapshotId } from '../../src/core/ids.ts';
import { isoDate } from '../../src/core/units.ts';
import { generateSigningKeyPair, sha256Hex } from '../../src/crypto/index.ts';
import { backup } from '../../src/engine/backup.ts';
import { copySnapshots } from '../../src/engine/copy.ts';
import { copyLag } from '../../src/engine/copy-status.ts';
import { lockStatus } from '../../src/engine/lock-coverage.ts';
import { restore } from '../../src/engine/restore.ts';
import { findSnapshot, listSnapshots } from '../../src/engine/snapshots.ts';
import { verify } from '../../src/engine/verify.ts';
import type { Operation } from '../../src/governance/operation.ts';
import { forget } from '../../src/protection/forget.ts';
import { prune } from '../../src/protection/prune.ts';
import { signerOf } from '../../src/repo/keys.ts';
import { snapshotName } from '../../src/repo/layout.ts';
import type { RecordProblem } from '../../src/repo/records.ts';
import { initRepository, openRepository, type Repository } from '../../src/repo/repository.ts';
import { FORGETS, GRANTS, putRecord } from '../../src/repo/retention-records.ts';
import { encodeSnapshot } from '../../src/repo/snapshot.ts';
import { createFsStore } from '../../src/storage/fs/fs-store.ts';
import type { ObjectInfo, Store } from '../../src/storage/store.ts';
import { testOperation } from '../../src/testing/operation.ts';
import {
  createTestRepo,
  flipByte,
  listNames,
  makeTempDir,
  rejectsWithCode,
  removeTree,
  seededBytes,
  SMALL_CHUNKER,
  TEST_PASSPHRASE,
  useTemporaryWriterCache,
} from '../../src/testing/repo-fixture.ts';
import { compareTrees } from '../../src/testing/tree-compare.ts';

const BIN = fileURLToPath(new URL('../../bin/amber.js', import.meta.url));
/** The copy's own passphrase: the attacker never learns it. The primary's is TEST_PASSPHRASE. */
const COPY_PASS = 'the copy site alone knows this one';
const DAY = 86_400_000;
const MiB = 1024 * 1024;

/** A primary (the attacker's), a source tree and a copy made as `amber init --from-repo` makes one. */
async function scene(t: { after(fn: () => unknown): void }, label: string) {
  const dir = await makeTempDir(label);
  useTemporaryWriterCache(dir);
  t.after(() => removeTree(dir));
  const primary = await createTestRepo(join(dir, 'primary'), { chunker: SMALL_CHUNKER });
  const copy = testOperation(
    await initRepository({
      store: createFsStore(join(dir, 'copy')),
      passphrase: COPY_PASS,
      clock: systemClock,
      kdfLogN: 10,
      chunker: primary.config.chunker,
      dedupSecrets: { idKey: primary.key.secrets.idKey, gearSeed: primary.key.secrets.gearSeed },
    }),
  );
  const source = join(dir, 'src');
  await fs.mkdir(join(source, 'sub'), { recursive: true });
  await fs.writeFile(join(source, 'a.bin'), seededBytes(600_000, `${label}-a`));
  await fs.writeFile(join(source, 'sub', 'b.bin'), seededBytes(300_000, `${label}-b`));
  await fs.writeFile(join(source, 'notes.txt'), 'words\n'.repeat(5000));
  return { dir, primary, copy, source, primaryPass: await passFile(dir) };
}

async function passFile(dir: string): Promise<string> {
  const path = join(dir, 'primary.pass');
  await fs.writeFile(path, `${TEST_PASSPHRASE}\n`);
  return path;
}

/** The real bin at the copy site: AMBER_PASSWORD is the copy's own. */
function amber(dir: string, args: string[]) {
  const child = spawn(process.execPath, [BIN, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: process.env.PATH,
      AMBER_PASSWORD: COPY_PASS,
      AMBER_KDF_LOG_N: '10',
      AMBER_CACHE_DIR: join(dir, 'cache'),
    },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (piece: string) => {
    stdout += piece;
  });
  child.stderr.setEncoding('utf8').on('data', (piece: string) => {
    stderr += piece;
  });
  return new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (status) => resolve({ status, stdout, stderr })),
  );
}

/**
 * The fs store on a host whose clock was set `aheadMs` ahead just now: what it receives from now on
 * is stamped with that time (as root setting the clock moves the files' times), earlier objects keep theirs.
 */
function storeAhead(store: Store, aheadMs: number): Store {
  const ahead = new Set<string>();
  const stamp = (info: ObjectInfo): ObjectInfo =>
    info.writtenMs === undefined || !ahead.has(info.name) ? info : { ...info, writtenMs: info.writtenMs + aheadMs };
  return {
    ...store,
    put: async (name, bytes, options) => {
      await store.put(name, bytes, options);
      ahead.add(name);
    },
    stat: async (name) => stamp(await store.stat(name)),
    list: async function* (prefix) {
      for await (const info of store.list(prefix)) yield stamp(info);
    },
  };
}

/** The primary's repository with the copy's store: what writes into the copy signed by the primary's keys. */
const primaryKeysOn = (primary: Repository, copy: Repository): Repository => ({ ...primary, store: copy.store });

async function restoresLike(repo: Operation, id: string, dir: string, source: string): Promise<void> {
  const target = join(dir, `restore-${id.slice(0, 8)}`);
  const restored = await restore({ repo, snapshot: await findSnapshot(repo, id), target });
  assert.deepEqual(restored.errors, []);
  assert.deepEqual(await compareTrees(source, join(target, source)), []);
}

test('the primary’s passphrase does not open the copy', async (t) => {
  const { copy } = await scene(t, 'rt-copy-pass');
  await rejectsWithCode(
    openRepository({ store: createFsStore(copy.store.location), passphrase: TEST_PASSPHRASE, clock: systemClock }),
    'WRONG_PASSWORD',
  );
});

test('a snapshot the primary’s owner key signs, put into the copy’s storage, is neither listed nor restored', async (t) => {
  const { dir, primary, copy, source } = await scene(t, 'rt-copy-snapshot');
  await backup({ repo: primary, paths: [source] });
  const [copied] = (await copySnapshots({ copy, primary })).copied;
  const real = await findSnapshot(copy, copied.copy);

  // Well formed, sealed to the copy's own epoch key, naming a tree the copy holds, claiming to be a
  // copy: everything but a signature of a key the copy authorised.
  const forged = encodeSnapshot(
    { ...real.snapshot, tags: ['forged'], retention: { mode: 'governance', until: isoDate(Date.now() + 60_000) } },
    copy.currentEpoch,
    primary.key.signer,
  );
  const forgedId = asSnapshotId(sha256Hex(forged));
  await copy.store.put(snapshotName(forgedId), forged);

  const problems: RecordProblem[] = [];
  assert.deepEqual(
    (await listSnapshots(copy, problems)).map(({ id }) => id),
    [copied.copy],
  );
  assert.ok(
    problems.some(({ name }) => name === snapshotName(forgedId)),
    `the forged object is reported: ${JSON.stringify(problems)}`,
  );
  const listed = await amber(dir, ['snapshots', '--repo', copy.store.location, '--json']);
  assert.equal(listed.status, 0, listed.stderr);
  assert.deepEqual(
    JSON.parse(listed.stdout).map(({ id }: { id: string }) => id),
    [copied.copy],
  );
  const restored = await amber(dir, [
    'restore',
    '--repo',
    copy.store.location,
    forgedId,
    '--target',
    join(dir, 'forged-restore'),
  ]);
  assert.notEqual(restored.status, 0, 'the forged snapshot does not restore');
  assert.match(restored.stderr, /\[(SNAPSHOT_NOT_FOUND|SIGNATURE_INVALID)\]/);
  await assert.rejects(fs.access(join(dir, 'forged-restore', source)));
});

test('a grant and a forget mark the primary’s owner key signs into the copy shorten and hide nothing', async (t) => {
  const { primary, copy, source } = await scene(t, 'rt-copy-records');
  await backup({ repo: primary, paths: [source] });
  await copySnapshots({ copy, primary });
  const before = await lockStatus({ repo: copy });
  assert.equal(before.length, 1);
  assert.ok(before[0].covered);

  // Every object the copy holds, retained only for another minute in governance mode.
  const objects = [
    ...(await listNames(copy.store, 'data/')),
    ...(await listNames(copy.store, 'snapshots/')),
    ...(await listNames(copy.store, 'index/')),
    'config',
  ];
  const attacker = primaryKeysOn(primary, copy);
  const grant = await putRecord(attacker, GRANTS, {
    time: isoDate(Date.now()),
    snapshot: before[0].snapshotId,
    entries: [{ mode: 'governance', until: isoDate(Date.now() + 60_000), objects }],
  });
  const mark = await putRecord(attacker, FORGETS, {
    time: isoDate(Date.now()),
    snapshots: [before[0].snapshotId],
    rule: 'the attacker',
  });
  copy.retentionStateChanged();

  const after = await lockStatus({ repo: copy });
  assert.deepEqual(
    after.map(({ snapshotId, lock, covered, earliestDeletable }) => ({ snapshotId, lock, covered, earliestDeletable })),
    before.map(({ snapshotId, lock, covered, earliestDeletable }) => ({
      snapshotId,
      lock,
      covered,
      earliestDeletable,
    })),
  );
  assert.equal(after[0].lock?.mode, 'governance');
  assert.ok(Date.parse(after[0].lock!.until) > Date.now() + 29 * DAY, 'still the copy policy’s 30 days');
  assert.deepEqual(
    (await listSnapshots(copy)).map(({ id }) => id),
    [before[0].snapshotId],
    'the forget mark hides nothing',
  );
  const state = await copy.retentionState();
  assert.ok(!state.grants.some(({ name }) => name === grant), 'the grant is not one of the copy’s');
  assert.equal(state.forgetMarks.size, 0);
  for (const name of [grant, mark])
    assert.ok(
      state.problems.some((problem) => problem.name === name),
      `${name} is reported: ${JSON.stringify(state.problems)}`,
    );
});

test('the primary forgets and prunes everything; the next copy keeps every earlier snapshot', async (t) => {
  const { dir, primary, copy, source } = await scene(t, 'rt-copy-prune');
  const first = await backup({ repo: primary, paths: [source], retainMs: 60_000 });
  await fs.writeFile(join(source, 'c.bin'), seededBytes(200_000, 'prune-c'));
  const second = await backup({ repo: primary, paths: [source], retainMs: 60_000 });
  assert.equal((await copySnapshots({ copy, primary })).copied.length, 2);

  // Root at the primary sets the host's clock past the primary's (short) locks, which moves its fs
  // store's clock too: forget keeps nothing, prune condemns and then deletes what the snapshots used.
  const aheadMs = 2 * DAY;
  const clock = { nowMs: () => Date.now() + aheadMs, monotonicMs: () => performance.now() };
  const attacker = testOperation(
    await openRepository({
      store: storeAhead(createFsStore(primary.store.location), aheadMs),
      passphrase: TEST_PASSPHRASE,
      clock,
    }),
  );
  const forgotten = await forget({ repo: attacker, keep: { hourly: 0 } });
  assert.deepEqual(
    forgotten.forgotten.map(({ snapshotId }) => snapshotId).sort(),
    [first.snapshotId, second.snapshotId].sort(),
  );
  await prune({ repo: attacker, graceMs: 0 });
  const deleted = await prune({ repo: attacker, graceMs: 0 });
  assert.ok(
    deleted.deleted.some(({ name }) => name.startsWith('data/')),
    'the primary lost its data',
  );
  assert.deepEqual(await listNames(primary.store, 'snapshots/'), []);

  const again = await copySnapshots({ copy, primary });
  assert.deepEqual([again.copied, again.failed, again.alreadyCopied], [[], [], 0]);
  const kept = await listSnapshots(copy);
  assert.deepEqual(
    kept.map(({ snapshot }) => (snapshot.copiedFrom as { snapshot: string }).snapshot),
    [first.snapshotId, second.snapshotId],
  );
  assert.deepEqual((await verify({ repo: copy, readDataFraction: 1 })).problems, []);
  await restoresLike(copy, kept[1].id, dir, source);
  const lag = await copyLag({ copy, primary, nowMs: Date.now() });
  assert.deepEqual(
    lag.map(({ lagSeconds, missing }) => ({ lagSeconds, missing })),
    [{ lagSeconds: null, missing: 0 }],
    'the source is gone at the primary; nothing counts as missing',
  );
});

test('a snapshot at the primary signed by a key it never certified is not copied, and amber copy exits 3', async (t) => {
  const { dir, primary, copy, source, primaryPass } = await scene(t, 'rt-copy-forged');
  const real = await backup({ repo: primary, paths: [source] });
  // Root at the primary can write any object, but cannot make the primary's authority certify a key.
  const forger = signerOf(generateSigningKeyPair());
  const bytes = encodeSnapshot({ ...real.snapshot, tags: ['forged'] }, primary.currentEpoch, forger);
  const forgedName = snapshotName(asSnapshotId(sha256Hex(bytes)));
  await primary.store.put(forgedName, bytes);

  const run = await amber(dir, [
    'copy',
    '--repo',
    copy.store.location,
    '--from-repo',
    primary.store.location,
    '--from-password-file',
    primaryPass,
  ]);
  assert.equal(run.status, 3, run.stdout + run.stderr);
  assert.match(run.stdout, new RegExp(`^warning: the primary holds ${forgedName}, which was not copied: `, 'm'));
  assert.match(run.stderr, /\[COPY_INCOMPLETE\]\n/);
  assert.match(run.stderr, /1 signed by no key it authorised/);
  const held = await listSnapshots(copy);
  assert.deepEqual(
    held.map(({ snapshot }) => (snapshot.copiedFrom as { snapshot: string }).snapshot),
    [real.snapshotId],
  );
  assert.ok(!held.some(({ snapshot }) => snapshot.tags.includes('forged')));
});

test('a damaged pack at the primary fails its snapshot by blob and pack, exit 3; earlier and later snapshots are copied', async (t) => {
  const { dir, primary, copy, source, primaryPass } = await scene(t, 'rt-copy-damaged');
  const early = await backup({ repo: primary, paths: [source] });
  assert.equal((await copySnapshots({ copy, primary })).copied.length, 1);

  // The next snapshot brings data of its own, whose pack is then altered at the primary.
  const packsBefore = new Set(await listNames(primary.store, 'data/'));
  await fs.writeFile(join(source, 'late.bin'), seededBytes(MiB, 'damaged-late'));
  const damaged = await backup({ repo: primary, paths: [source] });
  // Of its new packs, the data pack is the large one (the other holds its trees).
  const fresh = (await listNames(primary.store, 'data/')).filter((name) => !packsBefore.has(name));
  const sizes = await Promise.all(fresh.map(async (name) => (await primary.store.stat(name)).sizeBytes));
  const dataPack = fresh[sizes.indexOf(Math.max(...sizes))];
  assert.ok(sizes.length >= 1 && Math.max(...sizes) >= MiB, 'the damaged snapshot has a data pack of its own');
  await flipByte(join(primary.store.location, dataPack), 200);
  // A later, good snapshot of another source.
  const other = join(dir, 'other');
  await fs.mkdir(other);
  await fs.writeFile(join(other, 'd.bin'), seededBytes(400_000, 'damaged-other'));
  const later = await backup({ repo: primary, paths: [other] });

  const run = await amber(dir, [
    'copy',
    '--repo',
    copy.store.location,
    '--from-repo',
    primary.store.location,
    '--from-password-file',
    primaryPass,
  ]);
  assert.equal(run.status, 3, run.stdout + run.stderr);
  const failure = new RegExp(
    `^error: snapshot ${damaged.snapshotId.slice(0, 8)} not copied: .*blob [0-9a-f]{16}.*${dataPack.replace('/', '\\/')}`,
    'm',
  );
  assert.match(run.stderr, failure, 'the failure names the blob and the pack');
  assert.match(run.stderr, new RegExp(`^copied ${later.snapshotId.slice(0, 8)} → `, 'm'));
  assert.match(run.stderr, /1 damaged or incomplete there.*\[COPY_INCOMPLETE\]/);

  const held = await listSnapshots(copy);
  assert.deepEqual(
    held.map(({ snapshot }) => (snapshot.copiedFrom as { snapshot: string }).snapshot),
    [early.snapshotId, later.snapshotId],
  );
  assert.deepEqual((await verify({ repo: copy, readDataFraction: 1 })).problems, []);
  await restoresLike(copy, held[1].id, dir, other);
});

/** Wall time a test moves, and the fs store as if its clock moved with it (what it receives is stamped so). */
function movingSite(path: string) {
  const clock = { offsetMs: 0, nowMs: () => Date.now() + clock.offsetMs, monotonicMs: () => performance.now() };
  const store = createFsStore(path);
  const shift = new Map<string, number>();
  const stamp = (info: ObjectInfo): ObjectInfo =>
    info.writtenMs === undefined ? info : { ...info, writtenMs: info.writtenMs + (shift.get(info.name) ?? 0) };
  const moved: Store = {
    ...store,
    put: async (name, bytes, options) => {
      await store.put(name, bytes, options);
      shift.set(name, clock.offsetMs);
    },
    stat: async (name) => stamp(await store.stat(name)),
    list: async function* (prefix) {
      for await (const info of store.list(prefix)) yield stamp(info);
    },
  };
  return { clock, store: moved };
}

// Found while attacking: forget judged a snapshot's time by when the store received it, and a copy
// keeps its source's time, so every snapshot copied more than an hour after its backup (the first
// copy of a history, a nightly copy two hours after the backups) counted as "time untrusted" at the
// copy and was kept by forget forever, whatever the keep rules. A copy is now judged by when it was
// copied and when the primary's store received its source (forget.ts untrustedCopyTime).
test('forget at the copy applies its keep rules to snapshots copied hours after their backup', async (t) => {
  const { dir, primary, source } = await scene(t, 'rt-copy-forget');
  await backup({ repo: primary, paths: [source] });
  await fs.writeFile(join(source, 'c.bin'), seededBytes(100_000, 'forget-c'));
  await backup({ repo: primary, paths: [source] });

  // The copy site, two hours later; its own locks are short. Then, past them, forget --keep-last 1.
  const site = movingSite(join(dir, 'copy'));
  const copy = testOperation(await openRepository({ store: site.store, passphrase: COPY_PASS, clock: site.clock }));
  site.clock.offsetMs = 2 * 3_600_000;
  const copied = (await copySnapshots({ copy, primary, retainMs: 60_000 })).copied;
  assert.equal(copied.length, 2);
  site.clock.offsetMs = 4 * 3_600_000;
  copy.retentionStateChanged();
  const result = await forget({ repo: copy, keep: { last: 1 }, dryRun: true });
  assert.deepEqual(
    result.forgotten.map(({ snapshotId }) => snapshotId),
    [copied[0].copy],
    JSON.stringify(result.kept.map(({ keptBecause }) => keptBecause)),
  );
});

// Found while attacking: the lag runs from the oldest primary snapshot newer than the copy's newest,
// judged by the times the primary wrote. One snapshot the primary's owner key signs with a time in
// the future (or one from a host whose clock was wrong) is copied like any other, and from then on
// every real snapshot of that source was "older": `copy status --max-lag` reported no lag while the
// copy fell behind. The lag now runs from the oldest snapshot the copy lacks, whatever the copy's
// newest says (copy-status.ts).
test('a snapshot dated in the future at the primary does not hide the copy’s lag', async (t) => {
  const { primary, copy, source } = await scene(t, 'rt-copy-future');
  const real = await backup({ repo: primary, paths: [source] });
  const future = encodeSnapshot(
    { ...real.snapshot, time: '2100-01-01T00:00:00.000Z' },
    primary.currentEpoch,
    primary.key.signer,
  );
  await primary.store.put(snapshotName(asSnapshotId(sha256Hex(future))), future);
  assert.equal((await copySnapshots({ copy, primary })).copied.length, 2);

  await fs.writeFile(join(source, 'new.bin'), seededBytes(100_000, 'future-new'));
  const missed = await backup({ repo: primary, paths: [source] });
  // A day later, the copy still lacks the newest real snapshot (say its pack was damaged at the primary).
  const [row] = await copyLag({ copy, primary, nowMs: Date.parse(missed.snapshot.time) + DAY });
  assert.equal(row.missing, 1);
  assert.ok((row.lagSeconds ?? 0) >= DAY / 1000 - 60, `lag ${row.lagSeconds} s, a day expected`);
});
