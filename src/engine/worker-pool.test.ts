import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { makeTempDir } from '../testing/repo-fixture.ts';
import { createWorkerPool } from './worker-pool.ts';

async function workerModule(t: { after(fn: () => unknown): void }, source: string): Promise<URL> {
  const dir = await makeTempDir('worker-pool');
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'worker.mjs');
  await fs.writeFile(path, source);
  return pathToFileURL(path);
}

test('a task that throws in the worker fails alone; the next task is served', async (t) => {
  const url = await workerModule(
    t,
    `
    import { parentPort } from 'node:worker_threads';
    parentPort.on('message', ({ seq, task }) => {
      if (task === 'bad') parentPort.postMessage({ seq, error: 'bad task' });
      else parentPort.postMessage({ seq, reply: task * 2 });
    });`,
  );
  const pool = createWorkerPool<number | string, number>(url, 2);
  try {
    await assert.rejects(pool.run('bad'), /bad task/);
    assert.deepEqual(await Promise.all([pool.run(1), pool.run(2), pool.run(3)]), [2, 4, 6]);
  } finally {
    await pool.close();
  }
});

test('a worker that dies fails what it held and every later task, instead of leaving them waiting', {
  timeout: 20_000,
}, async (t) => {
  const url = await workerModule(t, `throw new Error('cannot start');`);
  const pool = createWorkerPool<number, number>(url, 1);
  try {
    await assert.rejects(pool.run(1), /cannot start/);
    await assert.rejects(pool.run(2), /cannot start/);
  } finally {
    await pool.close();
  }
});
