import { test } from 'node:test';
import assert from 'node:assert/strict';
import { systemClock } from '../core/clock.ts';
import { createMemoryStore } from '../storage/memory/memory-store.ts';
import { initRepository } from '../repo/repository.ts';
import { loadIndex } from '../repo/index-loader.ts';
import { createBlobReader } from '../repo/blob-reader.ts';
import { seededBytes } from '../testing/repo-fixture.ts';
import { createBlobSink } from './blob-sink.ts';
import { testOperation } from '../testing/operation.ts';

const content = (n: number) => seededBytes(1 + (n % 30) * 9_000, `blob ${n % 30}`);

for (const workers of [0, 2]) {
  test(`blobs stored with ${workers} encoding workers read back exactly, each stored once`, async () => {
    const repo = testOperation(
      await initRepository({
        store: createMemoryStore(),
        passphrase: 'p',
        clock: systemClock,
        kdfLogN: 10,
        packTargetBytes: 256 * 1024,
      }),
    );
    const sink = createBlobSink(repo, (await loadIndex(repo)).index, { workers });
    const shared = Buffer.alloc(512 * 1024);
    const ids: string[] = [];
    try {
      for (let n = 0; n < 40; n++) {
        // Owned buffers may move to a worker; views into a buffer the caller reuses must be copied.
        if (n % 2 === 0) {
          ids.push(await sink.storeBlob('data', content(n)));
        } else {
          const bytes = content(n);
          bytes.copy(shared);
          ids.push(await sink.storeBlob('data', shared.subarray(0, bytes.length)));
          shared.fill(0xee);
        }
      }
      await sink.flush();
    } finally {
      await sink.close();
    }
    assert.ok(sink.stats.packsStored > 1, 'several packs were written');
    assert.equal(sink.stats.blobsAdded, 30, 'the ten repeated blobs are stored once');
    const reader = createBlobReader(repo, (await loadIndex(repo)).index);
    for (const [n, id] of ids.entries()) {
      assert.deepEqual(await reader.readBlob(Buffer.from(id, 'hex')), content(n), `blob ${n}`);
    }
  });
}
