// Directory listings in one fixed order, so the same directory always yields the same tree.
import { readdirSync } from 'node:fs';
import { AmberError } from '../../core/errors.ts';
import { translateSourceError } from './entry-meta.ts';

export interface ListDirectoryOptions {
  /**
   * Called for a name that is not valid UTF-8, which is then left out of the listing. Without it such a
   * name fails the listing: decoding would change the name and the entry could not be opened again.
   */
  onUndecodableName?: (rawName: Buffer) => void;
}

/** Names in `path` (without `.` and `..`), sorted by their UTF-8 bytes. Synchronous, as readEntryMeta. */
export function listDirectory(path: string, options: ListDirectoryOptions = {}): string[] {
  let names: string[];
  try {
    names = readdirSync(path);
  } catch (error) {
    throw translateSourceError(error, path);
  }
  // Decoding only replaces bytes that are not UTF-8 with U+FFFD; the rare listing that has one is
  // read again as raw bytes to tell a real U+FFFD from a name that could not be opened again.
  if (names.some((name) => name.includes('\uFFFD'))) names = decodableNames(path, options);
  // Without surrogate pairs, UTF-16 order is code point order, which is UTF-8 byte order.
  return names.some((name) => SURROGATE.test(name)) ? names.sort(compareNames) : names.sort();
}

const SURROGATE = /[\uD800-\uDFFF]/;

function decodableNames(path: string, options: ListDirectoryOptions): string[] {
  let rawNames: Buffer[];
  try {
    rawNames = readdirSync(path, { encoding: 'buffer' });
  } catch (error) {
    throw translateSourceError(error, path);
  }
  const names: string[] = [];
  for (const raw of rawNames) {
    const name = raw.toString('utf8');
    if (Buffer.from(name, 'utf8').equals(raw)) {
      names.push(name);
    } else if (options.onUndecodableName !== undefined) {
      options.onUndecodableName(raw);
    } else {
      throw new AmberError(
        'SOURCE_UNREADABLE',
        `"${path}" holds a name that is not valid UTF-8 (bytes ${raw.toString('hex')})`,
        {
          hint: 'rename the entry to valid UTF-8',
          details: { path, nameHex: raw.toString('hex') },
        },
      );
    }
  }
  return names;
}

/** Orders names by their UTF-8 bytes, which differs from JavaScript's UTF-16 order above U+FFFF. */
export function compareNames(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}
