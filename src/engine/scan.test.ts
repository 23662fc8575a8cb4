import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeTempDir } from '../testing/repo-fixture.ts';
import { scanSources } from './scan.ts';

test('the progress scan totals the files a backup will read, leaving out excluded ones', async (t) => {
  const dir = await makeTempDir('scan');
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  await fs.mkdir(join(dir, 'a', 'cache'), { recursive: true });
  await fs.writeFile(join(dir, 'a', 'one.txt'), Buffer.alloc(1000));
  await fs.writeFile(join(dir, 'a', 'two.tmp'), Buffer.alloc(50));
  await fs.writeFile(join(dir, 'a', 'cache', 'big'), Buffer.alloc(100_000));
  await fs.symlink('one.txt', join(dir, 'a', 'link'));
  const totals = scanSources([join(dir, 'a')], ['*.tmp', 'cache']);
  for (let waited = 0; !totals.done && waited < 10_000; waited += 20) await sleep(20);
  assert.deepEqual(totals, { files: 1, bytes: 1000, done: true });
});
