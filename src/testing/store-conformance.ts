// The behaviour every Store backend must show. Each backend's test file calls
// describeStoreConformance with a factory returning a fresh, empty store per test; a backend that
// checks what it stores (the vault) returns a StoreSubject instead, which gives the objects it
// accepts in place of the suite's own and does what a caller must do before a protect or a delete.
import { describe, test } from 'node:test';
import { systemClock } from '../core/clock.ts';
import assert from 'node:assert/strict';
import { isAmberError } from '../core/errors.ts';
import type { ErrorCode } from '../core/errors.ts';
import type { ObjectInfo, ObjectRetention, PutOptions, Store } from '../storage/store.ts';

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

export interface TestObject {
  name: string;
  bytes: Uint8Array;
}

/** What a backend stores in place of an object the suite asks for. */
export interface StandIn extends TestObject {
  /**
   * Set when the stand-in is not the suite's own name and bytes: the code the backend refuses those
   * with (the vault: INVALID_OBJECT_NAME for a name outside the repository format). The suite checks
   * that refusal, and that it stored nothing, before it puts the stand-in.
   */
  refusedWith?: ErrorCode;
}

/** A store under test and what its backend needs beyond the Store contract to be tested by it. */
export interface StoreSubject {
  store: Store;
  /**
   * An object the backend accepts in place of `name` holding `bytes` (default: exactly those), of
   * the same kind where the backend has kinds. Asked again for a name it gave a stand-in for, it
   * gives the same name (with bytes for it that are as different as the asked-for ones are).
   */
  standIn?(name: string, bytes: Uint8Array): Promise<StandIn>;
  /** Objects sharing one name, one per content, all different (default: `name` holding each content). */
  rivals?(name: string, contents: Uint8Array[]): Promise<StandIn[]>;
  /** Objects the backend stored for its own reasons so far (the vault: the repository config, grants, condemn notices): listings show them too. */
  ownObjects?(): TestObject[];
  /** What a caller must do before the store raises the retention of these objects (the vault: write a grant). */
  beforeProtect?(names: string[], retention: ObjectRetention): Promise<void>;
  /** What a caller must do before deleteExpired of these objects (the vault: a condemn notice, refused by the vault itself for objects still retained). */
  beforeDelete?(names: string[]): Promise<void>;
  /**
   * Moves the store's clock past the retention it gives objects nobody protected (the vault: the
   * policy's default retention from when it received them). Absent: such objects have none.
   */
  ageUnprotected?(): Promise<void>;
  /** Whether the store refuses deleteExpired of an object whose date has not passed; absent, the suite asks protection() (whether it reports the date). */
  keepsDates?: boolean;
  /** Places a hold on the objects, which the store enforces whatever their dates (the vault: an owner-signed hold record). */
  hold?(names: string[]): Promise<void>;
  /**
   * A backend that stores no empty object (the vault: no Amber object is empty) refuses one with
   * `refusedWith`; `plant` places one behind its checks, so that reading it is checked all the same.
   */
  emptyObjects?: { refusedWith: ErrorCode; plant(name: string): Promise<void> };
}

export interface ConformanceOptions {
  /** The subjects give `hold` (otherwise the hold test is skipped, saying so). */
  holds?: boolean;
}

/** One test's store and what the suite has stored in it, with the backend's own objects, for listings. */
interface Run {
  subject: StoreSubject;
  store: Store;
  /** The stand-in for `name` holding `bytes`, after checking that the backend refuses the suite's own where it gives another. */
  object(name: string, bytes: Uint8Array): Promise<StandIn>;
  /** Puts an object and remembers it. */
  put(object: TestObject, options?: PutOptions): Promise<TestObject>;
  /** object() then put(). */
  add(name: string, bytes: Uint8Array): Promise<TestObject>;
  remember(object: TestObject): void;
  forget(name: string): void;
  /** What a listing of `prefix` must show: what the suite stored there and the backend's own objects. */
  expected(prefix: string): ObjectInfo[];
  /** Every name the store should hold. */
  names(): string[];
  protect(names: string[], retention: ObjectRetention): Promise<void>;
  deleteExpired(name: string): Promise<void>;
}

