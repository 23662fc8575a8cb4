import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createByteBudget } from './byte-budget.ts';

test('the byte budget holds requests beyond its limit until bytes are released, in arrival order', async () => {
  const budget = createByteBudget(100);
  const first = await budget.reserve(60);
  const order: string[] = [];
  const big = budget.reserve(80).then((release) => (order.push('big'), release));
  const small = budget.reserve(10).then((release) => (order.push('small'), release));
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(order, [], 'nothing fits while 60 of 100 are reserved and the big one is first in line');
  assert.equal(budget.inUse, 60);
  first();
  first(); // a second release changes nothing
  const releaseBig = await big;
  const releaseSmall = await small;
  assert.deepEqual(order, ['big', 'small']);
  assert.equal(budget.inUse, 90);
  releaseBig();
  releaseSmall();
  assert.equal(budget.inUse, 0);
});

test('a request larger than the whole budget waits for all of it rather than forever', async () => {
  const budget = createByteBudget(100);
  const release = await budget.reserve(500);
  assert.equal(budget.inUse, 100);
  release();
  assert.equal(budget.inUse, 0);
});
