// Red team, fs store as root: two single-file edits that hide compliance-locked snapshots while
// `verify` and `audit verify` stay green (deleting the snapshots themselves would be reported).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { systemClock } from '../../src/core/clock.ts';
import { openRepository } from '../../src/repo/repository.ts';
import {
  createTestRepo,
  openTestRepo,
  makeTempDir,
  removeTree,
  seededBytes,
  useTemporaryWriterCache,
} from '../../src/testing/repo-fixture.ts';
import { backup } from '../../src/engine/backup.ts';
import { listSnapshots } from '../../src/engine/snapshots.ts';
import { verify } from '../../src/engine/verify.ts';
import { addKey } from '../../src/protection/key-admin.ts';
import { FORGETS, putRecord } from '../../src/repo/retention-records.ts';
import { createFsStore } from '../../src/storage/fs/fs-store.ts';
import { readAuditLog, verifyAudit } from '../../src/governance/audit-log.ts';
import { testOperation } from '../../src/testing/operation.ts';

const DAY = 86_400_000;
const root = process.getuid?.() === 0 ? false : 'needs root (chattr)';
const chattr = (...args: string[]) => execFileSync('chattr', args);

async function writerRepo(t: { after(fn: () => unknown): void }, label: string) {
  const dir = await makeTempDir(label);
  useTemporaryWriterCache(dir);
  t.after(() => removeTree(dir));
  const source = join(dir, 'src');
  await fs.mkdir(source);
  await fs.writeFile(join(source, 'a.bin'), seededBytes(200_000, label));
  const path = join(dir, 'repo');
  const owner = await createTestRepo(path);
  const added = await addKey(owner, { passphrase: 'db1 writer passphrase', role: 'write-only', kdfLogN: 10 });
  const writer = testOperation(
    await openRepository({ store: createFsStore(path), passphrase: 'db1 writer passphrase', clock: systemClock }),
  );
  const { snapshotId } = await backup({
    repo: writer,
    paths: [source],
    retainMs: 7 * 365 * DAY,
    lockMode: 'compliance',
  });
  return { path, owner, added, snapshotId };
}

test('fs as root: removing one writer key file hides all its locked snapshots, and verify and audit verify stay green', {
  skip: root,
}, async (t) => {
  const { path, owner, snapshotId } = await writerRepo(t, 'rt-keyfile');
  const writerKey = owner.keyFiles.find(({ info }) => info.role === 'write-only')!.name;
  chattr('-i', join(path, writerKey));
  chattr('-a', join(path, 'keys'));
  await fs.rm(join(path, writerKey));
  const repo = await openTestRepo(path);
  const listed = (await listSnapshots(repo)).map(({ id }) => id);
  const checked = await verify({ repo, readDataFraction: 0 });
  const audit = await verifyAudit(repo, await readAuditLog(repo));
  assert.ok(
    listed.includes(snapshotId) || checked.problems.length > 0 || audit.problems.length > 0,
    `a compliance-locked snapshot vanished (listed: ${listed.length}) yet verify found ${checked.problems.length} problems and audit verify ${audit.problems.length}`,
  );
});

test('fs as root: a forget mark whose mtime is moved past the lock hides a 7-year compliance snapshot and verify is green', {
  skip: root,
}, async (t) => {
  const { path, owner, snapshotId } = await writerRepo(t, 'rt-touch');
  const mark = await putRecord(owner, FORGETS, {
    time: new Date().toISOString(),
    snapshots: [snapshotId],
    rule: 'last=0',
  });
  chattr('-i', join(path, mark));
  const future = new Date(Date.now() + 8 * 365 * DAY);
  await fs.utimes(join(path, mark), future, future); // a "received" time 8 years in the future
  const repo = await openTestRepo(path);
  const listed = (await listSnapshots(repo)).map(({ id }) => id);
  const checked = await verify({ repo, readDataFraction: 0 });
  assert.ok(
    listed.includes(snapshotId) || checked.problems.length > 0,
    'a store time in the future must not make a forget mark count, and verify must not be green',
  );
});
