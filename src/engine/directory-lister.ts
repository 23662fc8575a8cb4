// Directory listings for a backup, read ahead on a walker thread (list-worker.ts) in exactly the
// order the backup asks for them: depth first, names sorted, excluded directories left out. If the
// backup ever asks for another directory than the next one walked, the walker is stopped and the
// rest of the backup lists directories itself, so a disagreement costs speed, never correctness.
import type { Worker } from 'node:worker_threads';
import { readListing, type Listing } from '../source/fs/listing.ts';
import { startWorker } from './worker-pool.ts';

export interface DirectoryLister {
  /** The listing of `dir`; directories are asked for in the order the walk visits them. */
  list(dir: string): Promise<Listing>;
  /** False once the lister lists directories itself (no walker, or the walk order was not followed). */
  readonly readingAhead: boolean;
  close(): Promise<void>;
}

/** Entries sent ahead and not yet consumed; about 200 bytes each in transit. */
const WINDOW_ENTRIES = 20_000;

/** `start`: a directory the backup will list first, walked from now on (while the repository loads). */
export function createDirectoryLister(options: {
  excludes: string[];
  ahead: boolean;
  start?: string;
}): DirectoryLister {
  if (!options.ahead) return { list: async (dir) => readListing(dir), readingAhead: false, close: async () => {} };
  const progress = new SharedArrayBuffer(8);
  const counters = new Int32Array(progress);
  let worker: Worker | undefined;
  let failed = false;
  const arrived: Listing[] = [];
  let walking = false;
  let waiter: (() => void) | undefined;

  const start = (): Worker => {
    const started = startWorker(new URL('./list-worker.ts', import.meta.url), {
      excludes: options.excludes,
      progress,
      windowEntries: WINDOW_ENTRIES,
    });
    started.on('message', (message: Listing | { done: string }) => {
      if ('done' in message) walking = false;
      else arrived.push(message);
      waiter?.();
    });
    started.on('error', () => {
      failed = true;
      waiter?.();
    });
    return started;
  };

  const walkFrom = (root: string) => {
    worker ??= start();
    walking = true;
    worker.postMessage({ root });
  };
  if (options.start !== undefined) walkFrom(options.start);

  const giveUp = () => {
    failed = true;
    void worker?.terminate();
  };

  return {
    get readingAhead() {
      return !failed;
    },
    async list(dir) {
      if (failed) return readListing(dir);
      if (arrived.length === 0 && !walking) walkFrom(dir);
      while (arrived.length === 0 && walking && !failed) await new Promise<void>((wake) => (waiter = wake));
      const next = arrived.shift();
      if (!next || next.dir !== dir) {
        giveUp();
        return readListing(dir);
      }
      Atomics.add(counters, 1, next.entries.length + 1);
      Atomics.notify(counters, 1);
      return next;
    },
    async close() {
      failed = true;
      const stopping = worker;
      worker = undefined;
      await stopping?.terminate();
    },
  };
}
