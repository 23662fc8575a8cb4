// A backup session's write path: id → dedup → encode → pack → store → index. Packs are stored
// before the index objects that name them, and index objects before the snapshot (write order in
// docs/format.md), so a crash at any point leaves only unreferenced data behind. Pack writes overlap
// with filling the next pack; memory stays bounded by the number of pack buffers.
import { randomKey } from '../crypto/index.ts';
import { asBlobId, type BlobId } from '../core/ids.ts';
import type { Repository } from '../repo/repository.ts';
import type { BlobIndex } from '../repo/blob-index.ts';
import {
  blobIdOf,
  checkBlobSize,
  encodeBlob,
  resealBlob,
  type BlobType,
  type EncodedBlob,
} from '../repo/blob-codec.ts';
import { isAmberError } from '../core/errors.ts';
import { createCodecPool, resealError, type CodecPool, type ResealInput } from './codec-pool.ts';
import { defaultPoolSize } from './worker-pool.ts';
import { createPackBuilder, newPackKey, type PackBuilder, type PackKey } from '../repo/pack.ts';
import { createIndexWriter } from '../repo/index-writer.ts';
import { packName } from '../repo/layout.ts';
import type { PutOptions } from '../storage/store.ts';

/** Pack buffers in all, filling or being written: two by default; a remote store that wants more
 *  writes in flight (S3, the vault) gets one more per extra write. */
const packBuffers = (repo: Repository) => 1 + (repo.store.parallelWrites ?? 1);
/** Plaintext handed to the encoding workers and not yet placed in a pack. */
const ENCODE_IN_FLIGHT_BYTES = 8 * 1024 * 1024;
const ENCODE_IN_FLIGHT_BLOBS = 4096;
/** A pack of tiny blobs closes early: each blob's entry is held in memory until its index is written. */
const PACK_MAX_BLOBS = 8192;

export interface SinkStats {
  blobsAdded: number;
  bytesAdded: number;
  bytesStored: number;
  packsStored: number;
}

export interface BlobSink {
  /** Stores a blob unless this key may already dedup against it; returns its id. The plaintext is
   *  not retained once the call returns, so callers may reuse its buffer. `claimed`: the caller
   *  claimed the id (`claim`) and the blob is stored without a dedup check. */
  storeBlob(type: BlobType, plaintext: Uint8Array, options?: { claimed?: boolean }): Promise<BlobId>;
  /** Writes every pending pack, then the index objects that name them. */
  flush(): Promise<void>;
  /** Stops the encoding workers; call once, after flush or on failure. */
  close(): Promise<void>;
  /** Notes blobs the snapshot uses without storing them (a parent's unchanged file). */
  reuse(ids: readonly string[]): void;
  /** Notes `ids` (32 bytes each) as reused when every one is a blob this key may dedup against;
   *  otherwise notes nothing and returns false. */
  reuseIfTrusted(ids: Buffer): boolean;
  /**
   * Whether a blob must be stored: false when this key may dedup against it already (noted as
   * reused), true otherwise, and from then on it counts as pending, so it is claimed only once.
   */
  claim(id: Uint8Array): boolean;
  /**
   * Stores claimed blobs that arrive sealed from a repository sharing this one's id key (a copy):
   * each is decrypted, decompressed and its id computed again before it is sealed under this
   * session's key. Resolves once they are placed in packs; rejects with OBJECT_CORRUPT naming the
   * blob and its pack when one fails its check (the session stays usable).
   */
  storeResealed(input: Omit<ResealInput, 'idKey'>): Promise<void>;
  readonly stats: SinkStats;
  /** Packs and index objects this session wrote. */
  readonly written: readonly string[];
  /** Names of packs already stored that hold blobs the session used (this session's own included). */
  readonly reusedPacks: ReadonlySet<string>;
}

export interface BlobSinkOptions {
  workers?: number;
  /** Retention every pack and (unless `indexRetention`) index object gets when it is stored. */
  retention?: PutOptions;
  /** Retention index objects get when they are stored. */
  indexRetention?: PutOptions;
}

