// A fixed set of worker threads running one kind of task, each task sent to the least busy worker.
// Workers are started on first use, so a command with nothing to hand them never pays their start-up.
import { Worker, type MessagePort, type Transferable } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import module from 'node:module';

export interface WorkerPool<Task, Reply> {
  readonly size: number;
  /** Runs a task; `transfer` lists memory that moves to the worker instead of being copied. */
  run(task: Task, transfer?: Transferable[]): Promise<Reply>;
  close(): Promise<void>;
}

/** One worker per core (the main thread reads and writes meanwhile); AMBER_WORKERS overrides, 0 runs inline. */
export function defaultPoolSize(): number {
  const configured = process.env.AMBER_WORKERS;
  if (configured !== undefined && /^\d+$/.test(configured)) return Math.min(Number(configured), 64);
  return Math.max(1, Math.min(availableParallelism(), 8));
}

/** The worker module receives `{ seq, task }` and answers `{ seq, reply }` or `{ seq, error }` (see serveTasks). */
export function createWorkerPool<Task, Reply>(url: URL, size: number, workerData?: unknown): WorkerPool<Task, Reply> {
  const waiting = new Map<number, { slot: number; resolve: (reply: Reply) => void; reject: (error: Error) => void }>();
  const load: number[] = [];
  const workers: Worker[] = [];
  let seq = 0;

  let failure: Error | undefined;

  const start = (slot: number): Worker => {
    const worker = startWorker(url, workerData);
    worker.on('message', (message: { seq: number; reply?: Reply; error?: string }) => {
      const task = waiting.get(message.seq)!;
      waiting.delete(message.seq);
      load[slot] -= 1;
      if (message.error !== undefined) task.reject(new Error(`a worker thread failed: ${message.error}`));
      else task.resolve(message.reply as Reply);
    });
    worker.on('error', (error) => {
      // A worker that failed is gone: what it held fails now, and so does every later task.
      failure = error;
      for (const task of waiting.values()) task.reject(error);
      waiting.clear();
    });
    return worker;
  };

  return {
    size,
    run(task, transfer = []) {
      if (failure) return Promise.reject(failure);
      if (workers.length < size) {
        load.push(0);
        workers.push(start(workers.length));
      }
      const slot = load.indexOf(Math.min(...load));
      load[slot] += 1;
      const current = seq++;
      return new Promise<Reply>((resolve, reject) => {
        waiting.set(current, { slot, resolve, reject });
        workers[slot].postMessage({ seq: current, task }, transfer);
      });
    },
    async close() {
      await Promise.all(workers.map((worker) => worker.terminate()));
    },
  };
}

/**
 * One worker thread, not keeping the process alive. Workers share the process's compile cache
 * (bin/amber.js enables it), so they load compiled modules instead of stripping TypeScript again:
 * half their memory and most of their start-up. A small heap makes them collect often, and with it
 * the buffers they are done with.
 */
export function startWorker(url: URL, workerData?: unknown): Worker {
  const compileCache = module.getCompileCacheDir?.();
  const worker = new Worker(asBuilt(url), {
    workerData,
    env: compileCache ? { ...process.env, NODE_COMPILE_CACHE: compileCache } : process.env,
    resourceLimits: { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 48 },
  });
  worker.unref();
  return worker;
}

/**
 * Callers name a worker by its source file (`new URL('./codec-worker.ts', import.meta.url)`); the
 * package runs the JavaScript that `npm run build` emits into dist/, where the file is
 * `codec-worker.js`. A worker module takes this module's own extension, so one name serves both.
 */
const BUILT = new URL(import.meta.url).pathname.endsWith('.js');
function asBuilt(url: URL): URL {
  if (!BUILT || url.protocol !== 'file:' || !url.pathname.endsWith('.ts')) return url;
  const built = new URL(url);
  built.pathname = `${url.pathname.slice(0, -'.ts'.length)}.js`;
  return built;
}

/** The worker side: answers each task with `handle`'s result and the memory to transfer back. */
export function serveTasks<Task, Reply>(
  port: MessagePort,
  handle: (task: Task) => { reply: Reply; transfer?: Transferable[] },
): void {
  port.on('message', ({ seq, task }: { seq: number; task: Task }) => {
    try {
      const { reply, transfer } = handle(task);
      port.postMessage({ seq, reply }, transfer ?? []);
    } catch (error) {
      port.postMessage({ seq, error: (error as Error).message });
    }
  });
}
