// Throughput of FastCDC on random data. Not a test: run with
//   node src/chunker/fastcdc.bench.ts [MiB]
import { randomBytes } from 'node:crypto';
import { chunkStream, createChunker, DEFAULT_CHUNKER_PARAMS } from './fastcdc.ts';

const MiB = 1024 * 1024;
const totalBytes = Number(process.argv[2] ?? 256) * MiB;
const data = randomBytes(totalBytes);
const chunker = createChunker(DEFAULT_CHUNKER_PARAMS, randomBytes(32));

function report(label: string, ms: number, chunks: number): void {
  const mbPerSecond = totalBytes / 1e6 / (ms / 1000);
  console.log(`${label.padEnd(34)} ${mbPerSecond.toFixed(0).padStart(6)} MB/s  ${chunks} chunks`);
}

function cutAll(): number {
  let chunks = 0;
  for (let start = 0; start < data.length; chunks++) start += chunker.cutPoint(data, start, data.length);
  return chunks;
}

async function* pieces(sizeBytes: number): AsyncGenerator<Uint8Array> {
  for (let offset = 0; offset < data.length; offset += sizeBytes) yield data.subarray(offset, offset + sizeBytes);
}

async function streamAll(pieceBytes: number): Promise<number> {
  let chunks = 0;
  for await (const _chunk of chunkStream(pieces(pieceBytes), chunker)) chunks++;
  return chunks;
}

for (let round = 0; round < 3; round++) {
  let t = performance.now();
  let chunks = cutAll();
  report(`cutPoint over one buffer`, performance.now() - t, chunks);
  t = performance.now();
  chunks = await streamAll(64 * 1024);
  report(`chunkStream, 64 KiB pieces`, performance.now() - t, chunks);
  t = performance.now();
  chunks = await streamAll(totalBytes);
  report(`chunkStream, one ${totalBytes / MiB} MiB piece`, performance.now() - t, chunks);
}
