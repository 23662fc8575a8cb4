// A stand-in for src/source/fs/xattrs.ts while it is being built: extended attributes set and read
// through Python's os module (Node has no xattr calls). One process sets one attribute; the reader
// lists a whole tree in one process up front, so a snapshot of 20,000 entries stays quick. Paths are
// Amber strings: bytes that are not UTF-8 as lone surrogates (src/core/byte-names.ts).
import { execFileSync, spawnSync } from 'node:child_process';
import { nameBytes } from '../../core/byte-names.ts';
import type { XattrReader } from './snapshot.ts';

// `python3` may be a slow shim (pyenv: 300 ms a call); the interpreter it resolves to is asked once.
let interpreter: string | undefined;
function python(): string {
  interpreter ??= execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim();
  return interpreter;
}

/** Why the stand-in cannot run here, or undefined when it can. */
export function whyPythonXattrsUnavailable(): string | undefined {
  const probe = spawnSync('python3', ['-c', 'import os; os.setxattr; os.listxattr'], { encoding: 'utf8' });
  if (probe.error) return `python3 is not available (${(probe.error as NodeJS.ErrnoException).code})`;
  return probe.status === 0 ? undefined : `python3 has no os.setxattr: ${probe.stderr.trim()}`;
}

const SET = `
import os, sys
os.setxattr(bytes.fromhex(sys.argv[1]), sys.argv[2], bytes.fromhex(sys.argv[3]), follow_symlinks=False)
`;

/** Sets one attribute on `path` itself (never through a symlink). */
export function pythonSetXattr(path: string, name: string, value: Buffer): void {
  execFileSync(python(), ['-c', SET, nameBytes(path).toString('hex'), name, value.toString('hex')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
}

const LIST = `
import json, os, sys
root = bytes.fromhex(sys.argv[1])
out = {}
def visit(path):
    names = os.listxattr(path, follow_symlinks=False)
    if names:
        out[path.hex()] = [[n, os.getxattr(path, n, follow_symlinks=False).hex()] for n in names]
visit(root)
for top, dirs, files in os.walk(root):
    for name in dirs + files:
        visit(os.path.join(top, name))
json.dump(out, sys.stdout)
`;

/** Reads every attribute under `root` now; the reader then answers from that listing. */
export function pythonXattrReader(root: string): XattrReader {
  const output = execFileSync(python(), ['-c', LIST, nameBytes(root).toString('hex')], {
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
  const listing = JSON.parse(output) as Record<string, [string, string][]>;
  return (path) =>
    (listing[nameBytes(path).toString('hex')] ?? []).map(([name, hex]) => ({ name, value: Buffer.from(hex, 'hex') }));
}
