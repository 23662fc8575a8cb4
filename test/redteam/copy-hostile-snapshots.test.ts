// Red team, issue 18 (the isolated copy): snapshots the primary's own key signed but no backup
// writes. Whoever owns the primary holds that key. Before the fix, readers checked only that a
// snapshot names a root tree and the copy kept every other field as it came:
// - tags, paths, time or flags of the wrong type were copied, signed by the copy, and then broke
//   `amber snapshots` (TypeError, exit 1) for every snapshot at the copy, and `forget` there;
//   `copy --tag` crashed on them at once;
// - a field nested 20,000 levels deep (20 kB) made JSON.stringify overflow when the copy wrote its
//   own snapshot: the whole run aborted, every run, and nothing newer was ever copied;
// - a copy of a copy nests its source's provenance one level deeper, so a source its own readers
//   accept could make a snapshot the copy's readers refuse.
// Fixed: readers refuse such snapshots as damage (repo/snapshot.ts snapshotProblem), and the copy
// checks the snapshot it is about to write before it stores anything (engine/copy.ts checkWritable).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sealToPublicKey, sha256Hex } from '../../src/crypto/index.ts';
import { backup } from '../../src/engine/backup.ts';
import { copySnapshots } from '../../src/engine/copy.ts';
import { listSnapshots } from '../../src/engine/snapshots.ts';
import type { Operation } from '../../src/governance/operation.ts';
import { snapshotName } from '../../src/repo/layout.ts';
import { encodeSignedRecord } from '../../src/repo/signed-record.ts';
import { encodeSnapshot, MAX_SNAPSHOT_DEPTH, type Snapshot } from '../../src/repo/snapshot.ts';
import {
  createScratchRepo,
  createTestRepo,
  listNames,
  seededBytes,
  TEST_PASSPHRASE,
} from '../../src/testing/repo-fixture.ts';

const BIN = fileURLToPath(new URL('../../bin/amber.js', import.meta.url));

/** A snapshot object signed by the primary's owner key, its JSON exactly `json`. */
async function plantJson(primary: Operation, json: string): Promise<string> {
  const epoch = Buffer.alloc(4);
  epoch.writeUInt32BE(primary.currentEpoch.epoch);
  const sealed = sealToPublicKey(primary.currentEpoch.publicKey, Buffer.from(json), Buffer.from('amber/v1/snapshot'));
  const bytes = encodeSignedRecord('snapshot', Buffer.concat([epoch, sealed]), primary.key.signer);
  const id = sha256Hex(bytes);
  await primary.store.put(snapshotName(id as never), bytes);
  return id;
}

const plant = (primary: Operation, snapshot: Record<string, unknown>) => plantJson(primary, JSON.stringify(snapshot));

/** A provenance `levels` objects deep, as a chain of copies of copies would carry. */
function nestedCopiedFrom(levels: number): Record<string, unknown> {
  let from: Record<string, unknown> = { repository: 'f'.repeat(64), snapshot: 'e'.repeat(64) };
  for (let n = 1; n < levels; n++) from = { repository: 'f'.repeat(64), snapshot: 'e'.repeat(64), copiedFrom: from };
  return from;
}

function amber(dir: string, args: string[]) {
  const result = spawnSync(process.execPath, [BIN, ...args], {
    env: {
      PATH: process.env.PATH,
      AMBER_PASSWORD: TEST_PASSPHRASE,
      AMBER_FROM_PASSWORD: TEST_PASSPHRASE,
      AMBER_CACHE_DIR: join(dir, 'cache'),
    },
  });
  return { status: result.status, stdout: String(result.stdout), stderr: String(result.stderr) };
}

