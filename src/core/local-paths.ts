// Local paths that must be directories (a repository location, the local cache): the first part of
// such a path that exists but is a file, so the error can name it instead of an errno's guess.
import { statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/** The path itself or its nearest existing ancestor when that is not a directory; undefined otherwise. */
export function fileInTheWay(path: string): string | undefined {
  let current = resolve(path);
  for (;;) {
    let isDirectory: boolean | undefined;
    try {
      // stat, not lstat: a symlink to a directory is a directory here.
      isDirectory = statSync(current, { throwIfNoEntry: false })?.isDirectory();
    } catch (error) {
      // ENOTDIR: an ancestor is a file; ELOOP, EACCES: leave it to the operation to report.
      if ((error as NodeJS.ErrnoException).code !== 'ENOTDIR') return undefined;
    }
    if (isDirectory === true) return undefined;
    if (isDirectory === false) return current;
    const parent = dirname(current);
    if (parent === current) return undefined;
    current = parent;
  }
}
