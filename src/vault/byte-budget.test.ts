import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createByteBudget } from './byte-budget.ts';

test('the byte budget holds requests beyond its limit until bytes are released, in arrival order', async () => {
  const budget = createByteBudget(100);
  const first = await budget.reserve(60);
  const order: string[] = [];
  const big = budget.reserve(80).then((release) => {
    order.push('big');
    return release;
  });
  const small = budget.reserve(10).then((release) => {
    order.push('small');
    return release;
  });
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
  const second = budget.reserve(10, 'slow').then((release) => {
    order.push('slow again');
    return release;
  });
  const other = budget.reserve(40, 'other').then((release) => {
    order.push('other');
    return release;
  });
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(order, ['other'], "the second owner is not held up by the first one's queue");
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

const tick = () => new Promise((resolve) => setImmediate(resolve));
const codeOf = (promise: Promise<unknown>) =>
  promise.then(
    () => 'granted',
    (error: { code?: string; details?: { httpStatus?: number } }) => `${error.code} ${error.details?.httpStatus}`,
  );

test('a lease holds only the steps it grew by, and gives them all back once', async () => {
  const budget = createByteBudget(100, { share: 50 });
  const lease = budget.open('a');
  await lease.grow(10);
  await lease.grow(10);
  assert.deepEqual([lease.held, budget.inUse, budget.heldBy('a')], [20, 20, 20]);
  // Another owner's request finds the rest: what was declared is not what is held.
  const other = budget.open('b');
  await other.grow(50);
  assert.equal(budget.inUse, 70);
  lease.release();
  lease.release();
  other.release();
  assert.deepEqual([budget.inUse, budget.heldBy('a'), budget.heldBy('b')], [0, 0, 0]);
});

test('requests that already hold bytes get the next free step before newcomers', async () => {
  const budget = createByteBudget(100, { share: 100 });
  const order: string[] = [];
  const running = budget.open();
  await running.grow(60);
  const started = budget.open();
  await started.grow(30);
  const newcomer = budget.open();
  const first = newcomer.grow(20).then(() => order.push('newcomer'));
  const second = started.grow(20).then(() => order.push('started'));
  await tick();
  assert.deepEqual(order, []);
  running.release();
  await Promise.all([first, second]);
  assert.deepEqual(order, ['started', 'newcomer'], 'the request under way goes first though it asked later');
});

test('uploads that hold the whole budget and all wait for more do not deadlock: the youngest fails with 503, the oldest finish', async () => {
  const budget = createByteBudget(40, { share: 40 });
  const leases = [0, 1, 2, 3].map(() => budget.open());
  for (const lease of leases) await lease.grow(10); // each holds 10 of its 40: the budget is spent
  const outcomes = leases.map((lease) =>
    (async () => {
      for (let held = 10; held < 40; held += 10) await lease.grow(10);
      lease.release(); // done: what it holds goes to the others
    })().then(
      () => 'done',
      (error: { code?: string; details?: { httpStatus?: number } }) => `${error.code} ${error.details?.httpStatus}`,
    ),
  );
  assert.deepEqual(await Promise.all(outcomes), [
    'done',
    'STORAGE_TRANSIENT 503',
    'STORAGE_TRANSIENT 503',
    'STORAGE_TRANSIENT 503',
  ]);
  assert.equal(budget.inUse, 0);
});

test('two uploads of one token that fill its share and wait for more: the younger fails, the other token is not touched', async () => {
  const budget = createByteBudget(100, { share: 20 });
  const older = budget.open('a');
  const younger = budget.open('a');
  const other = budget.open('b');
  await older.grow(10);
  await younger.grow(10);
  await other.grow(10);
  const grown = [codeOf(older.grow(10)), codeOf(younger.grow(10)), codeOf(other.grow(10))];
  assert.deepEqual(await Promise.all(grown), ['granted', 'STORAGE_TRANSIENT 503', 'granted']);
  assert.deepEqual([budget.heldBy('a'), budget.heldBy('b')], [20, 20]);
});

test('a wait for a step is bounded: it fails with 503 and the bytes the request held go back', async () => {
  const budget = createByteBudget(100, { share: 100, waitMs: 50 });
  const holder = budget.open();
  await holder.grow(90);
  const waiting = budget.open();
  await waiting.grow(5);
  assert.equal(await codeOf(waiting.grow(10)), 'STORAGE_TRANSIENT 503');
  assert.equal(budget.inUse, 90, 'what the failed request held was released');
  assert.equal(await codeOf(waiting.grow(1)), 'STORAGE_TRANSIENT 503', 'a failed lease grows no more');
  holder.release();
  assert.equal(budget.inUse, 0);
});