test('snapshots the primary key signed with fields of the wrong type are refused, never copied, and break nothing at the copy', async (t) => {
  const { dir, repoPath, owner: primary } = await createScratchRepo(t, 'rt-copy-json');
  const source = join(dir, 'src');
  await fs.mkdir(source);
  await fs.writeFile(join(source, 'a.bin'), seededBytes(10_000, 'a'));
  const real = await backup({ repo: primary, paths: [source], tags: ['daily'] });
  const base = { ...real.snapshot, tags: ['daily'] } as Record<string, unknown>;
  // Dated before the real one, so that each comes first in the run (snapshots are copied oldest first).
  const early = { ...base, time: '2001-01-01T00:00:00.000Z' };
  const hostile = {
    tags: await plant(primary, { ...early, tags: { daily: true } }),
    paths: await plant(primary, { ...early, paths: 'not-a-list' }),
    time: await plant(primary, { ...early, time: 12345 }),
    timeText: await plant(primary, { ...early, time: 'yesterday' }),
    flags: await plant(primary, { ...early, flags: null }),
    retention: await plant(primary, { ...early, retention: { mode: 'forever', until: 7 } }),
    parent: await plant(primary, { ...early, parent: ['../x'] }),
    // 20,000 levels in 40 kB: JSON.parse reads it, JSON.stringify cannot write it again.
    deep: await plantJson(
      primary,
      JSON.stringify(early).replace(/}$/, `,"x":${'['.repeat(20_000)}${']'.repeat(20_000)}}`),
    ),
  };
  // Acceptable at the primary (exactly the deepest a snapshot may be), one level too deep as a copy.
  const nested = await plant(primary, {
    ...early,
    copiedFrom: nestedCopiedFrom(MAX_SNAPSHOT_DEPTH - 1),
  });

  const copy = await createTestRepo(join(dir, 'copy'), { copyOf: primary });
  const result = await copySnapshots({ copy, primary, filter: { tags: ['daily'] } });
  assert.deepEqual(
    result.copied.map(({ source: id }) => id),
    [real.snapshotId],
    'the real snapshot is copied despite the hostile ones before it',
  );
  const ignored = new Map(result.ignored.map(({ name, code, problem }) => [name, { code, problem }]));
  for (const [field, id] of Object.entries(hostile)) {
    assert.equal(ignored.get(snapshotName(id as never))?.code, 'OBJECT_CORRUPT', `the snapshot with a bad ${field}`);
  }
  assert.deepEqual(
    result.failed.map(({ source: id, code }) => [id, code]),
    [[nested, 'OBJECT_CORRUPT']],
  );
  assert.match(result.failed[0].message, /nests deeper than 64 levels/);

  // Nothing at the copy but the real snapshot, which every command there can list.
  const problems: { name: string }[] = [];
  const atCopy = await listSnapshots(copy, problems as never, { includeForgotten: true });
  assert.deepEqual(problems, []);
  assert.equal(atCopy.length, 1);
  assert.equal((await listNames(copy.store, 'snapshots/')).length, 1, 'no unreadable snapshot was stored');
  const listed = amber(dir, ['snapshots', '--repo', join(dir, 'copy')]);
  assert.equal(listed.status, 0, listed.stderr);
  assert.match(listed.stdout, /copy of /);
  const status = amber(dir, ['copy', 'status', '--repo', join(dir, 'copy'), '--from-repo', repoPath, '--json']);
  assert.equal(status.status, 0, status.stderr);
  assert.equal(JSON.parse(status.stdout).length, 1, status.stdout);
});

test('a snapshot whose copy would be larger than any record is refused before anything is stored', async (t) => {
  const { dir, owner: primary } = await createScratchRepo(t, 'rt-copy-huge');
  const source = join(dir, 'src');
  await fs.mkdir(source);
  await fs.writeFile(join(source, 'a.bin'), seededBytes(10_000, 'huge'));
  const real = await backup({ repo: primary, paths: [source] });
  // 130 MiB of paths: readable at the primary (records may hold 256 MiB), but its copy holds them
  // twice (the snapshot's own and copiedFrom's) and would be refused by every reader of the copy.
  const path = `/${'p'.repeat(130 * 1024 * 1024)}`;
  const huge = encodeSnapshot(
    { ...real.snapshot, paths: [path], time: '2001-01-01T00:00:00.000Z' } as Snapshot,
    primary.currentEpoch,
    primary.key.signer,
  );
  const hugeId = sha256Hex(huge);
  await primary.store.put(snapshotName(hugeId as never), huge);

  const copy = await createTestRepo(join(dir, 'copy'), { copyOf: primary });
  const result = await copySnapshots({ copy, primary });
  assert.deepEqual(
    result.failed.map(({ source: id, code }) => [id, code]),
    [[hugeId, 'OBJECT_CORRUPT']],
  );
  assert.match(result.failed[0].message, /larger than any record/);
  assert.deepEqual(
    result.copied.map(({ source: id }) => id),
    [real.snapshotId],
  );
  const problems: unknown[] = [];
  assert.equal((await listSnapshots(copy, problems as never)).length, 1);
  assert.deepEqual(problems, []);
});
