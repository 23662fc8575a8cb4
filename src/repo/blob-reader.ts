// Reading single blobs by id: locate through the index, read the pack's trailer once to unwrap its
// data key, then a ranged read of the blob. Every blob is authenticated and its id re-checked.
import { AmberError, isAmberError } from '../core/errors.ts';
import type { PackId } from '../core/ids.ts';
import type { BlobIndex, BlobLocation } from './blob-index.ts';
import { findAllLocations } from './index-loader.ts';
import { canOpenEpoch, openUnderEpoch } from './epochs.ts';
import { decodeBlob, type BlobRef } from './blob-codec.ts';
import { packName } from './layout.ts';
import { decodeTrailer, TRAILER_BYTES, unwrapPackKey } from './pack.ts';
import { writeNonZero } from '../source/fs/sparse-write.ts';
import type { Repository } from './repository.ts';

export interface BlobReader {
  readBlob(id: Buffer): Promise<Buffer>;
  /**
   * Writes a data blob's plaintext at `position` of the open file `fd`, skipping all-zero blocks
   * (the file must read as zeros there already); resolves with the offset just past the last byte
   * it wrote (`position` when every block was zero). Checked like readBlob.
   */
  writeBlob(id: Buffer, fd: number, position: number): Promise<number>;
  /** The plaintext length the index records for a blob, if it knows the blob. */
  rawLengthOf(id: Buffer): number | undefined;
  packDataKey(packId: PackId): Promise<Buffer>;
}

/** Decodes a sealed blob and writes it elsewhere (worker threads); same checks and errors as `decodeBlob`. */
export interface BlobDecoder {
  /** Resolves like BlobReader.writeBlob. */
  decodeAndWrite(
    ref: BlobRef,
    sealed: Uint8Array,
    keys: { dataKey: Uint8Array; idKey: Uint8Array },
    where: string,
    fd: number,
    position: number,
  ): Promise<number>;
}

/** Tree packs are read in windows of this size where the store names none. */
const TREE_WINDOW_BYTES = 1024 * 1024;

/** Smaller blobs are decoded here: a trip to a worker thread would cost more than the work. */
const DECODE_ELSEWHERE_BYTES = 64 * 1024;

/** `decoder` takes writes of the larger blobs. */
export function createBlobReader(repo: Repository, index: BlobIndex, decoder?: BlobDecoder): BlobReader {
  const packs = new Map<string, Promise<PackAccess>>();
  // Trees lie together in tree packs and are read in the order they were written, so they always go
  // through windows; data blobs only where a request costs far more than its bytes.
  const windows = createReadAhead(repo, repo.store.readAheadBytes ?? TREE_WINDOW_BYTES);
  const windowed = (location: BlobLocation) => location.type === 'tree' || repo.store.readAheadBytes !== undefined;

  const packAccess = (packId: PackId): Promise<PackAccess> => {
    let access = packs.get(packId);
    if (!access) {
      access = loadPackAccess(repo, packId);
      packs.set(packId, access);
      access.catch(() => packs.delete(packId));
    }
    return access;
  };
  const packDataKey = async (packId: PackId): Promise<Buffer> => (await packAccess(packId)).dataKey;

  /** Reads through the index's location, then every other stored copy, before reporting the first error. */
  async function fromAnyCopy<T>(id: Buffer, read: (location: BlobLocation) => Promise<T>): Promise<T> {
    const location = index.get(id);
    if (!location) {
      throw new AmberError('OBJECT_NOT_FOUND', `blob ${id.toString('hex').slice(0, 16)} is not in the index`, {
        hint: 'the repository is missing data; run `amber verify` to see what is affected',
        details: { blob: id.toString('hex') },
      });
    }
    try {
      return await read(location);
    } catch (error) {
      if (!isAmberError(error) || !['OBJECT_CORRUPT', 'OBJECT_NOT_FOUND'].includes(error.code)) throw error;
      // The in-memory index keeps one location per blob; when it fails (damage, or another
      // writer's index claiming the blob first), every other stored copy is tried before giving up.
      for (const other of await findAllLocations(repo, id)) {
        // Only the very entry that failed is skipped: one that differs in its lengths, type or
        // compression at the same place is another claim about the blob (one of them forged).
        if (sameLocation(other, location)) continue;
        try {
          return await read(other);
        } catch {
          // try the next copy; the first error is the one reported
        }
      }
      throw error;
    }
  }

  async function sealedAt(id: Buffer, location: BlobLocation) {
    const name = packName(location.packId);
    const { dataKey, sizeBytes } = await packAccess(location.packId);
    // An index entry (anyone's with a key, a hostile primary's for a copy) may place a blob past the
    // end of its pack: damage, said before a read window or a buffer is sized from it.
    if (location.offset + location.sealedLength > sizeBytes - TRAILER_BYTES)
      throw new AmberError(
        'OBJECT_CORRUPT',
        `${name} holds ${sizeBytes} bytes; the index places blob ${id.toString('hex').slice(0, 16)} at ${location.offset}+${location.sealedLength}, past its end (truncated, or a forged index)`,
        { details: { blob: id.toString('hex'), object: name } },
      );
    const sealed =
      (windowed(location) ? await windows.read(name, location.offset, location.sealedLength, sizeBytes) : undefined) ??
      (await getRange(repo, name, location.offset, location.sealedLength));
    return { ref: { id, ...location }, sealed, keys: { dataKey, idKey: repo.key.secrets.idKey }, name };
  }

  return {
    packDataKey,
    rawLengthOf: (id) => index.get(id)?.rawLength,
    readBlob: (id) =>
      fromAnyCopy(id, async (location) => {
        const { ref, sealed, keys, name } = await sealedAt(id, location);
        return decodeBlob(ref, sealed, keys, name);
      }),
    writeBlob: (id, fd, position) =>
      fromAnyCopy(id, async (location) => {
        const { ref, sealed, keys, name } = await sealedAt(id, location);
        if (decoder && location.rawLength >= DECODE_ELSEWHERE_BYTES)
          return decoder.decodeAndWrite(ref, sealed, keys, name, fd, position);
        return writeNonZero(fd, decodeBlob(ref, sealed, keys, name, { transient: true }), position);
      }),
  };
}

