// File contents as small descriptions that expand, deterministically and as a stream, into bytes:
// text of a style, incompressible bytes, a disk-image mix of zeros/noise/text, or an edited copy of
// another content (a near duplicate). Nothing here holds a whole file in memory.
import { createRandom, createRandomBytes } from './random.ts';
import { createTextSource, MAX_LINE_BYTES, type TextStyle } from './text.ts';

export type Content =
  | { kind: 'text'; style: TextStyle; seed: string; sizeBytes: number }
  | { kind: 'random'; seed: string; sizeBytes: number }
  | { kind: 'image'; seed: string; sizeBytes: number }
  | { kind: 'edited'; base: Content; edits: Edit[]; sizeBytes: number };

/** At `offset` in the base content, drop `deleteBytes` and insert `insertBytes` of new text. */
export interface Edit {
  offset: number;
  deleteBytes: number;
  insertBytes: number;
  seed: string;
}

const CHUNK_BYTES = 1 << 20;

export interface ImageSegment {
  kind: 'zeros' | 'random' | 'text';
  sizeBytes: number;
}

/** The layout of a disk or database image: runs of zeros, noise and text, 4 KiB aligned. */
export function imageSegments(seed: string, sizeBytes: number): ImageSegment[] {
  const random = createRandom(`image:${seed}`);
  const segments: ImageSegment[] = [];
  for (let done = 0; done < sizeBytes; ) {
    const roll = random.float();
    const kind = roll < 0.3 ? 'zeros' : roll < 0.55 ? 'random' : 'text';
    const length = Math.min(sizeBytes - done, Math.ceil(random.logUniform(64 << 10, 4 << 20) / 4096) * 4096);
    segments.push({ kind, sizeBytes: length });
    done += length;
  }
  return segments;
}

/** Bytes of `content` that no compressor can shrink. */
export function incompressibleBytes(content: Content): number {
  switch (content.kind) {
    case 'text':
      return 0;
    case 'random':
      return content.sizeBytes;
    case 'image':
      return imageSegments(content.seed, content.sizeBytes)
        .filter((s) => s.kind === 'random')
        .reduce((sum, s) => sum + s.sizeBytes, 0);
    case 'edited':
      return Math.round((incompressibleBytes(content.base) * content.sizeBytes) / Math.max(1, content.base.sizeBytes));
  }
}

/**
 * The bytes of `content` in pieces of at most 1 MiB. A yielded buffer is only valid until the next
 * one is requested (buffers are reused), so consumers write each piece before asking for more.
 */
export function* contentChunks(content: Content): Generator<Buffer> {
  switch (content.kind) {
    case 'text':
      yield* textChunks(content.style, content.seed, content.sizeBytes);
      break;
    case 'random':
      yield* randomChunks(content.seed, content.sizeBytes);
      break;
    case 'image':
      yield* imageChunks(content.seed, content.sizeBytes);
      break;
    case 'edited':
      yield* editedChunks(content.base, content.edits);
      break;
  }
}

function* textChunks(style: TextStyle, seed: string, sizeBytes: number): Generator<Buffer> {
  const source = createTextSource(style, seed);
  const buffer = Buffer.allocUnsafe(Math.min(CHUNK_BYTES, sizeBytes + MAX_LINE_BYTES));
  for (let done = 0; done < sizeBytes; ) {
    const filled = source.fill(buffer);
    const piece = buffer.subarray(0, Math.min(filled, sizeBytes - done));
    done += piece.length;
    yield piece;
  }
}

function* randomChunks(seed: string, sizeBytes: number): Generator<Buffer> {
  const next = createRandomBytes(seed);
  for (let done = 0; done < sizeBytes; done += CHUNK_BYTES) yield next(Math.min(CHUNK_BYTES, sizeBytes - done));
}

function* imageChunks(seed: string, sizeBytes: number): Generator<Buffer> {
  const zeros = Buffer.alloc(Math.min(CHUNK_BYTES, sizeBytes));
  const noise = createRandomBytes(seed);
  let text: Generator<Buffer> | undefined;
  for (const segment of imageSegments(seed, sizeBytes)) {
    if (segment.kind === 'zeros') {
      for (let done = 0; done < segment.sizeBytes; done += zeros.length)
        yield zeros.subarray(0, Math.min(zeros.length, segment.sizeBytes - done));
    } else if (segment.kind === 'random') {
      for (let done = 0; done < segment.sizeBytes; done += CHUNK_BYTES)
        yield noise(Math.min(CHUNK_BYTES, segment.sizeBytes - done));
    } else {
      text ??= textChunks('sql', seed, Number.MAX_SAFE_INTEGER);
      for (let done = 0; done < segment.sizeBytes; ) {
        const piece = text.next().value!;
        const part = piece.subarray(0, Math.min(piece.length, segment.sizeBytes - done));
        done += part.length;
        yield part;
      }
    }
  }
}

/** Small text inserted by an edit (at most a few KiB, so it is made in one piece). */
export function insertedBytes(edit: Pick<Edit, 'insertBytes' | 'seed'>): Buffer {
  const parts = [...textChunks('prose', `insert:${edit.seed}`, edit.insertBytes)].map((piece) => Buffer.from(piece));
  return Buffer.concat(parts);
}

function* editedChunks(base: Content, edits: Edit[]): Generator<Buffer> {
  const sorted = [...edits].sort((x, y) => x.offset - y.offset);
  let next = 0;
  let skip = 0;
  let position = 0;
  for (let piece of contentChunks(base)) {
    while (piece.length > 0) {
      if (skip > 0) {
        const dropped = Math.min(skip, piece.length);
        skip -= dropped;
        position += dropped;
        piece = piece.subarray(dropped);
        continue;
      }
      const edit = sorted[next];
      if (edit && edit.offset < position + piece.length) {
        const before = Math.max(0, edit.offset - position);
        if (before > 0) yield piece.subarray(0, before);
        position += before;
        piece = piece.subarray(before);
        if (edit.insertBytes > 0) yield insertedBytes(edit);
        skip = edit.deleteBytes;
        next++;
        continue;
      }
      position += piece.length;
      yield piece;
      piece = piece.subarray(piece.length);
    }
  }
  for (; next < sorted.length; next++) if (sorted[next].insertBytes > 0) yield insertedBytes(sorted[next]);
}
