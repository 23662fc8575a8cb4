// The http store through the shared store conformance suite, against a real vault started in this
// process on 127.0.0.1 (one per test, each with its own data directory and clock, all stopped after).
//
// The vault is no blank key-value store, and the suite meets it on its own terms:
// - It stores only objects of the repository format: the exact name layout, bytes hashing to their
//   name, records signed by a key with the authority for their kind, packs whose trailer verifies.
//   Each suite object is stood in for by a valid one of its kind, signed by an owner key made here
//   (a pack holding the suite's bytes as its one blob, an index or snapshot record holding them as its
//   payload, the repository config), and the suite checks that the vault refuses its own name and
//   bytes first, with the code it answers.
// - Its tokens have roles. Each request goes out with the token of the role that makes it in an Amber
//   deployment: the config and key-like records an admin's (init), packs, index and snapshots a
//   writer's (backup), reads a reader's, protect a writer's, deleteExpired a maintainer's (prune).
//   Each of those clients is an unchanged http store; the routing below only picks one.
// - It judges retention by its own records and clock: protect raises packs only to what a grant gives
//   (the suite's protect is preceded by one, as backup writes it), it deletes only what an owner-signed
//   condemn notice named once its grace has passed (so each deleteExpired is preceded by one, as prune
//   writes it), and objects nobody protected keep the policy's default retention by the vault's clock
//   (which this fixture can move forward).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { systemClock } from '../../core/clock.ts';
import { isAmberError, type ErrorCode } from '../../core/errors.ts';
import { generateBoxKeyPair, generateSigningKeyPair, randomKey, sha256Hex } from '../../crypto/index.ts';
import { DEFAULT_POLICY } from '../../governance/policy.ts';
import { encodeConfig, newConfig } from '../../repo/config.ts';
import { signerOf } from '../../repo/keys.ts';
import type { ObjectKind } from '../../repo/object-header.ts';
import { createPackBuilder, newPackKey } from '../../repo/pack.ts';
import { encodeSignedRecord, jsonBytes } from '../../repo/signed-record.ts';
import {
  describeStoreConformance,
  type StandIn,
  type StoreSubject,
  type TestObject,
} from '../../testing/store-conformance.ts';
import { makeTempDir, removeTree } from '../../testing/repo-fixture.ts';
import { startVault, type Vault } from '../../vault/server.ts';
import { createToken, type Role } from '../../vault/tokens.ts';
import { createFsStore } from '../fs/fs-store.ts';
import type { ObjectRetention, Store } from '../store.ts';
import { createHttpStore } from './http-store.ts';

const DAY_MS = 86_400_000;
const REPO = 'suite';

const vaults: Vault[] = [];
const dirs: string[] = [];
after(async () => {
  await Promise.all(vaults.map((vault) => vault.close()));
  await Promise.all(dirs.map((dir) => removeTree(dir)));
});

/** Each request with the token of the role that makes it in a deployment; every client an unchanged http store. */
function routedStore(clients: Record<'admin' | 'writer' | 'reader' | 'maintainer', Store>): Store {
  const { admin, writer, reader, maintainer } = clients;
  // What only an admin writes (init, key and policy administration, holds); everything else a backup client's.
  const putter = (name: string) =>
    /^(config$|keys\/|epochs\/|revocations\/|witnesses\/|policies\/|holds\/|checkpoints\/)/.test(name) ? admin : writer;
  return {
    location: writer.location,
    readAheadBytes: writer.readAheadBytes,
    parallelWrites: writer.parallelWrites,
    put: (name, bytes, options) => putter(name).put(name, bytes, options),
    get: (name, range, into) => reader.get(name, range, into),
    stat: (name) => reader.stat(name),
    list: (prefix) => reader.list(prefix),
    exists: () => reader.exists(),
    enforcement: () => writer.enforcement(),
    protect: (names, retention) => writer.protect(names, retention),
    protection: (names) => reader.protection(names),
    deleteExpired: (name) => maintainer.deleteExpired(name),
    serverTimeMs: () => reader.serverTimeMs!(),
  };
}

const iso = (ms: number) => new Date(ms).toISOString();

