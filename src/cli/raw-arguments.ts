// Node decodes the command line as UTF-8 and replaces a byte that is not UTF-8 with U+FFFD, so an
// argument naming a path whose bytes are not UTF-8 would name another path: a restore target
// `par\xff/t` became the new directory `par\uFFFD/t`. Such arguments are refused instead; Linux
// keeps the bytes as given in /proc/self/cmdline.
import { isUtf8 } from 'node:buffer';
import { readFileSync } from 'node:fs';
import { displayName, nameFromBytes } from '../core/byte-names.ts';
import { AmberError } from '../core/errors.ts';

/**
 * Throws USAGE when one of `args` (this process's arguments after the script, as process.argv has
 * them) was not UTF-8 on the command line. Only arguments holding U+FFFD can be such.
 */
export function refuseArgumentsNotUtf8(args: readonly string[]): void {
  if (!args.some((arg) => arg.includes('\uFFFD'))) return;
  let cmdline: Buffer;
  try {
    cmdline = readFileSync('/proc/self/cmdline');
  } catch {
    return; // not Linux, or no /proc: nothing to compare with
  }
  const raw: Buffer[] = [];
  for (let start = 0; start < cmdline.length; ) {
    const end = cmdline.indexOf(0, start);
    raw.push(cmdline.subarray(start, end < 0 ? cmdline.length : end));
    start = end < 0 ? cmdline.length : end + 1;
  }
  if (raw.length < args.length) return;
  const mine = raw.slice(raw.length - args.length);
  mine.forEach((bytes, n) => {
    // Only when the bytes are what Node decoded: another argv (a test calling main) is not checked.
    if (isUtf8(bytes) || bytes.toString('utf8') !== args[n]) return;
    throw new AmberError(
      'USAGE',
      `the argument "${displayName(nameFromBytes(bytes))}" is not valid UTF-8, and Node reads arguments as UTF-8: it would name another path`,
      {
        hint: 'name a path that is not UTF-8 by a parent that is (a backup of the parent, a --target above it), or in the escaped form ls shows for --include and ls/dump paths',
      },
    );
  });
}
