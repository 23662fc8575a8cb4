// Writing restored file content sparsely: all-zero blocks are skipped, so holes stay holes. The file
// is new (or a fresh temporary file), so what is skipped reads as zeros; the caller sets its length.
import { writeSync } from 'node:fs';

const SPARSE_BLOCK_BYTES = 4096;
const ZERO = Buffer.alloc(SPARSE_BLOCK_BYTES);

/** Writes the runs of `data` that are not all-zero blocks; the file is new, so what is skipped reads as zeros. */
export function writeNonZero(fd: number, data: Buffer, position: number): void {
  let runStart = -1;
  for (let at = 0; at < data.length; at += SPARSE_BLOCK_BYTES) {
    const end = Math.min(at + SPARSE_BLOCK_BYTES, data.length);
    const zero = ZERO.compare(data, at, end, 0, end - at) === 0;
    if (!zero && runStart < 0) runStart = at;
    if (zero && runStart >= 0) {
      writeAll(fd, data.subarray(runStart, at), position + runStart);
      runStart = -1;
    }
  }
  if (runStart >= 0) writeAll(fd, data.subarray(runStart), position + runStart);
}

function writeAll(fd: number, data: Buffer, position: number): void {
  for (let written = 0; written < data.length;) {
    written += writeSync(fd, data, written, data.length - written, position + written);
  }
}
