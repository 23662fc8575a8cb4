// The behaviour every Store backend must show. Each backend's test file calls
// describeStoreConformance with a factory returning a fresh, empty store per test.
import { describe, test } from 'node:test';
import { systemClock } from '../core/clock.ts';
import assert from 'node:assert/strict';
import { isAmberError } from '../core/errors.ts';
import type { ErrorCode } from '../core/errors.ts';
import type { ObjectInfo, Store } from '../storage/store.ts';

const encoder = new TextEncoder();

function bytesOf(text: string): Uint8Array {
  return encoder.encode(text);
}

/** Compares bytes without dumping megabytes into a failure message. */
export function assertBytesEqual(actual: Uint8Array, expected: Uint8Array, message = 'bytes differ'): void {
  assert.equal(actual.length, expected.length, `${message}: length`);
  assert.ok(Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength).equals(expected), message);
}

export async function assertAmberCode(promise: Promise<unknown>, code: ErrorCode): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(isAmberError(error, code), `expected AmberError ${code}, got ${String(error)}`);
    return true;
  });
}

export async function listAll(store: Store, prefix: string): Promise<ObjectInfo[]> {
  const found: ObjectInfo[] = [];
  for await (const info of store.list(prefix)) found.push(info);
  return found.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

async function listNames(store: Store, prefix: string): Promise<string[]> {
  return (await listAll(store, prefix)).map((info) => info.name);
}

/** Name and size only: writtenMs is the store's clock, checked on its own. */
function sized({ name, sizeBytes }: ObjectInfo): ObjectInfo {
  return { name, sizeBytes };
}

async function listSized(store: Store, prefix: string): Promise<ObjectInfo[]> {
  return (await listAll(store, prefix)).map(sized);
}

const DAY_MS = 24 * 60 * 60 * 1000;

export function describeStoreConformance(label: string, makeStore: () => Promise<Store>): void {
  describe(`${label} store conformance`, () => {
    test('a new store does not exist until something is put', async () => {
      const store = await makeStore();
      assert.equal(await store.exists(), false);
      assert.deepEqual(await listNames(store, ''), []);
      await store.put('config', bytesOf('c'));
      assert.equal(await store.exists(), true);
    });

    test('put then get, stat and list see the object', async () => {
      const store = await makeStore();
      await store.put('data/ab/abcdef', bytesOf('hello'));
      assertBytesEqual(await store.get('data/ab/abcdef'), bytesOf('hello'));
      assert.deepEqual(sized(await store.stat('data/ab/abcdef')), { name: 'data/ab/abcdef', sizeBytes: 5 });
      assert.deepEqual(await listSized(store, ''), [{ name: 'data/ab/abcdef', sizeBytes: 5 }]);
    });

    test('put refuses to overwrite an existing object and the original bytes stay', async () => {
      const store = await makeStore();
      await store.put('snapshots/one', bytesOf('original'));
      await assertAmberCode(store.put('snapshots/one', bytesOf('original')), 'OBJECT_EXISTS');
      await assertAmberCode(store.put('snapshots/one', bytesOf('replacement!')), 'OBJECT_EXISTS');
      assertBytesEqual(await store.get('snapshots/one'), bytesOf('original'));
      assert.equal((await store.stat('snapshots/one')).sizeBytes, 8);
    });

    test('get with a range returns exactly those bytes', async () => {
      const store = await makeStore();
      await store.put('data/pack', bytesOf('0123456789'));
      assertBytesEqual(await store.get('data/pack', { offset: 2, length: 3 }), bytesOf('234'));
      assertBytesEqual(await store.get('data/pack', { offset: 7, length: 3 }), bytesOf('789'));
      assertBytesEqual(await store.get('data/pack', { offset: 10, length: 0 }), new Uint8Array(0));
      // Into a caller's memory (which a backend may use or not): the same bytes either way.
      const into = new Uint8Array(16).fill(0xee);
      assertBytesEqual(await store.get('data/pack', undefined, into), bytesOf('0123456789'));
      assertBytesEqual(await store.get('data/pack', { offset: 3, length: 4 }, into), bytesOf('3456'));
      assertBytesEqual(await store.get('data/pack', undefined, new Uint8Array(4)), bytesOf('0123456789'));
    });

    test('a range past the end of an object is reported as corruption', async () => {
      const store = await makeStore();
      await store.put('data/pack', bytesOf('0123456789'));
      await assertAmberCode(store.get('data/pack', { offset: 8, length: 3 }), 'OBJECT_CORRUPT');
      await assertAmberCode(store.get('data/pack', { offset: 20, length: 1 }), 'OBJECT_CORRUPT');
    });

    test('get and stat of a missing name fail with OBJECT_NOT_FOUND', async () => {
      const store = await makeStore();
      await assertAmberCode(store.get('index/missing'), 'OBJECT_NOT_FOUND');
      await assertAmberCode(store.stat('index/missing'), 'OBJECT_NOT_FOUND');
      await store.put('index/present', bytesOf('x'));
      await assertAmberCode(store.get('index/missing', { offset: 0, length: 1 }), 'OBJECT_NOT_FOUND');
      await assertAmberCode(store.stat('index'), 'OBJECT_NOT_FOUND');
      await assertAmberCode(store.get('index'), 'OBJECT_NOT_FOUND');
    });

    test('list yields the objects under a prefix, nested or mid-segment', async () => {
      const store = await makeStore();
      const names = ['config', 'data/ab/ab01', 'data/ab/ab02', 'data/ac/ac01', 'data/b0/b001', 'keys/k1', 'snapshots/s1'];
      for (const name of names) await store.put(name, bytesOf(name));
      assert.deepEqual(await listNames(store, ''), names);
      assert.deepEqual(await listNames(store, 'data/'), ['data/ab/ab01', 'data/ab/ab02', 'data/ac/ac01', 'data/b0/b001']);
      assert.deepEqual(await listNames(store, 'data/a'), ['data/ab/ab01', 'data/ab/ab02', 'data/ac/ac01']);
      assert.deepEqual(await listNames(store, 'data/ab/ab0'), ['data/ab/ab01', 'data/ab/ab02']);
      assert.deepEqual(await listNames(store, 'data/ab/ab02'), ['data/ab/ab02']);
      assert.deepEqual(await listNames(store, 'k'), ['keys/k1']);
      assert.deepEqual(await listSized(store, 'keys/'), [{ name: 'keys/k1', sizeBytes: 7 }]);
    });

    test('list of a prefix nothing has yields nothing', async () => {
      const store = await makeStore();
      await store.put('data/ab/ab01', bytesOf('x'));
      for (const prefix of ['index/', 'data/zz', 'data/ab/ab01/', 'data/ab/ab01x', '../', '/', 'data//', 'data/../']) {
        assert.deepEqual(await listNames(store, prefix), [], `prefix ${JSON.stringify(prefix)}`);
      }
    });

    test('invalid names are refused and nothing is written', async () => {
      const store = await makeStore();
      const invalid = ['../x', 'a/../b', '', 'A', '/abs', 'a//b', 'a/', '.hidden', 'a\\b', 'x'.repeat(129), `${'a/'.repeat(256)}a`];
      for (const name of invalid) {
        await assertAmberCode(store.put(name, bytesOf('x')), 'INVALID_OBJECT_NAME');
        await assertAmberCode(store.get(name), 'INVALID_OBJECT_NAME');
        await assertAmberCode(store.stat(name), 'INVALID_OBJECT_NAME');
      }
      assert.deepEqual(await listNames(store, ''), []);
      assert.equal(await store.exists(), false);
    });

    test('concurrent puts of one name: exactly one succeeds, the others find it exists', async () => {
      const store = await makeStore();
      const attempts = Array.from({ length: 8 }, (_, i) => store.put('data/race', bytesOf(`writer ${i}`)));
      const results = await Promise.allSettled(attempts);
      const winners = results.flatMap((result, i) => (result.status === 'fulfilled' ? [i] : []));
      assert.equal(winners.length, 1);
      for (const result of results) {
        if (result.status === 'rejected') assert.ok(isAmberError(result.reason, 'OBJECT_EXISTS'), String(result.reason));
      }
      assertBytesEqual(await store.get('data/race'), bytesOf(`writer ${winners[0]}`));
    });

    test('stored bytes do not change when the caller mutates its buffers', async () => {
      const store = await makeStore();
      const buffer = bytesOf('stable');
      await store.put('keys/k', buffer);
      buffer.fill(0);
      const first = await store.get('keys/k');
      first.fill(0);
      assertBytesEqual(await store.get('keys/k'), bytesOf('stable'));
    });

    test('a Buffer view into a larger buffer that the caller reuses is stored as it was', async () => {
      const store = await makeStore();
      const backing = Buffer.alloc(64, 7);
      await store.put('keys/view', backing.subarray(8, 24));
      backing.fill(1);
      assertBytesEqual(await store.get('keys/view'), Buffer.alloc(16, 7));
    });

    test('a zero-byte object round-trips', async () => {
      const store = await makeStore();
      await store.put('index/empty', new Uint8Array(0));
      assertBytesEqual(await store.get('index/empty'), new Uint8Array(0));
      assert.equal((await store.stat('index/empty')).sizeBytes, 0);
      assert.deepEqual(await listSized(store, 'index/'), [{ name: 'index/empty', sizeBytes: 0 }]);
    });

    test('a 20 MiB object round-trips', async () => {
      const store = await makeStore();
      const big = new Uint8Array(20 * 1024 * 1024);
      for (let i = 0; i < big.length; i += 4096) big[i] = (i >>> 12) & 0xff;
      big[big.length - 1] = 0xee;
      await store.put('data/big', big);
      assert.equal((await store.stat('data/big')).sizeBytes, big.length);
      assertBytesEqual(await store.get('data/big'), big);
      assertBytesEqual(await store.get('data/big', { offset: big.length - 4096, length: 4096 }), big.subarray(big.length - 4096));
    });

    test('enforcement says who enforces retention', async () => {
      const store = await makeStore();
      const enforcement = store.enforcement();
      assert.ok(['storage', 'server', 'client'].includes(enforcement.enforcer));
      assert.ok(Array.isArray(enforcement.holdsAgainst));
      assert.equal(typeof enforcement.notes, 'string');
    });

    test('stat and list say when the store received an object, by its clock, where it reports it', async () => {
      const store = await makeStore();
      const before = systemClock.nowMs();
      await store.put('data/ab/written', bytesOf('x'));
      const [stated, [listed]] = [await store.stat('data/ab/written'), await listAll(store, 'data/')];
      for (const info of [stated, listed]) {
        if (info.writtenMs === undefined) continue;
        assert.equal(typeof info.writtenMs, 'number');
        // Filesystem timestamps may be coarser than the system clock, and clocks differ a little.
        assert.ok(Math.abs(info.writtenMs - before) < 60_000, `writtenMs ${info.writtenMs} is not close to ${before}`);
      }
      assert.equal(stated.writtenMs, listed.writtenMs);
    });

    test('protect, protection and deleteExpired refuse invalid names', async () => {
      const store = await makeStore();
      const retention = { untilMs: systemClock.nowMs() + DAY_MS, mode: 'governance' } as const;
      for (const name of ['../x', 'A', '', 'a//b']) {
        await assertAmberCode(store.protect([name], retention), 'INVALID_OBJECT_NAME');
        await assertAmberCode(store.protection([name]), 'INVALID_OBJECT_NAME');
        await assertAmberCode(store.deleteExpired(name), 'INVALID_OBJECT_NAME');
      }
    });

    test('protect of a missing name fails with OBJECT_NOT_FOUND and protects none of the others', async () => {
      const store = await makeStore();
      await store.put('snapshots/present', bytesOf('p'));
      const retention = { untilMs: systemClock.nowMs() + DAY_MS, mode: 'governance' } as const;
      await assertAmberCode(store.protect(['snapshots/present', 'snapshots/missing'], retention), 'OBJECT_NOT_FOUND');
      await assertAmberCode(store.protect(['index/missing'], retention), 'OBJECT_NOT_FOUND');
      const [held] = await store.protection(['snapshots/present']);
      assert.equal(held.untilMs, undefined);
      assert.equal(held.locked, false);
      // Nothing asked for, nothing to check.
      await store.protect([], retention);
      assert.deepEqual(await store.protection([]), []);
    });

    test('protection names each object, in the order asked, and fails for a missing one', async () => {
      const store = await makeStore();
      const names = ['data/b0/b001', 'config', 'data/ab/ab01'];
      for (const name of names) await store.put(name, bytesOf(name));
      await store.protect([names[0]], { untilMs: systemClock.nowMs() + DAY_MS, mode: 'governance' });
      const held = await store.protection(names);
      assert.deepEqual(held.map((entry) => entry.name), names);
      for (const entry of held) assert.equal(typeof entry.locked, 'boolean');
      assert.equal(held[1].locked, false, 'an object never protected is not locked');
      assert.equal(held[1].untilMs, undefined);
      await assertAmberCode(store.protection(['config', 'keys/missing']), 'OBJECT_NOT_FOUND');
    });

    test('protect never lowers a date or weakens a mode', async () => {
      const store = await makeStore();
      await store.put('data/ab/held', bytesOf('held'));
      const later = systemClock.nowMs() + 30 * DAY_MS;
      await store.protect(['data/ab/held'], { untilMs: later, mode: 'compliance' });
      const [first] = await store.protection(['data/ab/held']);
      await store.protect(['data/ab/held'], { untilMs: systemClock.nowMs() + DAY_MS, mode: 'governance' });
      const [second] = await store.protection(['data/ab/held']);
      // A store that keeps dates keeps the later one; one that does not (fs) stays as locked as it was.
      if (first.untilMs !== undefined) {
        // A store may keep dates to its own precision (S3: the second), rounded up, never down.
        assert.ok(first.untilMs >= later && first.untilMs - later < 1000, `${first.untilMs} for ${later}`);
        assert.equal(second.untilMs, first.untilMs);
        assert.equal(second.mode, 'compliance');
      }
      assert.equal(second.locked, first.locked);
      assertBytesEqual(await store.get('data/ab/held'), bytesOf('held'));
    });

    test('deleteExpired of a missing name fails with OBJECT_NOT_FOUND', async () => {
      const store = await makeStore();
      await assertAmberCode(store.deleteExpired('data/ab/missing'), 'OBJECT_NOT_FOUND');
      await store.put('data/ab/present', bytesOf('p'));
      await assertAmberCode(store.deleteExpired('data/ab/missing'), 'OBJECT_NOT_FOUND');
      await assertAmberCode(store.deleteExpired('data/ab'), 'OBJECT_NOT_FOUND');
    });

    test('deleteExpired removes an unprotected object and nothing else; the prefix takes new objects', async () => {
      const store = await makeStore();
      await store.put('locks/l1', bytesOf('lock'));
      await store.put('locks/l2', bytesOf('other'));
      await store.get('locks/l1', { offset: 0, length: 2 });
      await store.deleteExpired('locks/l1');
      await assertAmberCode(store.get('locks/l1'), 'OBJECT_NOT_FOUND');
      await assertAmberCode(store.get('locks/l1', { offset: 0, length: 2 }), 'OBJECT_NOT_FOUND');
      await assertAmberCode(store.stat('locks/l1'), 'OBJECT_NOT_FOUND');
      assert.deepEqual(await listNames(store, ''), ['locks/l2']);
      await assertAmberCode(store.deleteExpired('locks/l1'), 'OBJECT_NOT_FOUND');
      await store.put('locks/l3', bytesOf('new'));
      assert.deepEqual(await listNames(store, 'locks/'), ['locks/l2', 'locks/l3']);
    });

    test('deleteExpired removes an object whose retention has passed, and puts beside it still work', async () => {
      const store = await makeStore();
      await store.put('data/ab/old', bytesOf('old'));
      await store.put('data/ab/kept', bytesOf('kept'));
      await store.protect(['data/ab/old', 'data/ab/kept'], { untilMs: systemClock.nowMs() - DAY_MS, mode: 'governance' });
      await store.deleteExpired('data/ab/old');
      await assertAmberCode(store.get('data/ab/old'), 'OBJECT_NOT_FOUND');
      await store.put('data/ab/new', bytesOf('new'));
      await store.put('data/ac/new', bytesOf('new'));
      assert.deepEqual(await listNames(store, 'data/'), ['data/ab/kept', 'data/ab/new', 'data/ac/new']);
      assertBytesEqual(await store.get('data/ab/kept'), bytesOf('kept'));
    });
  });
}
