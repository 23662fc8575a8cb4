// Named pipes and character and block device nodes for restore. Node has neither mkfifo(3) nor
// mknod(2), so the system's mkfifo and mknod (coreutils) make them; docs/decisions/0005-xattrs-and-device-nodes.md says why. Creating one needs
// CAP_MKNOD: root outside a user namespace.
import { spawnSync } from 'node:child_process';
import type { StdioOptions } from 'node:child_process';
import { closeSync, constants, existsSync, linkSync, openSync, unlinkSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { AmberError } from '../../core/errors.ts';
import { displayName, hasEscapedBytes, nameBytes } from '../../core/byte-names.ts';

export interface DeviceNumbers {
  major: number;
  minor: number;
}

/**
 * Linux's split of st_rdev into major and minor, as glibc's gnu_dev_major and gnu_dev_minor. Their
 * masks are 32-bit (`(unsigned int) (dev >> 12) & 0xffffff00`): with bigints, `~0xffn` would keep the
 * major's bits in the minor.
 */
export function deviceNumbers(rdev: bigint): DeviceNumbers {
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & 0xfffff000n);
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & 0xffffff00n);
  return { major: Number(major), minor: Number(minor) };
}

/**
 * Creates the device node `path` (never replacing an entry: TARGET_EXISTS) with the permission bits
 * of `mode` and the device number `rdev` as lstat gave it, owned by the process. Setuid, setgid and
 * sticky bits are the caller's to set by chmod after chown, as for any entry (mknod -m refuses them;
 * chown would clear them). A refusal, such as EPERM without CAP_MKNOD, is TARGET_UNWRITABLE with
 * `details.errno`.
 *
 * mknod gets its path as text, so a path carrying bytes that are not UTF-8 is reached through the
 * parent directory, opened by its bytes and passed to mknod as fd 3 (/proc/self/fd/3/<leaf>); a leaf
 * that is not UTF-8 is made under a temporary name there and linked to its own name (link, unlike
 * rename, refuses an existing entry), and the temporary name removed.
 */
export type SpecialType = 'fifo' | 'chardev' | 'blockdev';

export function makeSpecialFile(path: string, type: SpecialType, mode: number, rdev: bigint): void {
  if (!hasEscapedBytes(path)) {
    runMknod(path, path, type, mode, rdev, undefined);
    return;
  }
  const slash = path.lastIndexOf('/');
  const dir = slash < 0 ? '.' : slash === 0 ? '/' : path.slice(0, slash);
  const leaf = path.slice(slash + 1);
  let dirFd: number;
  try {
    dirFd = openSync(nameBytes(dir), constants.O_RDONLY | constants.O_DIRECTORY);
  } catch (error) {
    throw unwritable(path, (error as NodeJS.ErrnoException).code, error);
  }
  try {
    if (!hasEscapedBytes(leaf)) {
      runMknod(`/proc/self/fd/3/${leaf}`, path, type, mode, rdev, dirFd);
      return;
    }
    const temporary = `.amber-mknod-${randomBytes(6).toString('hex')}`;
    runMknod(`/proc/self/fd/3/${temporary}`, path, type, mode, rdev, dirFd);
    const temporaryPath = Buffer.concat([nameBytes(dir), Buffer.from(`/${temporary}`)]);
    try {
      linkSync(temporaryPath, nameBytes(path));
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw code === 'EEXIST' ? exists(path, error) : unwritable(path, code, error);
    } finally {
      unlinkSync(temporaryPath);
    }
  } finally {
    closeSync(dirFd);
  }
}

const PROGRAMS = {
  fifo: ['/usr/bin/mkfifo', '/bin/mkfifo'],
  chardev: ['/usr/bin/mknod', '/bin/mknod'],
  blockdev: ['/usr/bin/mknod', '/bin/mknod'],
};

function runMknod(
  target: string,
  path: string,
  type: SpecialType,
  mode: number,
  rdev: bigint,
  dirFd: number | undefined,
) {
  const program = PROGRAMS[type].find((candidate) => existsSync(candidate));
  if (!program) {
    throw new AmberError(
      'TARGET_UNWRITABLE',
      `"${displayName(path)}" was not created: no ${type === 'fifo' ? 'mkfifo' : 'mknod'} program`,
      {
        hint: 'install coreutils, or restore without device files and named pipes',
        details: { path: displayName(path) },
      },
    );
  }
  const { major, minor } = deviceNumbers(rdev);
  const permissions = ['-m', (mode & 0o777).toString(8), '--', target];
  const args = type === 'fifo' ? permissions : [...permissions, type === 'chardev' ? 'c' : 'b', `${major}`, `${minor}`];
  const stdio: StdioOptions = dirFd === undefined ? ['ignore', 'ignore', 'pipe'] : ['ignore', 'ignore', 'pipe', dirFd];
  const result = spawnSync(program, args, { stdio, encoding: 'utf8', env: { LC_ALL: 'C' } });
  if (result.error) throw unwritable(path, (result.error as NodeJS.ErrnoException).code, result.error);
  if (result.status === 0) return;
  const errno = errnoFromMessage(result.stderr);
  const cause = new Error(result.stderr.trim());
  if (errno === 'EEXIST') throw exists(path, cause);
  throw unwritable(path, errno, cause, type);
}

/** glibc's strerror texts in the C locale, which mknod prints last ("mknod: PATH: File exists"). */
const ERRNO_BY_MESSAGE: Record<string, string> = {
  'Operation not permitted': 'EPERM',
  'Permission denied': 'EACCES',
  'File exists': 'EEXIST',
  'No such file or directory': 'ENOENT',
  'Not a directory': 'ENOTDIR',
  'Read-only file system': 'EROFS',
  'No space left on device': 'ENOSPC',
  'Disk quota exceeded': 'EDQUOT',
  'File name too long': 'ENAMETOOLONG',
  'Too many levels of symbolic links': 'ELOOP',
  'Operation not supported': 'ENOTSUP',
  'Input/output error': 'EIO',
};

function errnoFromMessage(stderr: string): string | undefined {
  const text = stderr.trim();
  return ERRNO_BY_MESSAGE[text.slice(text.lastIndexOf(': ') + 2)];
}

function exists(path: string, cause: unknown) {
  return new AmberError('TARGET_EXISTS', `"${displayName(path)}" already exists`, {
    cause,
    details: { path: displayName(path) },
  });
}

function unwritable(path: string, errno: string | undefined, cause: unknown, type: SpecialType = 'chardev') {
  const reason = errno ?? (cause instanceof Error ? cause.message : String(cause));
  return new AmberError(
    'TARGET_UNWRITABLE',
    `${type === 'fifo' ? 'named pipe' : 'device'} "${displayName(path)}" could not be created (${reason})`,
    {
      hint: errno === 'EPERM' ? 'only root (CAP_MKNOD, outside a user namespace) can create device files' : undefined,
      cause,
      details: { path: displayName(path), errno },
    },
  );
}
