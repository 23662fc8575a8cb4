// Turning a blob's plaintext into what a pack stores, and back. Pure functions of their inputs,
// so a worker pool can run them. AAD binds each ciphertext to its blob id and type: a blob moved
// under another id fails authentication before its plaintext is even hashed.
import { AmberError } from '../core/errors.ts';
import { hmacSha256, open, seal } from '../crypto/index.ts';
import { zstdCompress, zstdDecompress } from './zstd.ts';

export const BLOB_TYPE = { data: 0, tree: 1 } as const;
export type BlobType = keyof typeof BLOB_TYPE;
export const COMPRESSION = { none: 0, zstd: 1 } as const;

/**
 * zstd levels by blob type (docs/decisions/0003-zstd-level-and-pack-size.md): level 1 for file data,
 * where compression is most of a backup's CPU, and level 3 for trees, small and highly repetitive.
 */
export const ZSTD_LEVEL: Readonly<Record<BlobType, number>> = { data: 1, tree: 3 };
/**
 * Largest plaintext blob: bounds what a reader decompresses from a (possibly hostile) length. Chunks
 * are at most 8 MiB; a tree reaches this at roughly a million entries in one directory.
 */
export const MAX_BLOB_BYTES = 256 * 1024 * 1024;

export interface EncodedBlob {
  id: Buffer;
  type: BlobType;
  compression: number;
  rawLength: number;
  sealed: Buffer;
}

const AAD_PREFIX = Buffer.from('amber/v1/blob\0', 'ascii');

function blobAad(type: BlobType, id: Uint8Array): Buffer {
  const aad = Buffer.allocUnsafe(AAD_PREFIX.length + 1 + id.length);
  AAD_PREFIX.copy(aad, 0);
  aad[AAD_PREFIX.length] = BLOB_TYPE[type];
  aad.set(id, AAD_PREFIX.length + 1);
  return aad;
}

export function blobIdOf(idKey: Uint8Array, plaintext: Uint8Array): Buffer {
  return hmacSha256(idKey, plaintext);
}

/** Writers refuse blobs readers would refuse; checked before a blob is handed to a worker. */
export function checkBlobSize(type: BlobType, length: number): void {
  if (length > MAX_BLOB_BYTES) {
    throw new AmberError(
      'SOURCE_UNREADABLE',
      `a ${type} blob of ${length} bytes exceeds the format's limit of ${MAX_BLOB_BYTES}`,
      {
        hint: 'a directory with this many entries cannot be stored in one tree; split it or exclude it',
      },
    );
  }
}

export function encodeBlob(options: {
  plaintext: Uint8Array;
  id: Buffer;
  type: BlobType;
  dataKey: Uint8Array;
  zstdLevel?: number;
}): EncodedBlob {
  const { plaintext } = options;
  checkBlobSize(options.type, plaintext.length);
  let body: Uint8Array = plaintext;
  let compression: number = COMPRESSION.none;
  if (plaintext.length >= 64) {
    // Kept only when it saves at least 2 %: incompressible data then costs nothing to read.
    const compressed = zstdCompress(
      plaintext,
      options.zstdLevel ?? ZSTD_LEVEL[options.type],
      Math.ceil(plaintext.length * 0.98),
    );
    if (compressed) {
      body = compressed;
      compression = COMPRESSION.zstd;
    }
  }
  return {
    id: options.id,
    type: options.type,
    compression,
    rawLength: plaintext.length,
    sealed: seal(options.dataKey, body, blobAad(options.type, options.id)),
  };
}

export interface BlobRef {
  id: Buffer;
  type: BlobType;
  compression: number;
  rawLength: number;
}

/** This thread's memory for transient plaintexts (decodeBlob's `transient`), grown to the largest chunk. */
let scratch = Buffer.allocUnsafeSlow(0);
const SCRATCH_MAX_BYTES = 16 * 1024 * 1024;

function scratchFor(length: number): Buffer | undefined {
  if (length >= SCRATCH_MAX_BYTES) return undefined;
  if (scratch.length <= length) scratch = Buffer.allocUnsafeSlow(length + 1);
  return scratch;
}

/**
 * Decrypts, decompresses and checks the keyed id; throws OBJECT_CORRUPT naming `where`.
 * `transient`: the caller is done with the plaintext before it decodes another blob (it checks or
 * writes it at once), so a compressed blob is decompressed into memory this thread reuses: fresh
 * memory costs a page fault per 4 KiB here, more than decompressing into it.
 */
export function decodeBlob(
  ref: BlobRef,
  sealed: Uint8Array,
  keys: { dataKey: Uint8Array; idKey: Uint8Array },
  where: string,
  options: { transient?: boolean } = {},
): Buffer {
  return openBlob(ref, sealed, keys, where, options.transient === true).plaintext;
}

/**
 * Moves a sealed blob from one pack data key to another without recompressing it: decrypts under
 * `from`, decompresses and checks the keyed id exactly as `decodeBlob` does (a damaged or forged blob
 * throws OBJECT_CORRUPT naming `where`), then seals the same body under `to` with the same AAD. A copy
 * between repositories that share the id key (docs/isolation.md) moves every blob this way.
 */
export function resealBlob(
  ref: BlobRef,
  sealed: Uint8Array,
  keys: { from: Uint8Array; to: Uint8Array; idKey: Uint8Array },
  where: string,
): EncodedBlob {
  const { body } = openBlob(ref, sealed, { dataKey: keys.from, idKey: keys.idKey }, where, true);
  return {
    id: ref.id,
    type: ref.type,
    compression: ref.compression,
    rawLength: ref.rawLength,
    sealed: seal(keys.to, body, blobAad(ref.type, ref.id)),
  };
}

function openBlob(
  ref: BlobRef,
  sealed: Uint8Array,
  keys: { dataKey: Uint8Array; idKey: Uint8Array },
  where: string,
  transient: boolean,
): { body: Buffer; plaintext: Buffer } {
  // Only a failure spells the id out: decoding runs once per blob of a restore or verify.
  const hex = () => ref.id.toString('hex');
  let body: Buffer;
  let plaintext: Buffer;
  if (ref.compression !== COMPRESSION.none && ref.compression !== COMPRESSION.zstd) {
    throw new AmberError(
      'OBJECT_CORRUPT',
      `blob ${hex().slice(0, 16)} in ${where} names unknown compression ${ref.compression}`,
      { details: { blob: hex(), object: where } },
    );
  }
  try {
    body = open(keys.dataKey, sealed, blobAad(ref.type, ref.id));
    plaintext =
      ref.compression === COMPRESSION.zstd
        ? zstdDecompress(
            body,
            Math.min(ref.rawLength, MAX_BLOB_BYTES),
            transient ? scratchFor(ref.rawLength) : undefined,
          )
        : body;
  } catch (cause) {
    throw new AmberError(
      'OBJECT_CORRUPT',
      `blob ${hex().slice(0, 16)} in ${where} failed authentication or decompression`,
      {
        cause,
        details: { blob: hex(), object: where },
      },
    );
  }
  if (plaintext.length !== ref.rawLength || !blobIdOf(keys.idKey, plaintext).equals(ref.id)) {
    throw new AmberError('OBJECT_CORRUPT', `blob ${hex().slice(0, 16)} in ${where} does not match its id`, {
      details: { blob: hex(), object: where },
    });
  }
  return { body, plaintext };
}
