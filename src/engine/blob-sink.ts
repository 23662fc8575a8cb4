// A backup session's write path: id → dedup → encode → pack → store → index. Packs are stored
// before the index objects that name them, and index objects before the snapshot (write order in
// docs/format.md), so a crash at any point leaves only unreferenced data behind.
import { randomKey } from '../crypto/index.ts';
import { asBlobId, type BlobId } from '../core/ids.ts';
import type { Repository } from '../repo/repository.ts';
import type { BlobIndex } from '../repo/blob-index.ts';
import { blobIdOf, encodeBlob, type BlobType, type EncodedBlob } from '../repo/blob-codec.ts';
import { assemblePack, newPackKey, type PackKey } from '../repo/pack.ts';
import { encodeIndex, type IndexedPack } from '../repo/index-file.ts';
import { objectName, packName } from '../repo/layout.ts';
import { sha256Hex } from '../crypto/index.ts';

/** Index objects are written every this many entries so memory for pending entries stays bounded. */
const INDEX_FLUSH_ENTRIES = 16_384;

export interface SinkStats {
  blobsAdded: number;
  bytesAdded: number;
  bytesStored: number;
  packsStored: number;
  indexObjectsStored: number;
}

export interface BlobSink {
  /** Stores a blob unless this key may already dedup against it; returns its id. The plaintext is
   *  not retained once the call returns, so callers may reuse its buffer. */
  storeBlob(type: BlobType, plaintext: Uint8Array): Promise<BlobId>;
  /** Writes every pending pack, then the index objects that name them. */
  flush(): Promise<void>;
  readonly stats: SinkStats;
}

export function createBlobSink(repo: Repository, index: BlobIndex): BlobSink {
  const packKey: PackKey = newPackKey(repo.currentEpoch.epoch, repo.currentEpoch.publicKey, randomKey());
  const open: Record<BlobType, { blobs: EncodedBlob[]; bytes: number }> = {
    data: { blobs: [], bytes: 0 },
    tree: { blobs: [], bytes: 0 },
  };
  let pendingIndex: IndexedPack[] = [];
  let pendingEntries = 0;
  const stats: SinkStats = { blobsAdded: 0, bytesAdded: 0, bytesStored: 0, packsStored: 0, indexObjectsStored: 0 };

  const storePack = async (type: BlobType) => {
    const { blobs } = open[type];
    if (blobs.length === 0) return;
    open[type] = { blobs: [], bytes: 0 };
    const pack = assemblePack(blobs, packKey, repo.key.signer);
    await repo.store.put(packName(pack.id), pack.bytes);
    stats.packsStored += 1;
    stats.bytesStored += pack.bytes.length;
    for (const entry of pack.entries) index.add(entry.id, { ...entry, packId: pack.id, trusted: true });
    pendingIndex.push({ id: pack.id, entries: pack.entries });
    pendingEntries += pack.entries.length;
    if (pendingEntries >= INDEX_FLUSH_ENTRIES) await storeIndex();
  };

  const storeIndex = async () => {
    if (pendingIndex.length === 0) return;
    const bytes = encodeIndex(pendingIndex, repo.key.secrets.indexKey, repo.key.signer);
    pendingIndex = [];
    pendingEntries = 0;
    await repo.store.put(objectName('index', sha256Hex(bytes)), bytes);
    stats.indexObjectsStored += 1;
  };

  return {
    stats,
    async storeBlob(type, plaintext) {
      const id = blobIdOf(repo.key.secrets.idKey, plaintext);
      if (index.hasTrusted(id)) return asBlobId(id.toString('hex'));
      index.addPending(id);
      const blob = encodeBlob({ plaintext, id, type, dataKey: packKey.dataKey });
      const target = open[type];
      target.blobs.push(blob);
      target.bytes += blob.sealed.length;
      stats.blobsAdded += 1;
      stats.bytesAdded += plaintext.length;
      if (target.bytes >= repo.config.packTargetBytes) await storePack(type);
      return asBlobId(id.toString('hex'));
    },
    async flush() {
      await storePack('data');
      await storePack('tree');
      await storeIndex();
    },
  };
}