function sameLocation(a: BlobLocation, b: BlobLocation): boolean {
  return (
    a.packId === b.packId &&
    a.offset === b.offset &&
    a.sealedLength === b.sealedLength &&
    a.rawLength === b.rawLength &&
    a.type === b.type &&
    a.compression === b.compression
  );
}

interface PackAccess {
  dataKey: Buffer;
  sizeBytes: number;
}

/**
 * Where a request costs far more than its bytes (S3, the vault), small blobs are read through
 * aligned windows of the pack, kept in a small cache: the trees a backup compares with its parent,
 * or a restore's small files, lie side by side in write order, so one request serves thousands.
 * Larger blobs, and blobs across a window's edge, are read exactly.
 */
function createReadAhead(repo: Repository, windowBytes: number) {
  const MAX_WINDOWS = 16;
  const cache = new Map<string, Promise<Uint8Array>>();
  return {
    read(name: string, offset: number, length: number, packBytes: number): Promise<Uint8Array> | undefined {
      const start = Math.floor(offset / windowBytes) * windowBytes;
      if (length > windowBytes / 4 || offset + length > start + windowBytes) return undefined;
      const key = `${name}@${start}`;
      let window = cache.get(key);
      if (window) cache.delete(key);
      else {
        window = getRange(repo, name, start, Math.min(windowBytes, packBytes - start));
        window.catch(() => cache.delete(key));
      }
      cache.set(key, window);
      if (cache.size > MAX_WINDOWS) cache.delete(cache.keys().next().value!);
      return window.then((bytes) => {
        if (offset - start + length > bytes.length)
          throw new AmberError('OBJECT_CORRUPT', `${name} is shorter than the index says (truncated)`);
        return bytes.subarray(offset - start, offset - start + length);
      });
    },
  };
}

async function loadPackAccess(repo: Repository, packId: PackId): Promise<PackAccess> {
  const name = packName(packId);
  const { sizeBytes } = await statPack(repo, name);
  const trailer = decodeTrailer(await getRange(repo, name, sizeBytes - TRAILER_BYTES, TRAILER_BYTES), name);
  const epoch = repo.epochs.get(trailer.epoch);
  // An epoch the repository never had means the trailer is not a trailer: the pack is damaged.
  if (!epoch) {
    throw new AmberError(
      'OBJECT_CORRUPT',
      `${name} names key epoch ${trailer.epoch}, which this repository does not have (damaged or truncated)`,
      {
        hint: 'run `amber verify --read-data` to see which snapshots are affected',
      },
    );
  }
  if (!canOpenEpoch(epoch)) {
    throw new AmberError('WRITE_ONLY_KEY', `${name} cannot be decrypted with this key`, {
      hint: 'restoring and reading data needs a full-access key',
    });
  }
  return { dataKey: openUnderEpoch(epoch, (pair) => unwrapPackKey(trailer, pair, name)), sizeBytes };
}

async function statPack(repo: Repository, name: string) {
  try {
    const info = await repo.store.stat(name);
    if (info.sizeBytes < TRAILER_BYTES)
      throw new AmberError('OBJECT_CORRUPT', `${name} is truncated (${info.sizeBytes} bytes)`);
    return info;
  } catch (error) {
    if (isAmberError(error, 'OBJECT_NOT_FOUND')) {
      throw new AmberError('OBJECT_NOT_FOUND', `pack ${name} is missing from ${repo.store.location}`, {
        hint: 'run `amber verify` to see which snapshots are affected',
      });
    }
    throw error;
  }
}

async function getRange(repo: Repository, name: string, offset: number, length: number): Promise<Uint8Array> {
  try {
    return await repo.store.get(name, { offset, length });
  } catch (error) {
    if (isAmberError(error, 'OBJECT_CORRUPT')) {
      throw new AmberError('OBJECT_CORRUPT', `${name} is shorter than the index says (truncated)`, { cause: error });
    }
    throw error;
  }
}
