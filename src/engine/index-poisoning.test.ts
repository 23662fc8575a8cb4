// One writer must not be able to poison another's backups or the owner's restores through the index:
// forged index entries are never trusted for dedup, never shadow trusted ones, and a restore falls
// back to every other stored copy when the location it tried first is a lie.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { sha256Hex } from '../crypto/index.ts';
import { createFsStore } from '../storage/fs/fs-store.ts';
import { systemClock } from '../core/clock.ts';
import { openRepository } from '../repo/repository.ts';
import { addKey } from '../protection/key-admin.ts';
import { loadIndex } from '../repo/index-loader.ts';
import { encodeIndex, type IndexedPack } from '../repo/index-file.ts';
import { objectName } from '../repo/layout.ts';
import type { PackEntry } from '../repo/pack.ts';
import { asPackId } from '../core/ids.ts';
import { compareTrees } from '../testing/tree-compare.ts';
import { createScratchRepo, openTestRepo, seededBytes, SMALL_CHUNKER } from '../testing/repo-fixture.ts';
import { backup } from './backup.ts';
import { restore } from './restore.ts';
import { findSnapshot } from './snapshots.ts';
import type { Operation } from '../governance/operation.ts';
import { testOperation } from '../testing/operation.ts';

const FILE_BYTES = 1024 * 1024;
const BOGUS_OFFSET = 12_345;

async function writer(repoPath: string, owner: Operation, passphrase: string): Promise<Operation> {
  await addKey(owner, { passphrase, role: 'write-only', kdfLogN: 10 });
  return openRepository({ store: createFsStore(repoPath), passphrase, clock: systemClock }).then((opened) =>
    testOperation(opened),
  );
}

/** Index entries signed by `forger` that place every blob it can see at a bogus offset in its own pack. */
async function forgeIndex(forger: Operation, options: { sortBefore?: string } = {}): Promise<string> {
  const { index } = await loadIndex(forger);
  const entries: PackEntry[] = [];
  const seen = await listBlobIds(forger);
  for (const id of seen) {
    const location = index.get(id)!;
    entries.push({
      id,
      type: location.type,
      compression: location.compression,
      offset: BOGUS_OFFSET,
      sealedLength: location.sealedLength,
      rawLength: location.rawLength,
    });
  }
  const bogusPack: IndexedPack = { id: asPackId(index.packIds[0]), entries };
  for (let attempt = 0; ; attempt++) {
    const padding: IndexedPack = { id: asPackId(sha256Hex(Buffer.from(`padding ${attempt}`))), entries: [] };
    const bytes = encodeIndex([bogusPack, padding], forger.key.secrets.indexKey, forger.key.signer);
    const name = objectName('index', sha256Hex(bytes));
    if (options.sortBefore && name > options.sortBefore) continue;
    await forger.store.put(name, bytes);
    return name;
  }
}

async function listBlobIds(repo: Operation): Promise<Buffer[]> {
  const ids: Buffer[] = [];
  const { readIndexPayload } = await import('../repo/index-file.ts');
  const { readRecords } = await import('../repo/records.ts');
  for (const { name, record } of await readRecords(repo.store, 'index', 'index', repo.authority.signingKeyFor, [])) {
    readIndexPayload(record.payload, repo.key.secrets.indexKey, name, (_pack, entry) => {
      if (entry.type === 'data') ids.push(Buffer.from(entry.id));
    });
  }
  return ids;
}

test("forged index entries from one writer neither poison another writer's dedup nor break the owner's restores", async (t) => {
  const { dir, repoPath, owner } = await createScratchRepo(t, 'poison', { chunker: SMALL_CHUNKER });
  const honest = await writer(repoPath, owner, 'honest writer');
  const hostile = await writer(repoPath, owner, 'hostile writer');

  const source = join(dir, 'source');
  await fs.mkdir(source);
  await fs.writeFile(join(source, 'data.bin'), seededBytes(FILE_BYTES, 'shared data'));
  const first = await backup({ repo: honest, paths: [source] });
  const honestIndex = (await fs.readdir(join(repoPath, 'index'))).map((name) => `index/${name}`)[0];

  // The hostile writer can read index objects (it holds the index key) and names the honest
  // writer's blobs at a bogus place, in an index object that sorts first.
  const forged = await forgeIndex(hostile, { sortBefore: honestIndex });
  assert.ok(forged < honestIndex);

  // The owner still restores the honest snapshot exactly: a failed location falls back to the real copy.
  const ownerView = await openTestRepo(repoPath);
  const target = join(dir, 'restored');
  const result = await restore({ repo: ownerView, snapshot: await findSnapshot(ownerView, first.snapshotId), target });
  assert.deepEqual(result.errors, []);
  assert.deepEqual(await compareTrees(source, join(target, source)), []);

  // A third writer backing up the same data dedups against neither of them: it stores its own copy.
  const third = await writer(repoPath, owner, 'third writer');
  const copy = await backup({ repo: third, paths: [source] });
  assert.ok(copy.snapshot.summary.bytesAdded >= FILE_BYTES, "a writer never trusts another writer's index");
});

test("a forged index cannot shadow the owner's own entries, whatever order it sorts in", async (t) => {
  const { dir, repoPath, owner } = await createScratchRepo(t, 'poison-owner', { chunker: SMALL_CHUNKER });
  const source = join(dir, 'source');
  await fs.mkdir(source);
  await fs.writeFile(join(source, 'data.bin'), seededBytes(FILE_BYTES, 'owner data'));
  const first = await backup({ repo: owner, paths: [source] });
  const hostile = await writer(repoPath, owner, 'hostile writer');
  await forgeIndex(hostile);

  const reopened = await openTestRepo(repoPath);
  const { index } = await loadIndex(reopened);
  for (const id of await listBlobIds(reopened)) {
    const location = index.get(id)!;
    assert.equal(location.trusted, true, 'the owner-signed location wins');
    assert.notEqual(location.offset, BOGUS_OFFSET);
  }
  const again = await backup({ repo: reopened, paths: [source] });
  assert.equal(again.snapshot.summary.bytesRead, 0);
  const target = join(dir, 'restored');
  const result = await restore({ repo: reopened, snapshot: await findSnapshot(reopened, first.snapshotId), target });
  assert.deepEqual(result.errors, []);
});
