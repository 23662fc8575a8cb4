// The in-memory index: blob id → pack location, in an open-addressing hash table over typed arrays.
// About 50 bytes per slot (32-byte id, four u32 fields, one flag byte), ≤ 0.75 load: no JS object per blob.
import type { PackId } from '../core/ids.ts';
import type { BlobType } from './blob-codec.ts';

export interface BlobLocation {
  packId: PackId;
  type: BlobType;
  compression: number;
  offset: number;
  sealedLength: number;
  rawLength: number;
  /** Written by this key, the owner, or certified by a full-key verify: safe to dedup against. */
  trusted: boolean;
}

const FLAG_TREE = 1;
const FLAG_TRUSTED = 2;
const FLAG_PENDING = 4;
const FIELDS = 4;

export interface BlobIndex {
  readonly size: number;
  readonly packIds: readonly PackId[];
  get(id: Uint8Array): BlobLocation | undefined;
  /** True when the id is stored (or being stored this session) in a way this key may dedup against. */
  hasTrusted(id: Uint8Array): boolean;
  add(id: Uint8Array, location: BlobLocation): void;
  /** Reserves an id whose blob is queued for a pack this session, so it is not stored twice. */
  addPending(id: Uint8Array): void;
  memoryBytes(): number;
}

export function createBlobIndex(initialCapacity = 1 << 12): BlobIndex {
  let capacity = 1;
  while (capacity < initialCapacity) capacity <<= 1;
  let ids = new Uint8Array(capacity * 32);
  let fields = new Uint32Array(capacity * FIELDS); // packNo + 1 (0 = empty slot), offset, sealed, raw
  let flags = new Uint8Array(capacity);
  let compressions = new Uint8Array(capacity);
  let size = 0;
  const packIds: PackId[] = [];
  const packNumbers = new Map<string, number>();

  const slotOf = (id: Uint8Array): number => {
    const mask = capacity - 1;
    let slot = ((id[0] << 24) | (id[1] << 16) | (id[2] << 8) | id[3]) & mask;
    for (;;) {
      if (fields[slot * FIELDS] === 0 && flags[slot] === 0) return slot;
      if (equalAt(ids, slot * 32, id)) return slot;
      slot = (slot + 1) & mask;
    }
  };
  const occupied = (slot: number) => fields[slot * FIELDS] !== 0 || flags[slot] !== 0;

  const grow = () => {
    const old = { ids, fields, flags, compressions, capacity };
    capacity *= 2;
    ids = new Uint8Array(capacity * 32);
    fields = new Uint32Array(capacity * FIELDS);
    flags = new Uint8Array(capacity);
    compressions = new Uint8Array(capacity);
    for (let slot = 0; slot < old.capacity; slot++) {
      if (old.fields[slot * FIELDS] === 0 && old.flags[slot] === 0) continue;
      const id = old.ids.subarray(slot * 32, slot * 32 + 32);
      const target = slotOf(id);
      ids.set(id, target * 32);
      fields.set(old.fields.subarray(slot * FIELDS, slot * FIELDS + FIELDS), target * FIELDS);
      flags[target] = old.flags[slot];
      compressions[target] = old.compressions[slot];
    }
  };

  const write = (id: Uint8Array, location: BlobLocation | undefined) => {
    if ((size + 1) * 4 > capacity * 3) grow();
    const slot = slotOf(id);
    const existing = occupied(slot);
    if (existing && !(flags[slot] & FLAG_PENDING)) {
      // A second copy of a blob: keep the first location, but let trust only ever be gained.
      if (location?.trusted) flags[slot] |= FLAG_TRUSTED;
      return;
    }
    if (!existing) size += 1;
    ids.set(id, slot * 32);
    if (!location) {
      flags[slot] = FLAG_PENDING | FLAG_TRUSTED;
      return;
    }
    let packNo = packNumbers.get(location.packId);
    if (packNo === undefined) {
      packNo = packIds.push(location.packId) - 1;
      packNumbers.set(location.packId, packNo);
    }
    fields.set([packNo + 1, location.offset, location.sealedLength, location.rawLength], slot * FIELDS);
    compressions[slot] = location.compression;
    flags[slot] = (location.type === 'tree' ? FLAG_TREE : 0) | (location.trusted || flags[slot] & FLAG_PENDING ? FLAG_TRUSTED : 0);
  };

  return {
    get size() {
      return size;
    },
    packIds,
    get(id) {
      const slot = slotOf(id);
      if (!occupied(slot) || flags[slot] & FLAG_PENDING) return undefined;
      const base = slot * FIELDS;
      return {
        packId: packIds[fields[base] - 1],
        type: flags[slot] & FLAG_TREE ? 'tree' : 'data',
        compression: compressions[slot],
        offset: fields[base + 1],
        sealedLength: fields[base + 2],
        rawLength: fields[base + 3],
        trusted: (flags[slot] & FLAG_TRUSTED) !== 0,
      };
    },
    hasTrusted(id) {
      const slot = slotOf(id);
      return occupied(slot) && (flags[slot] & FLAG_TRUSTED) !== 0;
    },
    add: (id, location) => write(id, location),
    addPending: (id) => write(id, undefined),
    memoryBytes: () => ids.byteLength + fields.byteLength + flags.byteLength + compressions.byteLength,
  };
}

function equalAt(haystack: Uint8Array, at: number, id: Uint8Array): boolean {
  for (let i = 0; i < 32; i++) if (haystack[at + i] !== id[i]) return false;
  return true;
}
