// The in-memory index: blob id → pack location, with no JS object per blob. Entries live densely
// in typed-array pages (50 bytes each: 32-byte id, four u32 fields, type/trust flags, compression);
// an open-addressing table of u32 entry numbers (≤ 3/4 full) finds them. About 55–65 bytes a blob.
import type { PackId } from '../core/ids.ts';
import type { BlobType } from './blob-codec.ts';

export interface BlobLocation {
  packId: PackId;
  type: BlobType;
  compression: number;
  offset: number;
  sealedLength: number;
  rawLength: number;
  /** From an index object this key or the owner signed: safe to dedup against. */
  trusted: boolean;
}

export interface BlobIndex {
  readonly size: number;
  readonly packIds: readonly PackId[];
  get(id: Uint8Array): BlobLocation | undefined;
  /** True when the id is stored (or being stored this session) in a way this key may dedup against. */
  hasTrusted(id: Uint8Array): boolean;
  /** The pack holding the id's location; undefined while it is only pending or unknown. */
  packOf(id: Uint8Array): PackId | undefined;
  add(id: Uint8Array, location: BlobLocation): void;
  /** Reserves an id whose blob is queued for a pack this session, so it is not stored twice. */
  addPending(id: Uint8Array): void;
  memoryBytes(): number;
}

const FLAG_TREE = 1;
const FLAG_TRUSTED = 2;
const FLAG_PENDING = 4;
const PAGE_BITS = 12;
const PAGE_SIZE = 1 << PAGE_BITS;
const FIELDS = 4; // pack number, offset, sealed length, raw length

interface Page {
  ids: Uint8Array;
  fields: Uint32Array;
  flags: Uint8Array;
  compressions: Uint8Array;
}

const newPage = (): Page => ({
  ids: new Uint8Array(PAGE_SIZE * 32),
  fields: new Uint32Array(PAGE_SIZE * FIELDS),
  flags: new Uint8Array(PAGE_SIZE),
  compressions: new Uint8Array(PAGE_SIZE),
});

export function createBlobIndex(): BlobIndex {
  const pages: Page[] = [];
  let slots = new Uint32Array(1 << 12); // entry number + 1; 0 = empty
  let size = 0;
  const packIds: PackId[] = [];
  const packNumbers = new Map<string, number>();

  const hashOf = (id: Uint8Array) => ((id[0] << 24) | (id[1] << 16) | (id[2] << 8) | id[3]) >>> 0;
  const sameId = (entry: number, id: Uint8Array) => {
    const { ids } = pages[entry >>> PAGE_BITS];
    const at = (entry & (PAGE_SIZE - 1)) * 32;
    for (let i = 0; i < 32; i++) if (ids[at + i] !== id[i]) return false;
    return true;
  };
  /** The slot holding `id`, or the empty slot where it would go. */
  const slotOf = (id: Uint8Array): number => {
    const mask = slots.length - 1;
    let slot = hashOf(id) & mask;
    while (slots[slot] !== 0 && !sameId(slots[slot] - 1, id)) slot = (slot + 1) & mask;
    return slot;
  };
  const grow = () => {
    const old = slots;
    slots = new Uint32Array(old.length * 2);
    const mask = slots.length - 1;
    for (const stored of old) {
      if (stored === 0) continue;
      const entry = stored - 1;
      const { ids } = pages[entry >>> PAGE_BITS];
      const at = (entry & (PAGE_SIZE - 1)) * 32;
      let slot = hashOf(ids.subarray(at, at + 4)) & mask;
      while (slots[slot] !== 0) slot = (slot + 1) & mask;
      slots[slot] = stored;
    }
  };
  const entryOf = (id: Uint8Array): number => {
    const stored = slots[slotOf(id)];
    return stored === 0 ? -1 : stored - 1;
  };
  const pageAt = (entry: number) => ({ page: pages[entry >>> PAGE_BITS], at: entry & (PAGE_SIZE - 1) });

  const write = (id: Uint8Array, location: BlobLocation | undefined) => {
    let entry = entryOf(id);
    if (entry >= 0) {
      const { page, at } = pageAt(entry);
      const flags = page.flags[at];
      if (!location) {
        // Reserving a blob only another (untrusted) key has stored: this session stores its own copy.
        if (!(flags & FLAG_TRUSTED)) page.flags[at] = flags | FLAG_PENDING | FLAG_TRUSTED;
        return;
      }
      // A second copy: the first location stays, unless a trusted copy replaces an untrusted one, so
      // an index object from another writer can never shadow what this key or the owner wrote.
      if (!(flags & FLAG_PENDING) && (flags & FLAG_TRUSTED || !location.trusted)) return;
    } else {
      if ((size + 1) * 4 > slots.length * 3) grow();
      entry = size;
      if (entry >>> PAGE_BITS === pages.length) pages.push(newPage());
      pages[entry >>> PAGE_BITS].ids.set(id.subarray(0, 32), (entry & (PAGE_SIZE - 1)) * 32);
      slots[slotOf(id)] = entry + 1;
      size += 1;
    }
    const { page, at } = pageAt(entry);
    if (!location) {
      page.flags[at] = FLAG_PENDING | FLAG_TRUSTED;
      return;
    }
    let packNo = packNumbers.get(location.packId);
    if (packNo === undefined) {
      packNo = packIds.push(location.packId) - 1;
      packNumbers.set(location.packId, packNo);
    }
    page.fields.set([packNo, location.offset, location.sealedLength, location.rawLength], at * FIELDS);
    page.compressions[at] = location.compression;
    const trusted = location.trusted || (page.flags[at] & FLAG_PENDING) !== 0;
    page.flags[at] = (location.type === 'tree' ? FLAG_TREE : 0) | (trusted ? FLAG_TRUSTED : 0);
  };

  return {
    get size() {
      return size;
    },
    packIds,
    get(id) {
      const entry = entryOf(id);
      if (entry < 0) return undefined;
      const { page, at } = pageAt(entry);
      const flags = page.flags[at];
      if (flags & FLAG_PENDING) return undefined;
      const base = at * FIELDS;
      return {
        packId: packIds[page.fields[base]],
        type: flags & FLAG_TREE ? 'tree' : 'data',
        compression: page.compressions[at],
        offset: page.fields[base + 1],
        sealedLength: page.fields[base + 2],
        rawLength: page.fields[base + 3],
        trusted: (flags & FLAG_TRUSTED) !== 0,
      };
    },
    hasTrusted(id) {
      const entry = entryOf(id);
      if (entry < 0) return false;
      const { page, at } = pageAt(entry);
      return (page.flags[at] & FLAG_TRUSTED) !== 0;
    },
    packOf(id) {
      const entry = entryOf(id);
      if (entry < 0) return undefined;
      const { page, at } = pageAt(entry);
      return page.flags[at] & FLAG_PENDING ? undefined : packIds[page.fields[at * FIELDS]];
    },
    add: (id, location) => write(id, location),
    addPending: (id) => write(id, undefined),
    memoryBytes: () => slots.byteLength + pages.length * PAGE_SIZE * (32 + FIELDS * 4 + 2),
  };
}