export function createBlobSink(repo: Repository, index: BlobIndex, options: BlobSinkOptions = {}): BlobSink {
  const packKey: PackKey = newPackKey(repo.currentEpoch.epoch, repo.currentEpoch.publicKey, randomKey());
  const workers = options.workers ?? defaultPoolSize();
  const pool: CodecPool | undefined =
    workers > 0 ? createCodecPool({ dataKey: packKey.dataKey, size: workers }) : undefined;
  const encodes = new Set<Promise<void>>();
  let encodeBytes = 0;
  // Waiters for room in the encoding window, woken one by one (Promise.race over many long-lived
  // promises would pile up reactions on each of them).
  const roomWaiters: (() => void)[] = [];
  const hasRoom = () => encodeBytes <= ENCODE_IN_FLIGHT_BYTES && encodes.size < ENCODE_IN_FLIGHT_BLOBS;
  /** Encoded blobs are placed in packs one at a time, in the order they finish. */
  let placing: Promise<void> = Promise.resolve();
  const target = repo.config.packTargetBytes;
  const buffers = packBuffers(repo);
  const free: PackBuilder[] = [];
  let created = 0;
  const writes = new Set<Promise<void>>();
  let failure: { error: unknown } | undefined;
  const indexWriter = createIndexWriter(repo, options.indexRetention ?? options.retention);
  const packsWritten: string[] = [];
  const reusedPacks = new Set<string>();
  const noteReused = (id: Uint8Array) => {
    const packId = index.packOf(id);
    if (packId !== undefined) reusedPacks.add(packName(packId));
  };
  const stats: SinkStats = { blobsAdded: 0, bytesAdded: 0, bytesStored: 0, packsStored: 0 };

  const rethrowFailure = () => {
    if (failure) throw failure.error;
  };

  const takeBuilder = async (): Promise<PackBuilder> => {
    while (free.length === 0 && created >= buffers) await Promise.race(writes);
    rethrowFailure();
    const builder = free.pop();
    if (builder) return builder;
    created += 1;
    return createPackBuilder(target);
  };

  const open: Record<BlobType, PackBuilder | undefined> = { data: undefined, tree: undefined };

  const storePack = async (type: BlobType) => {
    const builder = open[type];
    if (!builder || builder.count === 0) return;
    open[type] = undefined;
    const pack = builder.finish(packKey, repo.key.signer);
    const write = repo.store.put(packName(pack.id), pack.bytes, options.retention).then(() => {
      stats.packsStored += 1;
      packsWritten.push(packName(pack.id));
      stats.bytesStored += pack.bytes.length;
      for (const entry of pack.entries) index.add(entry.id, { ...entry, packId: pack.id, trusted: true });
      return indexWriter.add({ id: pack.id, entries: pack.entries });
    });
    const tracked: Promise<void> = write
      .catch((error: unknown) => {
        failure ??= { error };
      })
      .finally(() => {
        builder.reset();
        free.push(builder);
        writes.delete(tracked);
      });
    writes.add(tracked);
  };

  const place = async (blob: EncodedBlob) => {
    // A blob that would take the pack past its target starts the next one instead, so a builder's
    // buffer never grows past the target (each growth is a fresh buffer and a copy).
    const current = open[blob.type];
    if (current && current.sizeBytes + blob.sealed.length > target) await storePack(blob.type);
    const builder = open[blob.type] ?? (open[blob.type] = await takeBuilder());
    builder.add(blob);
    if (builder.sizeBytes >= target || builder.count >= PACK_MAX_BLOBS) await storePack(blob.type);
  };

  return {
    stats,
    async storeBlob(type, plaintext, storeOptions) {
      rethrowFailure();
      checkBlobSize(type, plaintext.length);
      const id = blobIdOf(repo.key.secrets.idKey, plaintext);
      if (!storeOptions?.claimed) {
        if (index.hasTrusted(id)) {
          noteReused(id);
          return asBlobId(id.toString('hex'));
        }
        index.addPending(id);
      }
      stats.blobsAdded += 1;
      stats.bytesAdded += plaintext.length;
      const size = plaintext.length;
      if (!pool) {
        const copy = Buffer.from(plaintext);
        placing = placing.then(() => place(encodeBlob({ plaintext: copy, id, type, dataKey: packKey.dataKey })));
        await placing;
        return asBlobId(id.toString('hex'));
      }
      encodeBytes += size;
      const encoded: Promise<void> = pool
        .encode(type, id, Buffer.from(plaintext.buffer, plaintext.byteOffset, plaintext.byteLength))
        .then((blob) => {
          placing = placing.then(() => place(blob));
          return placing;
        })
        .catch((error: unknown) => {
          failure ??= { error };
        })
        .finally(() => {
          encodeBytes -= size;
          encodes.delete(encoded);
          while (roomWaiters.length > 0 && hasRoom()) roomWaiters.shift()!();
        });
      encodes.add(encoded);
      while (!hasRoom()) await new Promise<void>((wake) => roomWaiters.push(wake));
      return asBlobId(id.toString('hex'));
    },
    async flush() {
      await Promise.all(encodes);
      await placing;
      rethrowFailure();
      await storePack('data');
      await storePack('tree');
      await Promise.all(writes);
      rethrowFailure();
      await indexWriter.flush();
    },
    async close() {
      // A session that failed (or was abandoned) still indexes the packs it did store, so that no pack is left that no
      // index object names (invisible to dedup and to readers that go by the index). Best effort:
      // the store that failed a pack may fail this too, and verify re-indexes what is left.
      await Promise.allSettled([...encodes, placing]);
      await Promise.allSettled([...writes]);
      await indexWriter.flush().catch(() => undefined);
      await pool?.close();
    },
    reuse(ids) {
      for (const id of ids) noteReused(Buffer.from(id, 'hex'));
    },
    claim(id) {
      if (index.hasTrusted(id)) {
        noteReused(id);
        return false;
      }
      index.addPending(id);
      return true;
    },
    async storeResealed(input) {
      rethrowFailure();
      const full = { ...input, idKey: repo.key.secrets.idKey };
      let blobs: EncodedBlob[];
      if (pool) blobs = await pool.reseal(full);
      else {
        let at = 0;
        blobs = input.refs.map((ref, n) => {
          const sealed = input.sealed.subarray(at, (at += input.lengths[n]));
          try {
            return resealBlob(
              ref,
              sealed,
              { from: input.sourceKey, to: packKey.dataKey, idKey: full.idKey },
              input.where,
            );
          } catch (error) {
            if (!isAmberError(error)) throw error;
            throw resealError(full, { index: n, code: error.code, message: error.message });
          }
        });
      }
      for (const blob of blobs) {
        stats.blobsAdded += 1;
        stats.bytesAdded += blob.rawLength;
      }
      const placed = placing.then(async () => {
        for (const blob of blobs) await place(blob);
      });
      placing = placed.catch((error: unknown) => {
        failure ??= { error };
      });
      await placed;
    },
    reuseIfTrusted(ids) {
      const each = Array.from({ length: ids.length / 32 }, (_, n) => ids.subarray(n * 32, n * 32 + 32));
      if (!each.every((id) => index.hasTrusted(id))) return false;
      for (const id of each) noteReused(id);
      return true;
    },
    get written() {
      return [...packsWritten, ...indexWriter.names];
    },
    reusedPacks,
  };
}