async function vaultSubject(): Promise<StoreSubject> {
  const dir = await makeTempDir('http-conformance');
  dirs.push(dir);
  const dataDir = join(dir, 'data');
  // The vault's clock for retention: the system's, moved forward by what ageUnprotected adds.
  let aheadMs = 0;
  const vault = await startVault({
    dataDir,
    host: '127.0.0.1',
    port: 0,
    clock: systemClock,
    retentionClock: { retentionBaseMs: () => Date.now() + aheadMs, deletionNowMs: () => Date.now() + aheadMs },
  });
  vaults.push(vault);
  assert.match(vault.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  const client = (role: Role) =>
    createHttpStore(`${vault.url}/${REPO}`, {
      token: createToken(dataDir, { role, repo: REPO, nowMs: Date.now() }).token,
    });
  const clients = {
    admin: client('admin'),
    writer: client('writer'),
    reader: client('reader'),
    maintainer: client('maintainer'),
  };
  assert.equal(await clients.admin.createRepository(), true);
  const store = routedStore(clients);

  const owner = signerOf(generateSigningKeyPair());
  const packKey = newPackKey(0, generateBoxKeyPair().publicKey, randomKey());
  const own: TestObject[] = [];
  /** Whether the repository has (or the suite was given) its config: records need one before they are accepted. */
  let configured = false;
  const standIns = new Map<string, string>();

  const config = () =>
    Buffer.from(encodeConfig(newConfig({ ownerPublicKey: owner.publicKey, createdAt: iso(Date.now()) }), owner));
  const record = (kind: ObjectKind, prefix: string, payload: Uint8Array): TestObject => {
    const bytes = encodeSignedRecord(kind, payload, owner);
    return { name: `${prefix}${sha256Hex(bytes)}`, bytes };
  };
  /** A pack holding `bytes` as its one blob; in directory `dir` when one is asked (a few hundred tries for a small pack). */
  const pack = (bytes: Uint8Array, dir?: string): TestObject => {
    const builder = createPackBuilder(bytes.length);
    for (let tries = 0; ; tries++) {
      builder.reset();
      builder.add({
        id: Buffer.from(sha256Hex(bytes), 'hex'),
        type: 'data',
        compression: 0,
        rawLength: bytes.length,
        sealed: Buffer.from(bytes),
      });
      const { bytes: packed, id } = builder.finish(packKey, owner);
      if (dir === undefined || id.startsWith(dir) || tries > 20_000)
        return { name: `data/${id.slice(0, 2)}/${id}`, bytes: Buffer.from(packed) };
    }
  };
  const ensureConfig = async () => {
    if (configured) return;
    const object = { name: 'config', bytes: config() };
    await clients.admin.put(object.name, object.bytes);
    own.push(object);
    configured = true;
  };
  const putOwn = async (via: Store, object: TestObject) => {
    await via.put(object.name, object.bytes);
    own.push(object);
  };

  /** A valid object of the kind the suite's name names, and the code the vault answers the suite's own name and bytes with. */
  async function standInFor(name: string, bytes: Uint8Array): Promise<StandIn> {
    const [kind, dir] = name.split('/');
    if (kind === 'config') {
      if (!configured) {
        configured = true;
        return { name, bytes: config(), refusedWith: 'CONFIG_CORRUPT' };
      }
      // The repository has its config: an owner-signed epoch record stands in for another top-level object.
      return { ...record('epoch', 'epochs/', bytes), refusedWith: 'OBJECT_EXISTS' };
    }
    // Epoch records need no config (init stores the first before it); key files would, and are parsed.
    if (kind === 'keys') return { ...record('epoch', 'epochs/', bytes), refusedWith: 'INVALID_OBJECT_NAME' };
    await ensureConfig();
    // Packs in the directory the suite's name has, where that is two hex digits: nested listings stay nested.
    if (kind === 'data')
      return {
        ...pack(bytes, /^[0-9a-f]{2}$/.test(dir ?? '') && bytes.length < 4096 ? dir : undefined),
        refusedWith: 'INVALID_OBJECT_NAME',
      };
    if (kind === 'index') return { ...record('index', 'index/', bytes), refusedWith: 'INVALID_OBJECT_NAME' };
    if (kind === 'snapshots') return { ...record('snapshot', 'snapshots/', bytes), refusedWith: 'INVALID_OBJECT_NAME' };
    // locks/ is no prefix of the repository format, so no role may write it; snapshots are deleted like locks are.
    if (kind === 'locks') return { ...record('snapshot', 'snapshots/', bytes), refusedWith: 'ROLE_FORBIDDEN' };
    throw new Error(`the vault fixture has no stand-in for ${name}`);
  }

  const sizeOf = (name: string) =>
    clients.reader.stat(name).then(
      ({ sizeBytes }) => sizeBytes,
      () => 0,
    );

  return {
    store,
    async standIn(name, bytes) {
      if (bytes.length === 0) {
        // No Amber object is empty: the vault refuses it under a valid name (emptyObjects), and planted, reads it.
        return { name: `index/${sha256Hex(bytes)}`, bytes, refusedWith: 'INVALID_OBJECT_NAME' };
      }
      const known = standIns.get(name);
      const standIn = await standInFor(name, bytes);
      if (known === undefined) {
        standIns.set(name, standIn.name);
        return standIn;
      }
      // Other bytes under a name already given: a valid object of its kind, which hashes to another name.
      return { ...standIn, name: known };
    },
    async rivals(name, contents) {
      // Names are the hash of their bytes; only the config is not: rival configs, each valid, all the owner's.
      assert.equal(configured, false, 'rivals need a repository without its config');
      configured = true;
      const refusedWith: ErrorCode = name === 'config' ? 'CONFIG_CORRUPT' : 'INVALID_OBJECT_NAME';
      return contents.map(() => ({ name: 'config', bytes: config(), refusedWith }));
    },
    ownObjects: () => [...own],
    async beforeProtect(names: string[], retention: ObjectRetention) {
      if (names.length === 0) return;
      await ensureConfig();
      const grant = {
        time: iso(Date.now()),
        snapshot: null,
        entries: [{ mode: retention.mode, until: iso(retention.untilMs), objects: names }],
      };
      await putOwn(clients.writer, record('grant', 'grants/', jsonBytes(grant)));
    },
    async beforeDelete(names: string[]) {
      await ensureConfig();
      const notice = {
        time: iso(Date.now()),
        graceMs: 0,
        objects: await Promise.all(names.map(async (name) => ({ name, sizeBytes: await sizeOf(name) }))),
      };
      try {
        await putOwn(clients.maintainer, record('condemn', 'condemns/', jsonBytes(notice)));
      } catch (error) {
        // The vault refuses to condemn what is still retained or held: the delete is then refused as well.
        if (!isAmberError(error, 'RETENTION_ACTIVE')) throw error;
      }
    },
    async ageUnprotected() {
      aheadMs += DEFAULT_POLICY.defaultRetentionMs + DAY_MS;
    },
    keepsDates: true,
    async hold(names: string[]) {
      await ensureConfig();
      const hold = {
        time: iso(Date.now()),
        snapshot: '0'.repeat(64),
        reason: 'store conformance',
        actor: 'suite',
        objects: names,
      };
      await putOwn(clients.admin, record('hold', 'holds/', jsonBytes(hold)));
    },
    emptyObjects: {
      refusedWith: 'OBJECT_CORRUPT',
      // Behind the vault: straight into the directory its fs store keeps the repository in.
      plant: (name) => createFsStore(join(dataDir, 'repos', REPO)).put(name, new Uint8Array(0)),
    },
  };
}

describeStoreConformance('http (vault on 127.0.0.1)', vaultSubject, { holds: true });

test("stat reports the vault's refusals with the codes get reports them with", async () => {
  const dir = await makeTempDir('http-refusals');
  dirs.push(dir);
  const dataDir = join(dir, 'data');
  const vault = await startVault({
    dataDir,
    host: '127.0.0.1',
    port: 0,
    clock: systemClock,
    retentionClock: { retentionBaseMs: () => Date.now(), deletionNowMs: () => Date.now() },
  });
  vaults.push(vault);
  const storeWith = (token: string) => createHttpStore(`${vault.url}/${REPO}`, { token, attempts: 1 });
  const token = (role: Role) => createToken(dataDir, { role, repo: REPO, nowMs: Date.now() }).token;
  assert.equal(await storeWith(token('admin')).createRepository(), true);
  const cases: [string, Store, string, ErrorCode][] = [
    [
      'a writer reading the audit log',
      storeWith(token('writer')),
      `audit/000000000001-${'a'.repeat(64)}`,
      'ROLE_FORBIDDEN',
    ],
    ["the vault's own temporary files", storeWith(token('reader')), 'tmp/x', 'INVALID_OBJECT_NAME'],
    ['an unknown token', storeWith(`amber_${'0'.repeat(16)}_${'A'.repeat(43)}`), 'config', 'TOKEN_INVALID'],
  ];
  for (const [what, store, name, code] of cases) {
    await assert.rejects(store.get(name), (error: unknown) => isAmberError(error, code), `get: ${what}`);
    await assert.rejects(store.stat(name), (error: unknown) => isAmberError(error, code), `stat: ${what}`);
  }
});

// The suite's 'a put with a retention date holds the object from the start' passes against the vault,
// but only because an object nobody protected keeps the default retention. Past that, the vault (on
// its fs store, which keeps no dates) judges deletion by grants alone and the put's own date is lost:
// a Store contract gap found here and left for a decision on where the vault should keep such dates
// (and how approved unlocks end them). The test runs, and is reported as a TODO until then.
test("a put's own retention date holds an object past the default retention, by the vault's clock", {
  todo: 'the fs-backed vault does not keep X-Amber-Retain-Until: past the default retention it deletes the object on a condemn notice',
}, async () => {
  const subject = await vaultSubject();
  const { store } = subject;
  await subject.ageUnprotected!();
  const object = await subject.standIn!('snapshots/born-held', Buffer.from('born held'));
  await store.put(object.name, object.bytes, {
    retainUntilMs: Date.now() + DEFAULT_POLICY.defaultRetentionMs + 30 * DAY_MS,
    mode: 'compliance',
  });
  await subject.beforeDelete!([object.name]);
  await assert.rejects(store.deleteExpired(object.name), (error: unknown) => isAmberError(error, 'RETENTION_ACTIVE'));
  assert.ok(Buffer.from(await store.get(object.name)).equals(object.bytes));
});

test('every vault this file started listens on 127.0.0.1 only', () => {
  assert.ok(vaults.length > 20, 'the suite started its vaults');
  for (const vault of vaults) {
    const address = vault.server.address();
    assert.ok(address && typeof address === 'object' && address.address === '127.0.0.1', JSON.stringify(address));
  }
});
