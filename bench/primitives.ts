// Throughput of the primitives Amber's pipeline is made of, on this machine, one core each:
//   node bench/primitives.ts
// The numbers behind docs/decisions/0001-primitives.md.
import { createCipheriv, createHash, createHmac, createSecretKey, randomBytes } from 'node:crypto';
import { zstdCompressSync, zstdDecompressSync, constants as zlib } from 'node:zlib';
import { createChunker, DEFAULT_CHUNKER_PARAMS } from '../src/chunker/fastcdc.ts';
import { createTextSource, TEXT_STYLES } from './lib/text.ts';

const MiB = 1024 * 1024;
const random = randomBytes(64 * MiB);
// Realistic text: the benchmark tree's generator, all its styles in turn (zstd 3 compresses it ~3×).
const sources = TEXT_STYLES.map((style) => createTextSource(style, 'primitives'));
const pieces: Buffer[] = [];
for (let n = 0; n < 64; n++) {
  const piece = Buffer.alloc(MiB);
  pieces.push(piece.subarray(0, sources[n % sources.length].fill(piece)));
}
const text = Buffer.concat(pieces);

function rate(label: string, bytes: number, run: () => void): void {
  run();
  const samples: number[] = [];
  for (let i = 0; i < 5; i++) {
    const started = performance.now();
    run();
    samples.push(bytes / MiB / ((performance.now() - started) / 1000));
  }
  samples.sort((a, b) => a - b);
  console.log(`${label.padEnd(44)} ${samples[2].toFixed(0).padStart(6)} MiB/s`);
}

const perChunk = (data: Buffer, fn: (chunk: Buffer) => void) => () => {
  for (let at = 0; at < data.length; at += MiB) fn(data.subarray(at, at + MiB));
};
const key = createSecretKey(randomBytes(32));
const chunker = createChunker(DEFAULT_CHUNKER_PARAMS, randomBytes(32));

console.log(`node ${process.version}, 1 MiB messages, median of 5`);
rate(
  'SHA-256 (node:crypto)',
  random.length,
  perChunk(random, (c) => createHash('sha256').update(c).digest()),
);
rate(
  'HMAC-SHA-256, key imported once',
  random.length,
  perChunk(random, (c) => createHmac('sha256', key).update(c).digest()),
);
rate(
  'AES-256-GCM seal',
  random.length,
  perChunk(random, (c) => {
    const cipher = createCipheriv('aes-256-gcm', key, randomBytes(12));
    cipher.update(c);
    cipher.final();
  }),
);
rate('FastCDC cut points (random data)', random.length, () => {
  for (let at = 0; at < random.length; ) at += chunker.cutPoint(random, at, random.length);
});
for (const level of [1, 3, 6]) {
  const params = { params: { [zlib.ZSTD_c_compressionLevel]: level } };
  rate(
    `zstd level ${level} compress, text`,
    text.length,
    perChunk(text, (c) => zstdCompressSync(c, params)),
  );
  rate(
    `zstd level ${level} compress, incompressible`,
    random.length,
    perChunk(random, (c) => zstdCompressSync(c, params)),
  );
  const ratio = (8 * MiB) / zstdCompressSync(text.subarray(0, 8 * MiB), params).length;
  console.log(`${`zstd level ${level} ratio on the text`.padEnd(44)} ${ratio.toFixed(2).padStart(6)}×`);
}
const compressed = zstdCompressSync(text.subarray(0, MiB));
rate(
  'zstd decompress, text',
  text.length,
  perChunk(text, () => zstdDecompressSync(compressed)),
);
