// One zstd context per thread and direction, reused for every blob. `zstdCompressSync` builds a
// whole stream object (a Duplex with its states, listeners and a native context) for each call;
// on a backup's tens of thousands of small blobs that cost more than compressing them, and its
// garbage kept the workers' collector busy (docs/decisions/0004-reused-zstd-contexts.md).
// The reuse goes through the engine's native handle, which Node does not document; where that
// handle is missing or behaves unexpectedly, the documented one-shot functions take over.
import zlib from 'node:zlib';

interface NativeHandle {
  reset(): void;
  writeSync(
    flush: number,
    input: Uint8Array,
    inOffset: number,
    inLength: number,
    output: Uint8Array,
    outOffset: number,
    outLength: number,
  ): void;
}

interface Context {
  engine: zlib.ZstdCompress | zlib.ZstdDecompress;
  handle: NativeHandle;
  /** [output bytes left, input bytes left] after each write. */
  state: Uint32Array;
}

const END = zlib.constants.ZSTD_e_end;

function contextOf(engine: zlib.ZstdCompress | zlib.ZstdDecompress): Context | undefined {
  const { _handle: handle, _writeState: state } = engine as unknown as {
    _handle?: NativeHandle;
    _writeState?: Uint32Array;
  };
  if (typeof handle?.writeSync !== 'function' || typeof handle.reset !== 'function' || !(state instanceof Uint32Array))
    return undefined;
  // A native error destroys the engine inside writeSync: `errored` is set at once and its handle
  // closed, so the context is dropped and the next call makes a new one. The 'error' event itself
  // comes later and must not go unheard.
  engine.on('error', () => {});
  return { engine, handle, state };
}

const compressors = new Map<number, Context | undefined>();
let decompressor: Context | undefined;
let reuseWorks = true;

function compressor(level: number): Context | undefined {
  if (!compressors.has(level))
    compressors.set(
      level,
      contextOf(new zlib.ZstdCompress({ params: { [zlib.constants.ZSTD_c_compressionLevel]: level } })),
    );
  return compressors.get(level);
}

/** Runs one whole frame through a context; the bytes written, or undefined when `output` was too small. */
function run(context: Context, input: Uint8Array, output: Buffer): number | undefined {
  context.handle.reset();
  context.handle.writeSync(END, input, 0, input.length, output, 0, output.length);
  if (context.engine.errored) throw context.engine.errored;
  const [outLeft, inLeft] = context.state;
  if (outLeft === 0) return undefined;
  if (inLeft !== 0) throw new Error(`zstd left ${inLeft} input bytes unread`);
  return output.length - outLeft;
}

/**
 * Compresses `input` as one zstd frame, or returns undefined when the frame would not be smaller
 * than `limit` bytes (the caller then stores the input as it is).
 */
export function zstdCompress(input: Uint8Array, level: number, limit: number): Buffer | undefined {
  const context = reuseWorks ? compressor(level) : undefined;
  if (!context) {
    const compressed = zlib.zstdCompressSync(input, {
      params: { [zlib.constants.ZSTD_c_compressionLevel]: level },
      pledgedSrcSize: input.length,
      chunkSize: input.length + 64,
    });
    return compressed.length < limit ? compressed : undefined;
  }
  const output = Buffer.allocUnsafe(limit);
  try {
    const written = run(context, input, output);
    return written === undefined ? undefined : output.subarray(0, written);
  } catch (error) {
    if (context.engine.errored) compressors.delete(level);
    throw error;
  }
}

/**
 * Decompresses one zstd frame that must yield exactly `length` bytes (more is an error), into
 * `into` when it has room for one byte more: memory used again costs no page faults, which on a
 * restore or verify of many large blobs cost more than decompressing them.
 */
export function zstdDecompress(input: Uint8Array, length: number, into?: Buffer): Buffer {
  if (reuseWorks) decompressor ??= contextOf(new zlib.ZstdDecompress());
  if (!decompressor) return zlib.zstdDecompressSync(input, { maxOutputLength: length, chunkSize: length + 64 });
  // One spare byte shows output beyond the expected length.
  const output = into && into.length > length ? into.subarray(0, length + 1) : Buffer.allocUnsafe(length + 1);
  try {
    const written = run(decompressor, input, output);
    if (written === undefined) throw new Error(`zstd output exceeds the expected ${length} bytes`);
    return output.subarray(0, written);
  } catch (error) {
    if (decompressor.engine.errored) decompressor = undefined;
    throw error;
  }
}

/** Makes every later call use Node's one-shot functions (tests compare both paths). */
export function disableContextReuse(): void {
  reuseWorks = false;
}
