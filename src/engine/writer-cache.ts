// A write-only key cannot read back what it stored, so for incremental backups it keeps a local copy
// of the trees it wrote (and of a source's own metadata, such as an IMAP folder's cursor) and a list of its snapshots. The cache is an optimisation, never trusted: a
// tree is used only when it hashes (HMAC under the repository id key) to its id, a parent only when
// its snapshot still exists in the repository, and its files' chunks only when the index has them.
import { mkdirSync, readFileSync, renameSync, appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { cacheRoot } from '../core/local-paths.ts';
import { blobIdOf } from '../repo/blob-codec.ts';
import type { Repository } from '../repo/repository.ts';
import { isHexId, type SnapshotId, type TreeId } from '../core/ids.ts';

export interface CachedSnapshot {
  id: SnapshotId;
  time: string;
  host: string;
  paths: string[];
  tree: TreeId;
}

export interface WriterCache {
  /** Keeps a blob this key wrote and will read again: its trees, and the chunks of a source's own metadata (SourceFile.keep). */
  rememberBlob(id: TreeId | string, bytes: Uint8Array): void;
  /** The blob's bytes when cached and authentic. */
  blob(id: TreeId | string): Buffer | undefined;
  rememberSnapshot(snapshot: CachedSnapshot): void;
  snapshots(): CachedSnapshot[];
}

/** Undefined when the cache folder cannot be made (a backup then reads every file, as without one). */
export function openWriterCache(repo: Repository): WriterCache | undefined {
  const dir = join(cacheRoot(), repo.config.repositoryId, repo.key.keyId);
  const trees = join(dir, 'trees');
  const list = join(dir, 'snapshots.jsonl');
  try {
    mkdirSync(trees, { recursive: true, mode: 0o700 });
  } catch {
    return undefined;
  }
  const idKey = repo.key.secrets.idKey;
  return {
    rememberBlob(id, bytes) {
      try {
        const temporary = join(trees, `.${randomBytes(8).toString('hex')}`);
        writeFileSync(temporary, bytes, { mode: 0o600 });
        renameSync(temporary, join(trees, id));
      } catch {
        // a cache that cannot be written only costs the next backup a full read
      }
    },
    blob(id) {
      try {
        const bytes = readFileSync(join(trees, id));
        return blobIdOf(idKey, bytes).toString('hex') === id ? bytes : undefined;
      } catch {
        return undefined;
      }
    },
    rememberSnapshot(snapshot) {
      try {
        appendFileSync(list, `${JSON.stringify(snapshot)}\n`, { mode: 0o600 });
      } catch {
        // as above
      }
    },
    snapshots() {
      try {
        return readFileSync(list, 'utf8')
          .split('\n')
          .flatMap((line) => {
            try {
              const entry = JSON.parse(line) as CachedSnapshot;
              return isHexId(entry.id) && isHexId(entry.tree) && Array.isArray(entry.paths) ? [entry] : [];
            } catch {
              return [];
            }
          });
      } catch {
        return [];
      }
    },
  };
}
