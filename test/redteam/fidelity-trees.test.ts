// Red team, issue 17 (fidelity): crafted version 1 and version 2 trees, signed with the owner key,
// against restore. Each test was a hole; it stays so the hole cannot open again.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { Encoder } from '@msgpack/msgpack';
import { asTreeId, type TreeId } from '../../src/core/ids.ts';
import { TREE_V2_MARKER } from '../../src/repo/tree.ts';
import { createTestRepo, makeTempDir, removeTree } from '../../src/testing/repo-fixture.ts';
import { craftSnapshot } from '../../src/testing/crafted-snapshot.ts';
import { restore } from '../../src/engine/restore.ts';
import type { SnapshotEntry } from '../../src/engine/snapshots.ts';
import type { Operation } from '../../src/governance/operation.ts';

let root = '';
let repo: Operation;
let targets = 0;

before(async () => {
  root = await makeTempDir('redteam-fidelity');
  repo = await createTestRepo(join(root, 'repo'));
});

after(async () => {
  await removeTree(root);
});

const encoder = new Encoder({ useBigInt64: true });
const T = 1700000000123456789n;
/** A version 2 node as it travels, fields given as the wire carries them. */
const wire = (fields: Record<string, unknown>) => ({
  type: 'file',
  mode: 0o644,
  uid: 0,
  gid: 0,
  sizeBytes: 0,
  mtimeNs: T,
  ctimeNs: T,
  inode: 0n,
  deviceId: 0n,
  links: 1,
  ...fields,
});

interface Crafting {
  /** Stores a version 2 tree of wire nodes; ids (hex) in `content`/`subtree` are turned into bytes. */
  v2: (nodes: Record<string, unknown>[]) => Promise<TreeId>;
  /** Stores a version 1 (JSON) tree as given. */
  v1: (text: string) => Promise<TreeId>;
  data: (text: string) => Promise<Buffer>;
}

async function craft(build: (c: Crafting) => Promise<TreeId>): Promise<SnapshotEntry> {
  return craftSnapshot(repo, (sink) => {
    const store = async (bytes: Buffer) => asTreeId(await sink.storeBlob('tree', bytes));
    return build({
      v2: (nodes) => store(Buffer.concat([TREE_V2_MARKER, encoder.encode({ nodes })])),
      v1: (text) => store(Buffer.from(text)),
      data: async (text) => Buffer.from(await sink.storeBlob('data', Buffer.from(text)), 'hex'),
    });
  });
}

async function restoreInto(entry: SnapshotEntry, options: { overwrite?: boolean; target?: string } = {}) {
  const target = options.target ?? join(root, `t${++targets}`);
  const outcome = await restore({ repo, snapshot: entry, target, overwrite: options.overwrite }).catch(
    (error: Error) => error,
  );
  return { target, outcome };
}

/** Restores a tree with `bad` in directory /evil beside /fine/ok.txt: /evil alone is refused, with `code`. */
async function refusedAlone(label: string, code: string, bad: (c: Crafting) => Promise<TreeId>): Promise<void> {
  const entry = await craft(async (c) =>
    c.v2([
      wire({ name: 'evil', type: 'dir', mode: 0o755, subtree: Buffer.from(await bad(c), 'hex') }),
      wire({
        name: 'fine',
        type: 'dir',
        mode: 0o755,
        subtree: Buffer.from(
          await c.v2([wire({ name: 'ok.txt', content: [await c.data('ok\n')], sizeBytes: 3 })]),
          'hex',
        ),
      }),
    ]),
  );
  const { target, outcome } = await restoreInto(entry);
  assert.ok(!(outcome instanceof Error), `${label}: the restore threw ${(outcome as Error).stack}`);
  assert.deepEqual(
    outcome.errors.map(({ path, code }) => ({ path, code })),
    [{ path: '/evil', code }],
    `${label}: ${JSON.stringify(outcome.errors)}`,
  );
  assert.deepEqual(await fs.readdir(join(target, 'evil')), [], label);
  assert.equal(await fs.readFile(join(target, 'fine', 'ok.txt'), 'utf8'), 'ok\n', label);
}

const v1Node = (fields: Record<string, unknown>) => ({
  name: 'f',
  type: 'file',
  mode: 0o644,
  uid: 0,
  gid: 0,
  sizeBytes: 0,
  mtimeNs: '0',
  ctimeNs: '0',
  inode: '0',
  deviceId: '0',
  links: 1,
  ...fields,
});

