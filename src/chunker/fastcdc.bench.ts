// Throughput of FastCDC with the default parameters on random data. Not a test; run with
//   node src/chunker/fastcdc.bench.ts [MiB] [rounds]
// and read the median (the best shows what the machine can do when nothing else is running).
import { randomBytes } from 'node:crypto';
import { chunkStream, createChunker, DEFAULT_CHUNKER_PARAMS } from './fastcdc.ts';
import type { Chunker } from './fastcdc.ts';

const MiB = 1024 * 1024;
const totalBytes = Number(process.argv[2] ?? 256) * MiB;
const rounds = Number(process.argv[3] ?? 7);
const data = randomBytes(totalBytes);
const chunker = createChunker(DEFAULT_CHUNKER_PARAMS, randomBytes(32));

function cutInPlace(chunker: Chunker): number {
  let chunks = 0;
  for (let start = 0; start < data.length; chunks++) start += chunker.cutPoint(data, start, data.length);
  return chunks;
}

async function* pieces(sizeBytes: number): AsyncGenerator<Uint8Array> {
  for (let offset = 0; offset < data.length; offset += sizeBytes) yield data.subarray(offset, offset + sizeBytes);
}

async function stream(chunker: Chunker, pieceBytes: number): Promise<number> {
  let chunks = 0;
  for await (const _chunk of chunkStream(pieces(pieceBytes), chunker)) chunks++;
  return chunks;
}

const cases: Array<[string, () => number | Promise<number>]> = [
  ['cutPoint over one buffer', () => cutInPlace(chunker)],
  ['chunkStream, 64 KiB source buffers', () => stream(chunker, 64 * 1024)],
  ['chunkStream, 1 MiB source buffers', () => stream(chunker, MiB)],
  [`chunkStream, one ${totalBytes / MiB} MiB buffer`, () => stream(chunker, totalBytes)],
];

const speeds = cases.map((): number[] => []);
let chunks = 0;
for (let round = 0; round < rounds; round++) {
  for (const [index, [, run]] of cases.entries()) {
    const startMs = performance.now();
    chunks = await run();
    speeds[index].push(totalBytes / 1e6 / ((performance.now() - startMs) / 1000));
  }
}
console.log(
  `${totalBytes / MiB} MiB of random data, ${chunks} chunks (mean ${(totalBytes / chunks / MiB).toFixed(2)} MiB), ${rounds} rounds`,
);
for (const [index, [label]] of cases.entries()) {
  const sorted = speeds[index].sort((a, b) => a - b);
  const median = sorted[sorted.length >> 1].toFixed(0);
  console.log(
    `${label.padEnd(38)} median ${median.padStart(5)} MB/s   best ${sorted.at(-1)!.toFixed(0).padStart(5)} MB/s`,
  );
}
