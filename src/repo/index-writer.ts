// Writes index objects for packs already stored, one object per INDEX_FLUSH_ENTRIES entries, so the
// entries waiting to be indexed stay bounded. Callers add a pack only after its put succeeded.
import { sha256Hex } from '../crypto/index.ts';
import { encodeIndex, type IndexedPack } from './index-file.ts';
import { objectName } from './layout.ts';
import type { Repository } from './repository.ts';

export const INDEX_FLUSH_ENTRIES = 16_384;

export interface IndexWriter {
  add(pack: IndexedPack): Promise<void>;
  flush(): Promise<void>;
  readonly objectsStored: number;
}

export function createIndexWriter(repo: Repository): IndexWriter {
  let pending: IndexedPack[] = [];
  let entries = 0;
  let objectsStored = 0;
  const flush = async () => {
    if (pending.length === 0) return;
    const bytes = encodeIndex(pending, repo.key.secrets.indexKey, repo.key.signer);
    pending = [];
    entries = 0;
    await repo.store.put(objectName('index', sha256Hex(bytes)), bytes);
    objectsStored += 1;
  };
  return {
    async add(pack) {
      pending.push(pack);
      entries += pack.entries.length;
      if (entries >= INDEX_FLUSH_ENTRIES) await flush();
    },
    flush,
    get objectsStored() {
      return objectsStored;
    },
  };
}
