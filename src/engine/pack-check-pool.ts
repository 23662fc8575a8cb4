// Runs pack checks on worker threads (one per core), or inline when the pool is empty.
import { Worker } from 'node:worker_threads';
import type { PackCheckInput, PackCheckResult } from './pack-check.ts';
import { checkPack } from './pack-check.ts';
import type { PackCheckReply, PackCheckTask } from './verify-worker.ts';
import { defaultPoolSize } from './codec-pool.ts';

export interface PackCheckPool {
  readonly size: number;
  check(input: PackCheckInput): Promise<PackCheckResult>;
  close(): Promise<void>;
}

export function createPackCheckPool(size = defaultPoolSize()): PackCheckPool {
  if (size === 0) {
    return { size: 1, check: async (input) => checkPack(input), close: async () => {} };
  }
  const waiting = new Map<number, { resolve: (result: PackCheckResult) => void; reject: (error: Error) => void }>();
  const load: number[] = [];
  let seq = 0;
  const workers = Array.from({ length: size }, (_, slot) => {
    const worker = new Worker(new URL('./verify-worker.ts', import.meta.url), {
      resourceLimits: { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 48 },
    });
    load.push(0);
    worker.unref();
    worker.on('message', (reply: PackCheckReply) => {
      const task = waiting.get(reply.seq)!;
      waiting.delete(reply.seq);
      load[slot] -= 1;
      if (reply.error !== undefined) return task.reject(new Error(`pack check failed in a worker: ${reply.error}`));
      task.resolve({
        problems: reply.problems,
        entries: reply.entries.map((entry) => ({ ...entry, id: Buffer.from(entry.id) })),
      });
    });
    worker.on('error', (error) => {
      for (const task of waiting.values()) task.reject(error);
      waiting.clear();
    });
    return worker;
  });
  return {
    size,
    check(input) {
      const slot = load.indexOf(Math.min(...load));
      load[slot] += 1;
      const current = seq++;
      return new Promise((resolve, reject) => {
        waiting.set(current, { resolve, reject });
        const task: PackCheckTask = {
          seq: current,
          bytes: input.bytes,
          packId: input.packId,
          name: input.name,
          signerPublicKey: input.signerPublicKey,
          epochPairs: input.epochPairs,
          idKey: input.idKey,
        };
        // The pack's bytes move to the worker when they own their memory; otherwise they are copied.
        const owned = input.bytes.byteOffset === 0 && input.bytes.byteLength === input.bytes.buffer.byteLength;
        workers[slot].postMessage(task, owned ? [input.bytes.buffer as ArrayBuffer] : []);
      });
    },
    async close() {
      await Promise.all(workers.map((worker) => worker.terminate()));
    },
  };
}
