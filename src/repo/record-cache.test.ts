// The local record cache saves fetches and never changes what is trusted: a forged or edited cache
// line, a record the store no longer lists, or a signer revoked since, all count as the store says.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { Store } from '../storage/store.ts';
import { alterObjectFile, createScratchRepo, openTestRepo, TEST_PASSPHRASE } from '../testing/repo-fixture.ts';
import { verify } from '../engine/verify.ts';
import { addKey } from '../protection/key-admin.ts';
import { openRepository } from './repository.ts';
import { createFsStore } from '../storage/fs/fs-store.ts';
import { openRecordCache } from './record-cache.ts';
import { GRANTS, loadRecords, putRecord, type Grant } from './retention-records.ts';
import type { RecordProblem } from './records.ts';
import { systemClock } from '../core/clock.ts';
import { encodeSignedRecord, jsonBytes } from './signed-record.ts';
import { objectName } from './layout.ts';
import { sha256Hex } from '../crypto/index.ts';
import { testOperation } from '../testing/operation.ts';
import type { Operation } from '../governance/operation.ts';

const MAC_KEY = Buffer.alloc(32, 7);
const grant = (object: string): Grant => ({
  time: new Date().toISOString(),
  snapshot: null,
  entries: [{ mode: 'governance', until: '2030-01-01T00:00:00.000Z', objects: [object] }],
});

/** Opens the repository through a store that counts the records it fetches. */
async function counted(repoPath: string, cachePath: string): Promise<{ repo: Operation; gets: () => number }> {
  let gets = 0;
  const repo = await openTestRepo(repoPath, (store: Store) => ({
    ...store,
    get: (name, range) => {
      if (name.startsWith('grants/')) gets += 1;
      return store.get(name, range);
    },
  }));
  repo.recordCache = openRecordCache(cachePath, MAC_KEY);
  return { repo, gets: () => gets };
}

test('cached records are not fetched again; new ones are, and both are returned', async (t) => {
  const { dir, repoPath, owner } = await createScratchRepo(t, 'record-cache');
  const cachePath = join(dir, 'cache', 'records.jsonl');
  for (const n of [1, 2, 3]) await putRecord(owner, GRANTS, grant(`data/${n}`));

  const first = await counted(repoPath, cachePath);
  assert.equal((await loadRecords(first.repo, GRANTS, [])).length, 3);
  assert.equal(first.gets(), 3);

  await putRecord(owner, GRANTS, grant('data/4'));
  const second = await counted(repoPath, cachePath);
  const loaded = await loadRecords(second.repo, GRANTS, []);
  assert.deepEqual(loaded.map(({ value }) => value.entries[0].objects[0]).sort(), [
    'data/1',
    'data/2',
    'data/3',
    'data/4',
  ]);
  assert.equal(second.gets(), 1, 'only the record written since the last run is fetched');
});

test('an edited cache line is ignored, and a cached record the store no longer lists does not count', async (t) => {
  const { dir, repoPath, owner } = await createScratchRepo(t, 'record-cache-edit');
  const cachePath = join(dir, 'cache', 'records.jsonl');
  const name = await putRecord(owner, GRANTS, grant('data/real'));
  await loadRecords((await counted(repoPath, cachePath)).repo, GRANTS, []);

  // An attacker with the cache file (not the key) rewrites the payload to extend a lie.
  const lines = (await fs.readFile(cachePath, 'utf8'))
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));
  lines[0].p = Buffer.from(JSON.stringify(grant('data/forged'))).toString('base64');
  await fs.writeFile(cachePath, `${lines.map((line) => JSON.stringify(line)).join('\n')}\n`);
  const edited = await counted(repoPath, cachePath);
  const loaded = await loadRecords(edited.repo, GRANTS, []);
  assert.deepEqual(
    loaded.map(({ value }) => value.entries[0].objects[0]),
    ['data/real'],
  );
  assert.equal(edited.gets(), 1, 'the edited line was not trusted, so the record was fetched');

  // The store no longer lists the record (a restored older copy of the repository, say).
  const gone = await counted(repoPath, cachePath);
  gone.repo.store = { ...gone.repo.store, list: async function* () {} };
  assert.deepEqual(await loadRecords(gone.repo, GRANTS, []), []);

  // verify reads around the cache: a record damaged on disk after it was cached is reported.
  await alterObjectFile(join(repoPath, name), (bytes) => Buffer.concat([bytes, Buffer.from('x')]));
  const checked = await counted(repoPath, cachePath);
  assert.equal((await loadRecords(checked.repo, GRANTS, [])).length, 1, 'the cache still vouches for it');
  const report = await verify({ repo: checked.repo, readDataFraction: 0 });
  assert.deepEqual(
    report.problems.filter(({ object }) => object === name).map(({ code }) => code),
    ['OBJECT_CORRUPT'],
  );
});

test('a cached record from a writer revoked since is refused and reported', async (t) => {
  const { dir, repoPath, owner } = await createScratchRepo(t, 'record-cache-revoked');
  const cachePath = join(dir, 'cache', 'records.jsonl');
  const added = await addKey(owner, { passphrase: 'writer pass', role: 'write-only', kdfLogN: 10 });
  const writer = testOperation(
    await openRepository({ store: createFsStore(repoPath), passphrase: 'writer pass', clock: systemClock }),
  );
  const name = await putRecord(writer, GRANTS, grant('data/w'));
  assert.equal((await loadRecords((await counted(repoPath, cachePath)).repo, GRANTS, [])).length, 1);

  // A revocation that accepts none of the writer's grants (as revocations did before they listed
  // grants): the cached copy of the grant must not outlive the signer's authority.
  const revocation = encodeSignedRecord(
    'revocation',
    jsonBytes({
      keyId: added.keyId,
      revokedAt: new Date().toISOString(),
      reason: 'laptop stolen',
      acceptedObjects: [],
    }),
    owner.key.signer,
  );
  await owner.store.put(objectName('revocations', sha256Hex(revocation)), revocation);
  const after = testOperation(
    await openRepository({ store: createFsStore(repoPath), passphrase: TEST_PASSPHRASE, clock: systemClock }),
  );
  after.recordCache = openRecordCache(cachePath, MAC_KEY);
  const problems: RecordProblem[] = [];
  assert.deepEqual(await loadRecords(after, GRANTS, problems), []);
  assert.deepEqual(
    problems.map((problem) => [problem.name, problem.code]),
    [[name, 'SIGNATURE_INVALID']],
  );
});
