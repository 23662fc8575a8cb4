// Microseconds per readXattrs by the way the entry is reached: a UTF-8 path, the /proc alias of a
// parent opened by its bytes, a directory opened by its bytes, a file read through its fd; with no
// attribute, and with two. Also lstat for scale. Not a test; run with
//   node src/source/fs/xattrs.bench.ts [calls] [rounds]
// and read the median.
import { lstatSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nameFromBytes } from '../../core/byte-names.ts';
import { readXattrs, writeXattrs } from './xattrs.ts';
import type { EntryType } from './entry-meta.ts';

const calls = Number(process.argv[2] ?? 20_000);
const rounds = Number(process.argv[3] ?? 5);
const root = mkdtempSync(join(tmpdir(), 'amber-xattrs-bench-'));
const bytes = (...parts: (string | number[])[]) =>
  Buffer.concat([Buffer.from(root), ...parts.map((part) => Buffer.concat([Buffer.from('/'), Buffer.from(part)]))]);

const badDir = bytes([0x64, 0xff]);
mkdirSync(badDir);
const entries: [string, Buffer, EntryType][] = [
  ['UTF-8 path, file', bytes('file'), 'file'],
  ['UTF-8 path, dir', bytes('dir'), 'dir'],
  ['ancestor not UTF-8: /proc/self/fd/N/leaf', bytes([0x64, 0xff], 'file'), 'file'],
  ['dir not UTF-8: /proc/self/fd/N/.', bytes([0x64, 0xff], [0x65, 0xfe]), 'dir'],
  ['file not UTF-8: through its fd', bytes([0x66, 0xfe]), 'file'],
];
for (const [, path, type] of entries) {
  if (type === 'dir') mkdirSync(path);
  else writeFileSync(path, '');
}

function measure(run: () => void): number {
  const start = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) run();
  return Number(process.hrtime.bigint() - start) / 1000 / calls;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

for (const withAttributes of [false, true]) {
  if (withAttributes) {
    for (const [, path, type] of entries) {
      const failures = writeXattrs(nameFromBytes(path), type, [
        { name: 'user.a', value: Buffer.alloc(16, 1) },
        { name: 'user.b', value: Buffer.alloc(64, 2) },
      ]);
      if (failures.length > 0) throw new Error(`user attributes refused: ${JSON.stringify(failures)}`);
    }
  }
  process.stdout.write(`${withAttributes ? 'two attributes' : 'no attribute'} (µs per call, median of ${rounds}):\n`);
  const lstat = median(Array.from({ length: rounds }, () => measure(() => lstatSync(entries[0][1]))));
  process.stdout.write(`  ${'lstat, for scale'.padEnd(44)} ${lstat.toFixed(2)}\n`);
  for (const [label, path, type] of entries) {
    const name = nameFromBytes(path);
    const times = Array.from({ length: rounds }, () => measure(() => readXattrs(name, type)));
    process.stdout.write(`  ${label.padEnd(44)} ${median(times).toFixed(2)}\n`);
  }
}
rmSync(root, { recursive: true, force: true });
