// Directory listings in one fixed order, so the same directory always yields the same tree.
import { readdirSync } from 'node:fs';
import { compareNameBytes, fsPath, nameFromBytes } from '../../core/byte-names.ts';
import { translateSourceError } from './entry-meta.ts';

/**
 * Names in `path` (without `.` and `..`), sorted by their bytes. A name that is not valid UTF-8 is
 * kept exactly, its bad bytes escaped (core/byte-names.ts). Synchronous, as readEntryMeta.
 */
export function listDirectory(path: string): string[] {
  let names: string[];
  try {
    names = readdirSync(fsPath(path));
  } catch (error) {
    throw translateSourceError(error, path);
  }
  // Decoding replaces bytes that are not UTF-8 with U+FFFD; the rare listing that has one is read
  // again as bytes, so such a name is kept as it is rather than changed.
  if (names.some((name) => name.includes('\uFFFD'))) {
    try {
      names = readdirSync(fsPath(path), { encoding: 'buffer' }).map(nameFromBytes);
    } catch (error) {
      throw translateSourceError(error, path);
    }
  }
  // Without surrogates (escaped bytes or pairs), UTF-16 order is code point order, which is byte order.
  return names.some((name) => SURROGATE.test(name)) ? names.sort(compareNameBytes) : names.sort();
}

const SURROGATE = /[\uD800-\uDFFF]/;

/** Orders names by their bytes, which differs from JavaScript's UTF-16 order above U+FFFF. */
export const compareNames = compareNameBytes;