test('two names that stand for the same bytes (lone surrogates, which reach the kernel as U+FFFD) are refused, not restored one over the other', async () => {
  await refusedAlone('v2 str names', 'UNSAFE_PATH', async (c) =>
    c.v2([
      wire({ name: 'x\uD800', content: [await c.data('A')], sizeBytes: 1 }),
      wire({ name: 'x\uD801', content: [await c.data('B')], sizeBytes: 1 }),
    ]),
  );
  await refusedAlone('a lone low surrogate outside the escapes beside a real U+FFFD', 'UNSAFE_PATH', async (c) =>
    c.v2([
      wire({ name: 'y\uDC00', content: [await c.data('A')], sizeBytes: 1 }),
      wire({ name: 'y\uFFFD', content: [await c.data('B')], sizeBytes: 1 }),
    ]),
  );
  await refusedAlone('v1 names', 'UNSAFE_PATH', (c) =>
    c.v1(`{"nodes":[${JSON.stringify(v1Node({ name: 'PLACE' })).replace('PLACE', 'a\\ud800')}]}`),
  );
  await refusedAlone('a link target', 'OBJECT_CORRUPT', (c) =>
    c.v2([wire({ name: 's', type: 'symlink', mode: 0o777, linkTarget: 'to\uDBFF', sizeBytes: 3 })]),
  );
  await refusedAlone('attribute names', 'OBJECT_CORRUPT', (c) =>
    c.v2([
      wire({
        name: 'f',
        xattrs: [
          ['user.\uD800', Buffer.from('1')],
          ['user.\uD801', Buffer.from('2')],
        ],
      }),
    ]),
  );
});

test('an escaped byte and the same byte sent as a surrogate in a str are one name: refused as a duplicate', async () => {
  await refusedAlone('str "\\udce9" beside bin e9', 'UNSAFE_PATH', async (c) =>
    c.v2([
      wire({ name: Buffer.from([0x63, 0xe9]), content: [await c.data('A')], sizeBytes: 1 }),
      wire({ name: 'c\uDCE9', content: [await c.data('B')], sizeBytes: 1 }),
    ]),
  );
});

test('fields restore cannot use are refused as OBJECT_CORRUPT, never a crash or an error without a cause', async () => {
  const v2 = (fields: Record<string, unknown>) => (c: Crafting) => c.v2([wire({ name: 'f', ...fields })]);
  const v1 = (fields: Record<string, unknown>) => (c: Crafting) => c.v1(JSON.stringify({ nodes: [v1Node(fields)] }));
  const cases: [string, (c: Crafting) => Promise<TreeId>][] = [
    // These crashed the restore ("Cannot convert … to a BigInt", not an AmberError).
    ['v2 atimeNs 1.5', v2({ atimeNs: 1.5 })],
    ['v1 mtimeNs "x"', v1({ mtimeNs: 'x' })],
    ['v1 rdev "zz"', v1({ name: 'p', type: 'fifo', rdev: 'zz' })],
    // These failed with ERR_INVALID_ARG_TYPE / ERR_OUT_OF_RANGE, or were restored as something else.
    ['v2 mode 2^40', v2({ mode: 2n ** 40n })],
    ['v2 mode 1.5', v2({ mode: 1.5 })],
    ['v2 mode "777"', v2({ mode: '777' })],
    ['v2 uid -5', v2({ uid: -5 })],
    ['v2 gid "root"', v2({ gid: 'root' })],
    ['v2 sizeBytes 1.5', v2({ sizeBytes: 1.5 })],
    ['v2 links "x"', v2({ links: 'x' })],
    ['v2 unknown type', v2({ type: 'whatever' })],
    ['v2 no type', v2({ type: undefined })],
    ['v2 directory without a tree', v2({ type: 'dir', mode: 0o755 })],
    ['v1 xattrs "zz"', v1({ xattrs: 'zz' })],
    ['v1 content [12]', v1({ content: [12] })],
  ];
  for (const [label, bad] of cases) await refusedAlone(label, 'OBJECT_CORRUPT', bad);
});

test('an integer written in a longer MessagePack form than needed is read as the same integer', async () => {
  const entry = await craft(async (c) =>
    c.v2([wire({ name: 'f', mode: 0o640n, uid: 0n, gid: 0n, links: 1n, sizeBytes: 1n, content: [await c.data('A')] })]),
  );
  const { target, outcome } = await restoreInto(entry);
  assert.ok(!(outcome instanceof Error), String(outcome));
  assert.deepEqual(outcome.errors, []);
  assert.equal((await fs.stat(join(target, 'f'))).mode & 0o7777, 0o640);
  assert.equal(await fs.readFile(join(target, 'f'), 'utf8'), 'A');
});