const sameBytes = (a: Uint8Array, b: Uint8Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);

async function begin(make: () => Promise<Store | StoreSubject>): Promise<Run> {
  const made = await make();
  const subject: StoreSubject = 'put' in made ? { store: made } : made;
  const { store } = subject;
  const stored = new Map<string, number>();
  const all = () => {
    const sizes = new Map(stored);
    for (const own of subject.ownObjects?.() ?? []) sizes.set(own.name, own.bytes.length);
    return [...sizes]
      .map(([name, sizeBytes]) => ({ name, sizeBytes }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  };
  const checkRefusal = async (name: string, bytes: Uint8Array, standIn: StandIn) => {
    if (standIn.name === name && sameBytes(standIn.bytes, bytes)) {
      assert.equal(standIn.refusedWith, undefined, `${name}: a stand-in that is the object itself is not refused`);
      return;
    }
    assert.ok(standIn.refusedWith, `${name}: a backend gives another object only in place of one it refuses`);
    await assertAmberCode(store.put(name, bytes), standIn.refusedWith);
    if (standIn.refusedWith !== 'OBJECT_EXISTS') await assertAmberCode(store.stat(name), 'OBJECT_NOT_FOUND');
  };
  const run: Run = {
    subject,
    store,
    async object(name, bytes) {
      const standIn = subject.standIn ? await subject.standIn(name, bytes) : { name, bytes };
      await checkRefusal(name, bytes, standIn);
      return standIn;
    },
    async put(object, options) {
      await store.put(object.name, object.bytes, options);
      run.remember(object);
      return object;
    },
    async add(name, bytes) {
      return run.put(await run.object(name, bytes));
    },
    remember: (object) => void stored.set(object.name, object.bytes.length),
    forget: (name) => void stored.delete(name),
    expected: (prefix) => all().filter(({ name }) => name.startsWith(prefix)),
    names: () => all().map(({ name }) => name),
    async protect(names, retention) {
      await subject.beforeProtect?.(names, retention);
      await store.protect(names, retention);
    },
    async deleteExpired(name) {
      await subject.beforeDelete?.([name]);
      await store.deleteExpired(name);
    },
  };
  return run;
}

/** Prefixes that cut the names everywhere that matters: '', a first letter, each directory, one letter into each segment, one letter short of each name, each name. */
function prefixesOf(names: string[]): string[] {
  const prefixes = new Set<string>(['']);
  for (const name of names) {
    prefixes.add(name.slice(0, 1));
    for (let at = name.indexOf('/'); at >= 0; at = name.indexOf('/', at + 1)) {
      prefixes.add(name.slice(0, at + 1));
      prefixes.add(name.slice(0, at + 2));
    }
    prefixes.add(name.slice(0, -1));
    prefixes.add(name);
  }
  return [...prefixes].sort();
}

/** The directory part of a name, with its slash ('' for a top-level name). */
const directoryOf = (name: string) => name.slice(0, name.lastIndexOf('/') + 1);

export function describeStoreConformance(
  label: string,
  makeStore: () => Promise<Store | StoreSubject>,
  options: ConformanceOptions = {},
): void {
  describe(`${label} store conformance`, () => {
    test('a new store does not exist until something is put', async () => {
      const run = await begin(makeStore);
      const { store } = run;
      assert.equal(await store.exists(), false);
      assert.deepEqual(await listNames(store, ''), []);
      await run.add('config', bytesOf('c'));
      assert.equal(await store.exists(), true);
    });

    test('put then get, stat and list see the object', async () => {
      const run = await begin(makeStore);
      const { store } = run;
      const object = await run.add('data/ab/abcdef', bytesOf('hello'));
      assertBytesEqual(await store.get(object.name), object.bytes);
      assert.deepEqual(sized(await store.stat(object.name)), { name: object.name, sizeBytes: object.bytes.length });
      assert.deepEqual(await listSized(store, ''), run.expected(''));
      assert.ok(run.expected('').some(({ name }) => name === object.name));
    });

    test('put refuses to overwrite an existing object and the original bytes stay', async () => {
      const run = await begin(makeStore);
      const { store } = run;
      const original = await run.add('snapshots/one', bytesOf('original'));
      await assertAmberCode(store.put(original.name, original.bytes), 'OBJECT_EXISTS');
      const replacement = await run.object('snapshots/one', bytesOf('replacement!'));
      assert.equal(replacement.name, original.name);
      assert.ok(!sameBytes(replacement.bytes, original.bytes), 'the replacement differs');
      await assertAmberCode(store.put(replacement.name, replacement.bytes), 'OBJECT_EXISTS');
      assertBytesEqual(await store.get(original.name), original.bytes);
      assert.equal((await store.stat(original.name)).sizeBytes, original.bytes.length);
    });

    test('get with a range returns exactly those bytes', async () => {
      const run = await begin(makeStore);
      const { store } = run;
      const { name, bytes } = await run.add('data/pack', bytesOf('0123456789'));
      const size = bytes.length;
      const part = (offset: number, length: number) => bytes.subarray(offset, offset + length);
      assertBytesEqual(await store.get(name, { offset: 2, length: 3 }), part(2, 3));
      assertBytesEqual(await store.get(name, { offset: size - 3, length: 3 }), part(size - 3, 3));
      assertBytesEqual(await store.get(name, { offset: size, length: 0 }), new Uint8Array(0));
      // Into a caller's memory (which a backend may use or not): the same bytes either way.
      const into = new Uint8Array(size + 6).fill(0xee);
      assertBytesEqual(await store.get(name, undefined, into), bytes);
      assertBytesEqual(await store.get(name, { offset: 3, length: 4 }, into), part(3, 4));
      assertBytesEqual(await store.get(name, undefined, new Uint8Array(4)), bytes);
    });

    test('a range past the end of an object is reported as corruption', async () => {
      const run = await begin(makeStore);
      const { store } = run;
      const { name, bytes } = await run.add('data/pack', bytesOf('0123456789'));
      await assertAmberCode(store.get(name, { offset: bytes.length - 2, length: 3 }), 'OBJECT_CORRUPT');
      await assertAmberCode(store.get(name, { offset: bytes.length + 10, length: 1 }), 'OBJECT_CORRUPT');
    });

    test('get and stat of a missing name fail with OBJECT_NOT_FOUND', async () => {
      const run = await begin(makeStore);
      const { store } = run;
      await assertAmberCode(store.get('index/missing'), 'OBJECT_NOT_FOUND');
      await assertAmberCode(store.stat('index/missing'), 'OBJECT_NOT_FOUND');
      await run.add('index/present', bytesOf('x'));
      await assertAmberCode(store.get('index/missing', { offset: 0, length: 1 }), 'OBJECT_NOT_FOUND');
      await assertAmberCode(store.stat('index'), 'OBJECT_NOT_FOUND');
      await assertAmberCode(store.get('index'), 'OBJECT_NOT_FOUND');
    });

    test('list yields the objects under a prefix, nested or mid-segment', async () => {
      const run = await begin(makeStore);
      const { store } = run;
      const names = [
        'config',
        'data/ab/ab01',
        'data/ab/ab02',
        'data/ac/ac01',
        'data/b0/b001',
        'keys/k1',
        'snapshots/s1',
      ];
      for (const name of names) await run.add(name, bytesOf(name));
      assert.ok(run.names().length >= names.length);
      for (const prefix of prefixesOf(run.names())) {
        assert.deepEqual(await listSized(store, prefix), run.expected(prefix), `prefix ${JSON.stringify(prefix)}`);
      }
    });

    test('list of a prefix nothing has yields nothing', async () => {
      const run = await begin(makeStore);
      const { store } = run;
      const object = await run.add('data/ab/ab01', bytesOf('x'));
      // Including prefixes no valid name can start with: nothing is under them either.
      const prefixes = [
        'index/',
        'data/zz',
        'data/ab/ab01/',
        'data/ab/ab01x',
        `${object.name}/`,
        `${object.name}x`,
        '../',
        '/',
        'data//',
        'data/../',
        'A',
        'data/AB',
        'a\\b',
        '%2e',
        'data/ab/ab01?x',
      ];
      for (const prefix of prefixes) {
        assert.deepEqual(await listNames(store, prefix), [], `prefix ${JSON.stringify(prefix)}`);
      }
    });

    test('invalid names are refused and nothing is written', async () => {
      const { store } = await begin(makeStore);
      const invalid = [
        '../x',
        'a/../b',
        '',
        'A',
        '/abs',
        'a//b',
        'a/',
        '.hidden',
        'a\\b',
        'x'.repeat(129),
        `${'a/'.repeat(256)}a`,
      ];
      for (const name of invalid) {
        await assertAmberCode(store.put(name, bytesOf('x')), 'INVALID_OBJECT_NAME');
        await assertAmberCode(store.get(name), 'INVALID_OBJECT_NAME');
        await assertAmberCode(store.stat(name), 'INVALID_OBJECT_NAME');
      }
      assert.deepEqual(await listNames(store, ''), []);
      assert.equal(await store.exists(), false);
    });

    test('concurrent puts of one name: exactly one succeeds, the others find it exists', async () => {
      const run = await begin(makeStore);
      const { store, subject } = run;
      const contents = Array.from({ length: 8 }, (_, i) => bytesOf(`writer ${i}`));
      const rivals: StandIn[] = subject.rivals
        ? await subject.rivals('data/race', contents)
        : contents.map((bytes) => ({ name: 'data/race', bytes }));
      assert.equal(rivals.length, contents.length);
      assert.equal(new Set(rivals.map(({ name }) => name)).size, 1, 'one name');
      assert.equal(
        new Set(rivals.map(({ bytes }) => Buffer.from(bytes).toString('hex'))).size,
        rivals.length,
        'different bytes each',
      );
      if (rivals[0].refusedWith) await assertAmberCode(store.put('data/race', contents[0]), rivals[0].refusedWith);
      const results = await Promise.allSettled(rivals.map(({ name, bytes }) => store.put(name, bytes)));
      const winners = results.flatMap((result, i) => (result.status === 'fulfilled' ? [i] : []));
      assert.equal(winners.length, 1);
      for (const result of results) {
        if (result.status === 'rejected')
          assert.ok(isAmberError(result.reason, 'OBJECT_EXISTS'), String(result.reason));
      }
      assertBytesEqual(await store.get(rivals[0].name), rivals[winners[0]].bytes);
    });

    test('stored bytes do not change when the caller mutates its buffers', async () => {
      const run = await begin(makeStore);
      const { store } = run;
      const object = await run.object('keys/k', bytesOf('stable'));
      const kept = Uint8Array.from(object.bytes);
      await run.put(object);
      object.bytes.fill(0);
      const first = await store.get(object.name);
      first.fill(0);
      assertBytesEqual(await store.get(object.name), kept);
    });

    test('a Buffer view into a larger buffer that the caller reuses is stored as it was', async () => {
      const run = await begin(makeStore);
      const { store } = run;
      const object = await run.object('keys/view', Buffer.alloc(16, 7));
      const kept = Uint8Array.from(object.bytes);
      const backing = Buffer.alloc(object.bytes.length + 48, 7);
      backing.set(object.bytes, 8);
      await run.put({ name: object.name, bytes: backing.subarray(8, 8 + object.bytes.length) });
      backing.fill(1);
      assertBytesEqual(await store.get(object.name), kept);
    });

    test('a zero-byte object round-trips', async () => {
      const run = await begin(makeStore);
      const { store, subject } = run;
      const empty = await run.object('index/empty', new Uint8Array(0));
      assert.equal(empty.bytes.length, 0, 'an empty object stands in for an empty one');
      if (subject.emptyObjects) {
        // Refused through the backend, and read back all the same once it is there.
        await assertAmberCode(store.put(empty.name, empty.bytes), subject.emptyObjects.refusedWith);
        await assertAmberCode(store.stat(empty.name), 'OBJECT_NOT_FOUND');
        await subject.emptyObjects.plant(empty.name);
        run.remember(empty);
      } else {
        await run.put(empty);
      }
      assertBytesEqual(await store.get(empty.name), new Uint8Array(0));
      assert.equal((await store.stat(empty.name)).sizeBytes, 0);
      assert.deepEqual(await listSized(store, directoryOf(empty.name)), run.expected(directoryOf(empty.name)));
      assert.ok(
        run.expected(directoryOf(empty.name)).some(({ name, sizeBytes }) => name === empty.name && sizeBytes === 0),
      );
    });

    test('a 20 MiB object round-trips', async () => {
      const run = await begin(makeStore);
      const { store } = run;
      const big = new Uint8Array(20 * 1024 * 1024);
      for (let i = 0; i < big.length; i += 4096) big[i] = (i >>> 12) & 0xff;
      big[big.length - 1] = 0xee;
      const { name, bytes } = await run.add('data/big', big);
      assert.ok(bytes.length >= big.length);
      assert.equal((await store.stat(name)).sizeBytes, bytes.length);
      assertBytesEqual(await store.get(name), bytes);
      assertBytesEqual(
        await store.get(name, { offset: bytes.length - 4096, length: 4096 }),
        bytes.subarray(bytes.length - 4096),
      );
    });

    test('enforcement says who enforces retention', async () => {
      const { store } = await begin(makeStore);
      const enforcement = store.enforcement();
      assert.ok(['storage', 'server', 'client'].includes(enforcement.enforcer));
      assert.ok(Array.isArray(enforcement.holdsAgainst));
      assert.equal(typeof enforcement.notes, 'string');
    });

    test('stat and list say when the store received an object, by its clock, where it reports it', async () => {
      const run = await begin(makeStore);
      const { store } = run;
      const before = systemClock.nowMs();
      const object = await run.add('data/ab/written', bytesOf('x'));
      const stated = await store.stat(object.name);
      const listed = (await listAll(store, directoryOf(object.name))).find(({ name }) => name === object.name);
      assert.ok(listed, 'listed');
      for (const info of [stated, listed]) {
        if (info.writtenMs === undefined) continue;
        assert.equal(typeof info.writtenMs, 'number');
        // Filesystem timestamps may be coarser than the system clock, and clocks differ a little.
        assert.ok(Math.abs(info.writtenMs - before) < 60_000, `writtenMs ${info.writtenMs} is not close to ${before}`);
      }
      assert.equal(stated.writtenMs, listed.writtenMs);
    });

    test("a store run by a server reads the server's clock, where it has one", async () => {
      const { store } = await begin(makeStore);
      if (!store.serverTimeMs) return;
      const serverMs = await store.serverTimeMs();
      assert.ok(serverMs !== undefined, 'a server that answers says its time');
      // HTTP dates are whole seconds.
      assert.ok(Math.abs(serverMs - systemClock.nowMs()) < 60_000, `server time ${serverMs}`);
    });

    test('protect, protection and deleteExpired refuse invalid names', async () => {
      const { store } = await begin(makeStore);
      const retention = { untilMs: systemClock.nowMs() + DAY_MS, mode: 'governance' } as const;
      for (const name of ['../x', 'A', '', 'a//b']) {
        await assertAmberCode(store.protect([name], retention), 'INVALID_OBJECT_NAME');
        await assertAmberCode(store.protection([name]), 'INVALID_OBJECT_NAME');
        await assertAmberCode(store.deleteExpired(name), 'INVALID_OBJECT_NAME');
      }
    });

    test('protect of a missing name fails with OBJECT_NOT_FOUND and protects none of the others', async () => {
      const run = await begin(makeStore);
      const { store } = run;
      const present = await run.add('snapshots/present', bytesOf('p'));
      const retention = { untilMs: systemClock.nowMs() + DAY_MS, mode: 'governance' } as const;
      await assertAmberCode(run.protect([present.name, 'snapshots/missing'], retention), 'OBJECT_NOT_FOUND');
      await assertAmberCode(run.protect(['index/missing'], retention), 'OBJECT_NOT_FOUND');
      const [held] = await store.protection([present.name]);
      assert.equal(held.untilMs, undefined);
      assert.equal(held.locked, false);
      // Nothing asked for, nothing to check.
      await run.protect([], retention);
      assert.deepEqual(await store.protection([]), []);
    });

    test('protection names each object, in the order asked, and fails for a missing one', async () => {
      const run = await begin(makeStore);
      const { store } = run;
      const names: string[] = [];
      for (const name of ['data/b0/b001', 'config', 'data/ab/ab01'])
        names.push((await run.add(name, bytesOf(name))).name);
      await run.protect([names[0]], { untilMs: systemClock.nowMs() + DAY_MS, mode: 'governance' });
      const held = await store.protection(names);
      assert.deepEqual(
        held.map((entry) => entry.name),
        names,
      );
      for (const entry of held) assert.equal(typeof entry.locked, 'boolean');
      assert.equal(held[1].locked, false, 'an object never protected is not locked');
      assert.equal(held[1].untilMs, undefined);
      await assertAmberCode(store.protection([names[1], 'keys/missing']), 'OBJECT_NOT_FOUND');
    });

    test('protect never lowers a date or weakens a mode', async () => {
      const run = await begin(makeStore);
      const { store } = run;
      const object = await run.add('data/ab/held', bytesOf('held'));
      const later = systemClock.nowMs() + 30 * DAY_MS;
      await run.protect([object.name], { untilMs: later, mode: 'compliance' });
      const [first] = await store.protection([object.name]);
      await run.protect([object.name], { untilMs: systemClock.nowMs() + DAY_MS, mode: 'governance' });
      const [second] = await store.protection([object.name]);
      // A store that keeps dates keeps the later one; one that does not (fs) stays as locked as it was.
      if (first.untilMs !== undefined) {
        // A store may keep dates to its own precision (S3: the second), rounded up, never down.
        assert.ok(first.untilMs >= later && first.untilMs - later < 1000, `${first.untilMs} for ${later}`);
        assert.equal(second.untilMs, first.untilMs);
        assert.equal(second.mode, 'compliance');
      }
      assert.equal(second.locked, first.locked);
      assertBytesEqual(await store.get(object.name), object.bytes);
    });

    test('deleteExpired of a missing name fails with OBJECT_NOT_FOUND', async () => {
      const run = await begin(makeStore);
      await assertAmberCode(run.deleteExpired('data/ab/missing'), 'OBJECT_NOT_FOUND');
      await run.add('data/ab/present', bytesOf('p'));
      await assertAmberCode(run.deleteExpired('data/ab/missing'), 'OBJECT_NOT_FOUND');
      await assertAmberCode(run.deleteExpired('data/ab'), 'OBJECT_NOT_FOUND');
    });

    test('deleteExpired removes an unprotected object and nothing else; the prefix takes new objects', async () => {
      const run = await begin(makeStore);
      const { store, subject } = run;
      const first = await run.add('locks/l1', bytesOf('lock'));
      await run.add('locks/l2', bytesOf('other'));
      await store.get(first.name, { offset: 0, length: 2 });
      await subject.ageUnprotected?.();
      await run.deleteExpired(first.name);
      run.forget(first.name);
      await assertAmberCode(store.get(first.name), 'OBJECT_NOT_FOUND');
      await assertAmberCode(store.get(first.name, { offset: 0, length: 2 }), 'OBJECT_NOT_FOUND');
      await assertAmberCode(store.stat(first.name), 'OBJECT_NOT_FOUND');
      assert.deepEqual(await listSized(store, ''), run.expected(''));
      await assertAmberCode(run.deleteExpired(first.name), 'OBJECT_NOT_FOUND');
      const third = await run.add('locks/l3', bytesOf('new'));
      assert.deepEqual(await listSized(store, directoryOf(third.name)), run.expected(directoryOf(third.name)));
      assert.equal(run.expected(directoryOf(third.name)).length, 2);
    });

    test('deleteExpired removes an object whose retention has passed, and puts beside it still work', async () => {
      const run = await begin(makeStore);
      const { store } = run;
      const old = await run.add('data/ab/old', bytesOf('old'));
      const kept = await run.add('data/ab/kept', bytesOf('kept'));
      await run.protect([old.name, kept.name], { untilMs: systemClock.nowMs() - DAY_MS, mode: 'governance' });
      await run.deleteExpired(old.name);
      run.forget(old.name);
      await assertAmberCode(store.get(old.name), 'OBJECT_NOT_FOUND');
      await run.add('data/ab/new', bytesOf('new'));
      await run.add('data/ac/new', bytesOf('new'));
      assert.deepEqual(await listSized(store, 'data/'), run.expected('data/'));
      assert.equal(run.expected('data/').length, 3);
      assertBytesEqual(await store.get(kept.name), kept.bytes);
    });

    test('deleteExpired keeps an object its date still retains where the store keeps dates, and removes it where the caller judges them', async () => {
      const run = await begin(makeStore);
      const { store, subject } = run;
      const object = await run.add('snapshots/retained', bytesOf('retained'));
      await run.protect([object.name], { untilMs: systemClock.nowMs() + DAY_MS, mode: 'governance' });
      const [held] = await store.protection([object.name]);
      if (subject.keepsDates ?? held.untilMs !== undefined) {
        await assertAmberCode(run.deleteExpired(object.name), 'RETENTION_ACTIVE');
        assertBytesEqual(await store.get(object.name), object.bytes);
      } else {
        // fs: the dates are the repository's grants, which the caller (prune) has checked.
        await run.deleteExpired(object.name);
        await assertAmberCode(store.stat(object.name), 'OBJECT_NOT_FOUND');
      }
    });

    test('a put with a retention date holds the object from the start where the store keeps dates', async () => {
      const run = await begin(makeStore);
      const { store, subject } = run;
      const untilMs = systemClock.nowMs() + DAY_MS;
      const object = await run.put(await run.object('snapshots/born-held', bytesOf('born held')), {
        retainUntilMs: untilMs,
        mode: 'governance',
      });
      const [held] = await store.protection([object.name]);
      if (held.untilMs !== undefined) {
        assert.ok(held.untilMs >= untilMs && held.untilMs - untilMs < 1000, `${held.untilMs} for ${untilMs}`);
        assert.equal(held.mode, 'governance');
        assert.equal(held.locked, true);
      }
      if (subject.keepsDates ?? held.untilMs !== undefined) {
        await assertAmberCode(run.deleteExpired(object.name), 'RETENTION_ACTIVE');
        assertBytesEqual(await store.get(object.name), object.bytes);
      }
    });

    test('a hold keeps an object whose date has passed', {
      skip: options.holds
        ? false
        : 'the backend gives the suite no way to place a hold (memory and fs keep none of their own; S3 legal holds are tested in s3-store.test.ts)',
    }, async () => {
      const run = await begin(makeStore);
      const { store, subject } = run;
      const object = await run.add('snapshots/held', bytesOf('held'));
      await run.protect([object.name], { untilMs: systemClock.nowMs() - DAY_MS, mode: 'governance' });
      await subject.hold!([object.name]);
      const [held] = await store.protection([object.name]);
      if (held.legalHold !== undefined) assert.equal(held.legalHold, true);
      await assertAmberCode(run.deleteExpired(object.name), 'RETENTION_ACTIVE');
      assertBytesEqual(await store.get(object.name), object.bytes);
    });
  });
}
