// Named pipes and device files. Node has neither mkfifo nor mknod, so the system's tools (coreutils,
// on every Linux) make them. A tool takes its path as text; a path whose bytes are not UTF-8 is
// made under a plain temporary name in the same directory, reached through /proc/self/fd, and then
// linked to its real name, which link() never overwrites.
import { execFile } from 'node:child_process';
import { closeSync, constants, linkSync, openSync, renameSync, unlinkSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
import { AmberError } from '../../core/errors.ts';
import { displayName, fsPath, hasEscapedBytes } from '../../core/byte-names.ts';

const run = promisify(execFile);

/** Linux's split of a device number (glibc's gnu_dev_major and gnu_dev_minor). */
export function deviceNumbers(rdev: bigint): { major: bigint; minor: bigint } {
  return {
    major: ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn),
    minor: (rdev & 0xffn) | ((rdev >> 12n) & ~0xffn),
  };
}

/** Creates a FIFO or a device file at `path` (which must not exist); the caller sets owner, mode and times. */
export async function makeSpecialFile(
  path: string,
  type: 'fifo' | 'chardev' | 'blockdev',
  mode: number,
  rdev: bigint,
): Promise<void> {
  const make = (at: string) => {
    const permissions = (mode & 0o777).toString(8);
    if (type === 'fifo') return run('mkfifo', ['-m', permissions, '--', at]);
    const { major, minor } = deviceNumbers(rdev);
    return run('mknod', ['-m', permissions, '--', at, type === 'chardev' ? 'c' : 'b', `${major}`, `${minor}`]);
  };
  const failed = (error: unknown) =>
    new AmberError(
      'RESTORE_INCOMPLETE',
      `the ${type === 'fifo' ? 'named pipe' : 'device file'} "${displayName(path)}" could not be created (${String((error as { stderr?: string }).stderr || (error as Error).message).trim()})`,
      { cause: error },
    );
  if (!hasEscapedBytes(path)) {
    await make(path).catch((error: unknown) => {
      throw failed(error);
    });
    return;
  }
  const dirFd = openSync(fsPath(dirname(path)), constants.O_RDONLY | constants.O_DIRECTORY);
  const temporary = `/proc/self/fd/${dirFd}/.amber-node-${randomBytes(8).toString('hex')}`;
  try {
    await make(temporary).catch((error: unknown) => {
      throw failed(error);
    });
    try {
      linkSync(temporary, fsPath(path));
      unlinkSync(temporary);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') {
        unlinkSync(temporary);
        throw error;
      }
      renameSync(temporary, fsPath(path)); // a filesystem without hard links
    }
  } finally {
    closeSync(dirFd);
  }
}
