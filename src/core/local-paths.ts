// Local paths that must be directories (a repository location, the local cache): the first part of
// such a path that exists but is a file, so the error can name it instead of an errno's guess.
import { statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { AmberError } from './errors.ts';

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

/**
 * This host's local state for repositories: caches, and the guarded clock's state, which retention
 * decisions need. A location that is a file would otherwise be skipped silently (caches are optional),
 * so it is refused here, naming the variable it came from.
 */
export function cacheRoot(): string {
  const [variable, root] = process.env.AMBER_CACHE_DIR
    ? ['AMBER_CACHE_DIR', process.env.AMBER_CACHE_DIR]
    : process.env.XDG_CACHE_HOME
      ? ['XDG_CACHE_HOME', join(process.env.XDG_CACHE_HOME, 'amber')]
      : ['HOME', join(homedir(), '.cache', 'amber')];
  const file = fileInTheWay(root);
  if (file !== undefined) {
    throw new AmberError(
      'USAGE',
      `the local cache directory ${root} (from ${variable}) ${file === resolve(root) ? 'is a file' : `is below ${file}, which is a file`}, not a directory`,
      {
        hint:
          variable === 'AMBER_CACHE_DIR'
            ? 'point AMBER_CACHE_DIR at a directory (it is created if missing), or unset it to use ~/.cache/amber'
            : 'set AMBER_CACHE_DIR to a directory (it is created if missing)',
        details: { variable, path: root },
      },
    );
  }
  return root;
}
