// Index objects map blob ids to pack locations. Payload (sealed under the repository index key):
//   packCount u32 ‖ packCount × pack id(32) ‖ entryCount u32 ‖ entries sorted by blob id, each
//   id(32) ‖ pack number u32 ‖ offset u32 ‖ sealed length u32 ‖ raw length u32 ‖ type u8 ‖ compression u8
// Index objects are signed records, so each entry has an author; they can be rebuilt from packs.
import { AmberError } from '../core/errors.ts';
import { asPackId, type PackId } from '../core/ids.ts';
import { open, seal } from '../crypto/index.ts';
import { BLOB_TYPE, type BlobType } from './blob-codec.ts';
import type { PackEntry } from './pack.ts';
import { encodeSignedRecord, type Signer } from './signed-record.ts';

export interface IndexedPack {
  id: PackId;
  entries: PackEntry[];
}

const ENTRY_BYTES = 32 + 4 * 4 + 2;
const TYPES: readonly BlobType[] = ['data', 'tree'];
const AAD = Buffer.from('amber/v1/index', 'ascii');

export function encodeIndex(packs: IndexedPack[], indexKey: Buffer, signer: Signer): Buffer {
  const rows: { entry: PackEntry; packNo: number }[] = [];
  for (const [packNo, pack] of packs.entries()) for (const entry of pack.entries) rows.push({ entry, packNo });
  rows.sort((a, b) => Buffer.compare(a.entry.id, b.entry.id));
  const plain = Buffer.alloc(8 + packs.length * 32 + rows.length * ENTRY_BYTES);
  let at = plain.writeUInt32BE(packs.length, 0);
  for (const pack of packs) at += Buffer.from(pack.id, 'hex').copy(plain, at);
  at = plain.writeUInt32BE(rows.length, at);
  for (const { entry, packNo } of rows) {
    at += entry.id.copy(plain, at);
    at = plain.writeUInt32BE(packNo, at);
    at = plain.writeUInt32BE(entry.offset, at);
    at = plain.writeUInt32BE(entry.sealedLength, at);
    at = plain.writeUInt32BE(entry.rawLength, at);
    plain[at++] = BLOB_TYPE[entry.type];
    plain[at++] = entry.compression;
  }
  return encodeSignedRecord('index', seal(indexKey, plain, AAD), signer);
}

export type IndexVisitor = (packId: PackId, entry: PackEntry) => void;

/** Decrypts an index payload and calls `visit` per entry without building a JS object per entry list. */
export function readIndexPayload(sealed: Buffer, indexKey: Buffer, where: string, visit: IndexVisitor): void {
  let plain: Buffer;
  try {
    plain = open(indexKey, sealed, AAD);
  } catch (cause) {
    throw new AmberError('OBJECT_CORRUPT', `${where} failed authentication`, { cause });
  }
  const fail = () => new AmberError('OBJECT_CORRUPT', `${where} is malformed`);
  if (plain.length < 8) throw fail();
  const packCount = plain.readUInt32BE(0);
  const entriesAt = 4 + packCount * 32;
  if (plain.length < entriesAt + 4) throw fail();
  const entryCount = plain.readUInt32BE(entriesAt);
  if (plain.length !== entriesAt + 4 + entryCount * ENTRY_BYTES) throw fail();
  const packIds: PackId[] = [];
  for (let i = 0; i < packCount; i++) packIds.push(asPackId(plain.toString('hex', 4 + i * 32, 36 + i * 32)));
  for (let at = entriesAt + 4; at < plain.length; at += ENTRY_BYTES) {
    const packNo = plain.readUInt32BE(at + 32);
    const type = TYPES[plain[at + 48]];
    if (packNo >= packCount || !type) throw fail();
    visit(packIds[packNo], {
      id: plain.subarray(at, at + 32),
      offset: plain.readUInt32BE(at + 36),
      sealedLength: plain.readUInt32BE(at + 40),
      rawLength: plain.readUInt32BE(at + 44),
      type,
      compression: plain[at + 49],
    });
  }
}
