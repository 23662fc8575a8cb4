// The blob sink of `amber backup --dry-run`: every blob's id computed as a backup computes it and
// looked up as a backup would dedup it, so the summary says what a backup would add, while nothing
// is encrypted, packed or written.
import { blobIdOf } from '../repo/blob-codec.ts';
import type { BlobIndex } from '../repo/blob-index.ts';
import type { BlobId } from '../core/ids.ts';
import type { Repository } from '../repo/repository.ts';
import type { BlobSink } from './blob-sink.ts';

export function createDryRunSink(repo: Repository, index: BlobIndex): BlobSink {
  const added = new Set<string>();
  const stats = { blobsAdded: 0, bytesAdded: 0, bytesStored: 0, packsStored: 0 };
  const known = (id: Uint8Array) => index.hasTrusted(id) || added.has(Buffer.from(id).toString('hex'));
  return {
    async storeBlob(_type, plaintext) {
      const id = blobIdOf(repo.key.secrets.idKey, plaintext);
      if (!known(id)) {
        added.add(id.toString('hex'));
        stats.blobsAdded += 1;
        stats.bytesAdded += plaintext.length;
      }
      return id.toString('hex') as BlobId;
    },
    async flush() {},
    async close() {},
    reuse() {},
    reuseIfTrusted: (ids) => {
      for (let offset = 0; offset < ids.length; offset += 32)
        if (!index.hasTrusted(ids.subarray(offset, offset + 32))) return false;
      return true;
    },
    claim(id) {
      if (known(id)) return false;
      added.add(Buffer.from(id).toString('hex'));
      return true;
    },
    async storeResealed() {
      throw new Error('a dry run copies nothing');
    },
    stats,
    written: [],
    reusedPacks: new Set(),
  };
}
