// Checks whole packs for verify --read-data. The frame of each pack is checked on the main thread
// (one hash pass); its blobs, in groups of a few MiB, on worker threads reading the pack from shared
// memory, so even a repository of few packs keeps every core busy.
import type { PackEntry } from '../repo/pack.ts';
import { checkPackBlobs, checkPackFrame, type PackCheckInput, type VerifyProblem } from './pack-check.ts';
import type { BlobCheckTask } from './verify-worker.ts';
import { createWorkerPool, defaultPoolSize } from './worker-pool.ts';
import { settleAll } from '../core/settle.ts';

export interface PackCheckResult {
  problems: VerifyProblem[];
  entries: PackEntry[];
}

export interface PackCheckPool {
  /** Memory to read a pack of `sizeBytes` into; it comes back through `check` or `give`. */
  take(sizeBytes: number): Buffer;
  give(memory: Buffer): void;
  /** Checks a pack (read into memory from `take`, ideally), then takes that memory back. */
  check(input: PackCheckInput): Promise<PackCheckResult>;
  close(): Promise<void>;
}

const GROUP_SEALED_BYTES = 4 * 1024 * 1024;
/** Shared buffers start at this size: most packs are a little under 16 MiB (older ones 32 MiB). */
const MIN_SHARED_BYTES = 17 * 1024 * 1024;

export function createPackCheckPool(size = defaultPoolSize()): PackCheckPool {
  const workers =
    size > 0
      ? createWorkerPool<BlobCheckTask, VerifyProblem[]>(new URL('./verify-worker.ts', import.meta.url), size)
      : undefined;
  const free: SharedArrayBuffer[] = [];
  const give = (memory: Buffer) => {
    if (memory.buffer instanceof SharedArrayBuffer && !free.includes(memory.buffer)) free.push(memory.buffer);
  };
  return {
    give,
    take(sizeBytes) {
      const index = free.findIndex((memory) => memory.byteLength >= sizeBytes);
      const memory =
        index >= 0 ? free.splice(index, 1)[0] : new SharedArrayBuffer(Math.max(sizeBytes, MIN_SHARED_BYTES));
      return Buffer.from(memory, 0, sizeBytes);
    },
    async check(input) {
      try {
        const frame = checkPackFrame(input);
        if (!frame.dataKey) return frame;
        const keys = { dataKey: frame.dataKey, idKey: input.idKey };
        const groups = groupEntries(frame.entries);
        const problems = workers
          ? // Every group finishes before the shared memory is reused, even when one fails.
            await settleAll(
              groups.map((entries) => workers.run({ bytes: input.bytes, entries, ...keys, name: input.name })),
            )
          : groups.map((entries) => checkPackBlobs(input.bytes, entries, keys, input.name));
        return { problems: [...frame.problems, ...problems.flat()], entries: frame.entries };
      } finally {
        give(input.bytes);
      }
    },
    close: async () => workers?.close(),
  };
}

function groupEntries(entries: PackEntry[]): PackEntry[][] {
  const groups: PackEntry[][] = [];
  let group: PackEntry[] = [];
  let bytes = 0;
  for (const entry of entries) {
    group.push(entry);
    bytes += entry.sealedLength;
    if (bytes >= GROUP_SEALED_BYTES) {
      groups.push(group);
      group = [];
      bytes = 0;
    }
  }
  if (group.length > 0) groups.push(group);
  return groups;
}
