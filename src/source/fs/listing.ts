// One directory's listing with the metadata of every entry: what a backup reads of a directory
// before deciding what to read of its files. Plain data (errors as code and message), so a walker
// thread can produce it and the backup consume it unchanged.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { AmberError, isAmberError, type ErrorCode } from '../../core/errors.ts';
import { readEntryMeta, type EntryMeta } from './entry-meta.ts';
import { readXattrs } from './xattrs.ts';
import { listDirectory } from './list-directory.ts';

export interface ListingProblem {
  code: string;
  message: string;
}

export interface Listing {
  dir: string;
  /**
   * Sorted as listDirectory sorts; an entry whose lstat failed carries the problem instead. An entry
   * whose attributes could not be read (XATTRS_UNREADABLE) is kept with a `warning`.
   */
  entries: ({ name: string; meta: EntryMeta; warning?: ListingProblem } | { name: string; problem: ListingProblem })[];
  /** The directory itself could not be listed. */
  problem?: ListingProblem;
  /**
   * SHA-256 (hex) over every entry's name and metadata, as a tree node records them: equal
   * fingerprints mean the directory's entries look exactly as they did (see subtree-cache.ts).
   */
  fingerprint: string;
}

export function readListing(dir: string): Listing {
  let names: string[];
  try {
    names = listDirectory(dir);
  } catch (error) {
    return { dir, entries: [], problem: problemOf(error), fingerprint: '' };
  }
  const entries: Listing['entries'] = names.map((name) => {
    try {
      return { name, ...readEntry(join(dir, name), name) };
    } catch (error) {
      return { name, problem: problemOf(error) };
    }
  });
  return { dir, entries, fingerprint: fingerprintOf(entries) };
}

/**
 * Everything a tree node records of an entry but its content, the access time included: a tree
 * reused from the cache is then exactly the tree a fresh walk would write. The leading version
 * keeps a cache written for version 1 trees from ever matching.
 */
/**
 * An entry's metadata with its extended attributes; throws what lstat or reading the attributes met,
 * except XATTRS_UNREADABLE, which comes back as a warning beside the metadata.
 */
export function readEntry(path: string, name: string): { meta: EntryMeta; warning?: ListingProblem } {
  const meta = readEntryMeta(path, name);
  try {
    const xattrs = readXattrs(path, meta.type);
    if (xattrs.length > 0) meta.xattrs = xattrs;
  } catch (error) {
    if (isAmberError(error, 'XATTRS_UNREADABLE')) return { meta, warning: problemOf(error) };
    throw error;
  }
  return { meta };
}

function fingerprintOf(entries: Listing['entries']): string {
  const lines = entries.map((entry) => {
    if (!('meta' in entry)) return `${entry.name}\0!${entry.problem.code}`;
    const m = entry.meta;
    const xattrs = (m.xattrs ?? []).map((x) => `${x.name}=${x.value.toString('base64')}`).join('\0');
    return `${m.name}\0${m.type}\0${m.mode}\0${m.uid}\0${m.gid}\0${m.sizeBytes}\0${m.mtimeNs}\0${m.atimeNs ?? ''}\0${m.ctimeNs}\0${m.inode}\0${m.deviceId}\0${m.nlink}\0${m.rdev ?? ''}\0${m.linkTarget ?? ''}\0${xattrs}`;
  });
  // Hashed as UTF-16 code units, not UTF-8: an escaped byte must not collapse into U+FFFD.
  return createHash('sha256').update('tree-v2\n').update(lines.join('\n'), 'utf16le').digest('hex');
}

/** The error a listing problem stands for, as the code that met it would have thrown it. */
export function errorOf(problem: ListingProblem, path: string): AmberError {
  return new AmberError(problem.code as ErrorCode, problem.message, { details: { path } });
}

function problemOf(error: unknown): ListingProblem {
  if (isAmberError(error)) return { code: error.code, message: error.message };
  return { code: 'SOURCE_UNREADABLE', message: String((error as Error)?.message ?? error) };
}
