// Writing restored file content sparsely: all-zero blocks are skipped, so holes stay holes. The file
// is new (or a fresh temporary file), so what is skipped reads as zeros; the caller sets its length.
import { writeSync } from 'node:fs';

const SPARSE_BLOCK_BYTES = 4096;
const ZERO = Buffer.alloc(SPARSE_BLOCK_BYTES);

/**
 * Writes the runs of `data` that are not all-zero blocks; the file is new, so what is skipped reads
 * as zeros. Returns the file offset just past the last byte written (`position` when none was): only
 * a file whose end was skipped needs its length set.
 */
export function writeNonZero(fd: number, data: Buffer, position: number): number {
  let runStart = -1;
  let written = position;
  for (let at = 0; at < data.length; at += SPARSE_BLOCK_BYTES) {
    const blockEnd = Math.min(at + SPARSE_BLOCK_BYTES, data.length);
    const zero = ZERO.compare(data, at, blockEnd, 0, blockEnd - at) === 0;
    if (!zero && runStart < 0) runStart = at;
    if (zero && runStart >= 0) {
      writeAll(fd, data.subarray(runStart, at), position + runStart);
      written = position + at;
      runStart = -1;
    }
  }
  if (runStart >= 0) {
    writeAll(fd, data.subarray(runStart), position + runStart);
    written = position + data.length;
  }
  return written;
}

function writeAll(fd: number, data: Buffer, position: number): void {
  for (let written = 0; written < data.length; ) {
    written += writeSync(fd, data, written, data.length - written, position + written);
  }
}
