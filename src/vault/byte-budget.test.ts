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

test('one owner holds at most its share: its next request waits for its own bytes while another owner goes ahead', async () => {
  const budget = createByteBudget(100, 50);
  const order: string[] = [];
  const first = await budget.reserve(50, 'slow');
  const second = budget.reserve(10, 'slow').then((release) => (order.push('slow again'), release));
  const other = budget.reserve(40, 'other').then((release) => (order.push('other'), release));
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(order, ['other'], 'the second owner is not held up by the first one\'s queue');
  assert.equal(budget.heldBy('slow'), 50);
  first();
  (await second)();
  (await other)();
  assert.deepEqual(order, ['other', 'slow again']);
  assert.equal(budget.inUse, 0);
  // A request larger than the share goes once its owner holds nothing.
  const big = await budget.reserve(80, 'slow');
  assert.equal(budget.heldBy('slow'), 80);
  big();
  assert.equal(budget.heldBy('slow'), 0);
});
