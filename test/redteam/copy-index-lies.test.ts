// Red team, issue 18: index objects at the primary, signed with its owner key and named to be read
// first (so that their entries are the ones the primary's index keeps), that lie about every blob:
// the type, an offset past the pack's end, a sealed length of 4 GiB, the raw length, the
// compression, a pack that does not exist. Before the fixes:
// - a sealed length past 2 GiB reached readSync as a negative int32 (RangeError): the copy run
//   crashed, as did restore and verify at the primary (storage/fs/fs-store.ts: judged by the size);
// - an offset past the pack's end sized a read window negatively (an assertion error): the same
//   (repo/blob-reader.ts: refused as damage before any read);
// - an entry at the same pack and offset as the real one but with other lengths made the reader
//   skip the real one as "the location that failed": the blob was unreadable though intact
//   (repo/blob-reader.ts sameLocation);
// - a blob read again after a lying type was stored at the copy under that type (engine/copy.ts).
// Now the copy takes every real blob, verifies clean, restores bit for bit, and has no lock gap.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { PackId } from '../../src/core/ids.ts';
import { sha256Hex } from '../../src/crypto/index.ts';
import { backup } from '../../src/engine/backup.ts';
import { copySnapshots } from '../../src/engine/copy.ts';
import { lockStatus } from '../../src/engine/lock-coverage.ts';
import { restore } from '../../src/engine/restore.ts';
import { listSnapshots } from '../../src/engine/snapshots.ts';
import { verify } from '../../src/engine/verify.ts';
import { encodeIndex, readIndexPayload } from '../../src/repo/index-file.ts';
import { loadIndex } from '../../src/repo/index-loader.ts';
import { objectName } from '../../src/repo/layout.ts';
import type { PackEntry } from '../../src/repo/pack.ts';
import { readRecords } from '../../src/repo/records.ts';
import { createScratchRepo, createTestRepo, seededBytes, SMALL_CHUNKER } from '../../src/testing/repo-fixture.ts';
import { compareTrees } from '../../src/testing/tree-compare.ts';

const LIES: ((entry: PackEntry) => PackEntry)[] = [
  (entry) => ({ ...entry, type: entry.type === 'data' ? 'tree' : 'data' }),
  (entry) => ({ ...entry, offset: entry.offset + 10_000_000 }),
  (entry) => ({ ...entry, sealedLength: 0xfffffff0 }),
  (entry) => ({ ...entry, rawLength: entry.rawLength + 1 }),
  (entry) => ({ ...entry, compression: entry.compression === 0 ? 1 : 0 }),
];
const NO_SUCH_PACK = 'f'.repeat(64) as PackId;

test('index entries at the primary lying about every blob neither crash the copy nor keep it from the real blobs', async (t) => {
  const { dir, owner: primary } = await createScratchRepo(t, 'rt-copy-index', { chunker: SMALL_CHUNKER });
  const source = join(dir, 'src');
  await fs.mkdir(join(source, 'sub'), { recursive: true });
  await fs.writeFile(join(source, 'a.bin'), seededBytes(600_000, 'lies-a'));
  await fs.writeFile(join(source, 'sub', 'b.bin'), seededBytes(100_000, 'lies-b'));
  await fs.writeFile(join(source, 'c.txt'), 'words '.repeat(50_000));
  await backup({ repo: primary, paths: [source] });

  const real: { packId: PackId; entry: PackEntry }[] = [];
  for (const { name, record } of await readRecords(
    primary.store,
    'index',
    'index',
    primary.authority.signingKeyFor,
    [],
  ))
    readIndexPayload(record.payload, primary.key.secrets.indexKey, name, (packId, entry) =>
      real.push({ packId, entry: { ...entry, id: Buffer.from(entry.id) } }),
    );
  const lying = new Map<PackId, PackEntry[]>();
  for (const [n, { packId, entry }] of real.entries()) {
    // Every sixth one names a pack that does not exist; the others each lie in one field.
    const pack = n % 6 === 5 ? NO_SUCH_PACK : packId;
    lying.set(pack, [...(lying.get(pack) ?? []), n % 6 === 5 ? entry : LIES[n % 6](entry)]);
  }
  let bytes: Buffer;
  let name: string;
  do {
    bytes = encodeIndex(
      [...lying].map(([id, entries]) => ({ id, entries })),
      primary.key.secrets.indexKey,
      primary.key.signer,
    );
    name = objectName('index', sha256Hex(bytes));
  } while (!name.startsWith('index/0'));
  await primary.store.put(name, bytes);
  const primaryIndex = (await loadIndex(primary)).index;
  assert.ok(
    real.every(({ entry }) => primaryIndex.get(entry.id)?.packId !== undefined),
    'the primary knows every blob',
  );

  const copy = await createTestRepo(join(dir, 'copy'), { copyOf: primary });
  const result = await copySnapshots({ copy, primary });
  assert.deepEqual(result.failed, []);
  assert.equal(result.copied.length, 1);
  assert.deepEqual((await verify({ repo: copy, readDataFraction: 1 })).problems, []);
  assert.ok((await lockStatus({ repo: copy })).every(({ gaps }) => gaps.length === 0));
  const copyIndex = (await loadIndex(copy)).index;
  for (const { entry } of real)
    assert.equal(copyIndex.get(entry.id)?.type, entry.type, 'each blob stored at the copy under its real type');
  const [copied] = await listSnapshots(copy);
  const target = join(dir, 'restored');
  await restore({ repo: copy, snapshot: copied, target });
  assert.deepEqual(await compareTrees(source, join(target, source), { ignoreRootMeta: true }), []);
});
