// Large buffers recycled instead of allocated. Fresh memory is paid for again at first touch, one
// page fault per 4 KiB: on the virtual machines backups often run on that costs 10-15 µs a page,
// more than compressing the page. A buffer handed to a worker thread comes back with its reply.

export interface BufferPool {
  /** A buffer of `length` bytes at the start of an ArrayBuffer of its own, so it can be transferred. */
  take(length: number): Buffer;
  /**
   * Gives back memory from `take` (or the same memory transferred back from a worker) once nothing
   * refers to it any more. Memory of other sizes is ignored.
   */
  give(memory: ArrayBuffer): void;
  /** Bytes held for reuse. */
  readonly retainedBytes: number;
}

const SMALLEST_CLASS_BYTES = 64 * 1024;

/** Buffers come in power-of-two sizes from 64 KiB; at most `retainBytes` are kept between uses. */
export function createBufferPool(retainBytes: number): BufferPool {
  const free = new Map<number, ArrayBuffer[]>();
  let retainedBytes = 0;
  return {
    get retainedBytes() {
      return retainedBytes;
    },
    take(length) {
      const size = classOf(length);
      // A larger free buffer serves too (up to four times the size): fresh memory costs more.
      for (let larger = size; larger <= 4 * size; larger *= 2) {
        const memory = free.get(larger)?.pop();
        if (memory) {
          retainedBytes -= larger;
          return Buffer.from(memory, 0, length);
        }
      }
      return Buffer.from(Buffer.allocUnsafeSlow(size).buffer as ArrayBuffer, 0, length);
    },
    give(memory) {
      const size = memory.byteLength;
      if (size !== classOf(size) || retainedBytes + size > retainBytes) return;
      let list = free.get(size);
      if (!list) free.set(size, (list = []));
      list.push(memory);
      retainedBytes += size;
    },
  };
}

function classOf(length: number): number {
  let size = SMALLEST_CLASS_BYTES;
  while (size < length) size *= 2;
  return size;
}
