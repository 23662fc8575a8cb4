// Runs pack checks on worker threads (one per core), or inline when the pool is empty.
import type { PackCheckInput, PackCheckResult } from './pack-check.ts';
import { checkPack } from './pack-check.ts';
import type { PackCheckReply, PackCheckTask } from './verify-worker.ts';
import { createWorkerPool, defaultPoolSize } from './worker-pool.ts';

export interface PackCheckPool {
  readonly size: number;
  check(input: PackCheckInput): Promise<PackCheckResult>;
  close(): Promise<void>;
}

export function createPackCheckPool(size = defaultPoolSize()): PackCheckPool {
  if (size === 0) {
    return { size: 1, check: async (input) => checkPack(input), close: async () => {} };
  }
  const workers = createWorkerPool<PackCheckTask, PackCheckReply>(new URL('./verify-worker.ts', import.meta.url), size);
  return {
    size,
    async check(input) {
      // The pack's bytes move to the worker when they own their memory; otherwise they are copied.
      const owned = input.bytes.byteOffset === 0 && input.bytes.byteLength === input.bytes.buffer.byteLength;
      const reply = await workers.run(input, owned ? [input.bytes.buffer as ArrayBuffer] : []);
      return { problems: reply.problems, entries: reply.entries.map((entry) => ({ ...entry, id: Buffer.from(entry.id) })) };
    },
    close: () => workers.close(),
  };
}
