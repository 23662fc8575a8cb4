// Writes index objects for packs already stored, one object per INDEX_FLUSH_ENTRIES entries, so the
// entries waiting to be indexed stay bounded. Callers add a pack only after its put succeeded.
import { sha256Hex } from '../crypto/index.ts';
import type { PutOptions } from '../storage/store.ts';
import { encodeIndex, type IndexedPack } from './index-file.ts';
import { objectName } from './layout.ts';
import type { Repository } from './repository.ts';

export const INDEX_FLUSH_ENTRIES = 16_384;

export interface IndexWriter {
  add(pack: IndexedPack): Promise<void>;
  flush(): Promise<void>;
  readonly objectsStored: number;
  /** Names of the index objects written so far. */
  readonly names: readonly string[];
}

export function createIndexWriter(repo: Repository, putOptions?: PutOptions): IndexWriter {
  let pending: IndexedPack[] = [];
  let entries = 0;
  const names: string[] = [];
  const flush = async () => {
    if (pending.length === 0) return;
    const bytes = encodeIndex(pending, repo.key.secrets.indexKey, repo.key.signer);
    pending = [];
    entries = 0;
    const name = objectName('index', sha256Hex(bytes));
    await repo.store.put(name, bytes, putOptions);
    names.push(name);
  };
  return {
    async add(pack) {
      pending.push(pack);
      entries += pack.entries.length;
      if (entries >= INDEX_FLUSH_ENTRIES) await flush();
    },
    flush,
    get objectsStored() {
      return names.length;
    },
    names,
  };
}
