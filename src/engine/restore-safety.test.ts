// Hostile snapshots, crafted and signed with the owner key, and hostile restore targets: restore
// writes nothing outside its target and says clearly what it refused.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { asTreeId, type TreeId } from '../core/ids.ts';
import { encodeTree, type TreeNode } from '../repo/tree.ts';
import { createTestRepo, fingerprintTree, makeTempDir, rejectsWithCode, removeTree } from '../testing/repo-fixture.ts';
import { restore, type RestoreResult } from './restore.ts';
import { craftSnapshot } from '../testing/crafted-snapshot.ts';
import type { SnapshotEntry } from './snapshots.ts';
import type { Operation } from '../governance/operation.ts';

let root = '';
let sentinel = '';
let repo: Operation;
let targets = 0;

before(async () => {
  root = await makeTempDir('restore-safety');
  sentinel = join(root, 'sentinel');
  await fs.mkdir(join(sentinel, 'inner'), { recursive: true });
  await fs.writeFile(join(sentinel, 'keep.txt'), 'must never change\n');
  repo = await createTestRepo(join(root, 'repo'));
  await fs.mkdir(join(root, 'targets'));
});

after(async () => {
  await removeTree(root);
});

const TIME_NS = '1700000000123456789';
const meta = { uid: 0, gid: 0, sizeBytes: 0, mtimeNs: TIME_NS, ctimeNs: TIME_NS, inode: '0', deviceId: '0', links: 1 };
const dir = (name: string, subtree: TreeId): TreeNode => ({ ...meta, name, type: 'dir', mode: 0o755, subtree });
const symlink = (name: string, linkTarget: string): TreeNode => ({
  ...meta,
  name,
  type: 'symlink',
  mode: 0o777,
  linkTarget,
  sizeBytes: linkTarget.length,
});
const file = (name: string, content: string[], sizeBytes: number): TreeNode => ({
  ...meta,
  name,
  type: 'file',
  mode: 0o644,
  content,
  sizeBytes,
});

/** Builds trees with a blob sink, bypassing every check a real backup makes, and signs a snapshot of them. */
async function craft(
  build: (helpers: {
    tree: (nodes: TreeNode[]) => Promise<TreeId>;
    text: (name: string, text: string) => Promise<TreeNode>;
  }) => Promise<TreeId>,
): Promise<SnapshotEntry> {
  return craftSnapshot(repo, (sink) => {
    const tree = async (nodes: TreeNode[]) => asTreeId(await sink.storeBlob('tree', encodeTree({ nodes })));
    const text = async (name: string, content: string) =>
      file(name, [await sink.storeBlob('data', Buffer.from(content))], Buffer.byteLength(content));
    return build({ tree, text });
  });
}

/**
 * Restores into a fresh target and checks that nothing outside it changed: every file, directory and
 * symlink under the test's root (the sentinel, the repository, the other targets) is as it was.
 */
async function restoreContained(
  entry: SnapshotEntry,
  options: { overwrite?: boolean; prepare?: (target: string) => Promise<void>; target?: string } = {},
): Promise<{ target: string; outcome: RestoreResult | Error }> {
  const target = options.target ?? join(root, 'targets', `t${++targets}`);
  await options.prepare?.(target);
  const outside = async () => {
    const all = await fingerprintTree(root);
    const mine = target.slice(root.length + 1);
    return new Map([...all].filter(([name]) => name !== mine && !name.startsWith(`${mine}/`)));
  };
  const before = await outside();
  const outcome = await restore({ repo, snapshot: entry, target, overwrite: options.overwrite }).catch(
    (error: Error) => error,
  );
  assert.deepEqual(await outside(), before, 'nothing outside the target changed');
  assert.equal(await fs.readFile(join(sentinel, 'keep.txt'), 'utf8'), 'must never change\n');
  assert.deepEqual((await fs.readdir(sentinel)).sort(), ['inner', 'keep.txt']);
  return { target, outcome };
}

function errorsOf(outcome: RestoreResult | Error): { path: string; code: string }[] {
  assert.ok(!(outcome instanceof Error), `restore threw ${outcome}`);
  return outcome.errors.map(({ path, code }) => ({ path, code }));
}

test('unsafe names in a nested tree are refused for that directory only; its siblings restore', async () => {
  for (const bad of [
    '..',
    '.',
    '',
    'a/b',
    '../escaped.txt',
    `${'../'.repeat(8)}tmp/escaped.txt`,
    join(sentinel, 'pwned.txt'),
    'nul\0byte',
  ]) {
    const entry = await craft(async ({ tree, text }) =>
      tree([
        dir('evil', await tree([await text(bad, 'pwned\n')])),
        dir('fine', await tree([await text('ok.txt', 'ok\n')])),
      ]),
    );
    const { target, outcome } = await restoreContained(entry);
    assert.deepEqual(errorsOf(outcome), [{ path: '/evil', code: 'UNSAFE_PATH' }], `name ${JSON.stringify(bad)}`);
    assert.ok(
      (outcome as RestoreResult).errors[0].message.includes(JSON.stringify(bad)),
      (outcome as RestoreResult).errors[0].message,
    );
    assert.equal(await fs.readFile(join(target, 'fine', 'ok.txt'), 'utf8'), 'ok\n');
    assert.deepEqual(await fs.readdir(join(target, 'evil')), []);
  }
});

test('".." and names with "/" in the root tree stop the restore with UNSAFE_PATH before anything is written', async () => {
  for (const bad of ['..', '../escaped.txt']) {
    const entry = await craft(async ({ tree, text }) =>
      tree([dir(bad, await tree([await text('escaped.txt', 'pwned\n')])), await text('zzz.txt', 'after\n')]),
    );
    const { target, outcome } = await restoreContained(entry);
    assert.ok(outcome instanceof Error);
    await rejectsWithCode(Promise.reject(outcome), 'UNSAFE_PATH');
    assert.deepEqual(await fs.readdir(target), []);
  }
});

test('a duplicate name, a symlink to a directory outside and a directory with a file, is refused in either order', async () => {
  for (const symlinkFirst of [true, false]) {
    const entry = await craft(async ({ tree, text }) => {
      const link = symlink('x', sentinel);
      const real = dir('x', await tree([await text('pwned.txt', 'pwned\n')]));
      return tree([dir('sub', await tree(symlinkFirst ? [link, real] : [real, link]))]);
    });
    const { target, outcome } = await restoreContained(entry);
    assert.deepEqual(errorsOf(outcome), [{ path: '/sub', code: 'UNSAFE_PATH' }]);
    assert.match((outcome as RestoreResult).errors[0].message, /"x" twice/);
    assert.deepEqual(await fs.readdir(join(target, 'sub')), []);
  }
});

test('an absolute symlink followed by a file of the same name is refused, and nothing is written through the link', async () => {
  const entry = await craft(async ({ tree, text }) =>
    tree([symlink('keep.txt', join(sentinel, 'keep.txt')), await text('keep.txt', 'pwned\n')]),
  );
  const { target, outcome } = await restoreContained(entry);
  await rejectsWithCode(Promise.reject(outcome), 'UNSAFE_PATH');
  assert.deepEqual(await fs.readdir(target), []);
});

test('a symlink restored by one snapshot is never written through by the next, with or without overwrite', async () => {
  const links = await craft(async ({ tree }) =>
    tree([symlink('dir', sentinel), symlink('file', join(sentinel, 'keep.txt'))]),
  );
  const contents = await craft(async ({ tree, text }) =>
    tree([
      dir(
        'dir',
        await tree([await text('pwned.txt', 'pwned\n'), dir('inner', await tree([await text('deep.txt', 'pwned\n')]))]),
      ),
      await text('file', 'pwned\n'),
    ]),
  );
  const { target, outcome } = await restoreContained(links);
  assert.deepEqual(errorsOf(outcome), []);
  assert.equal(await fs.readlink(join(target, 'dir')), sentinel);

  const refused = await restoreContained(contents, { target });
  assert.deepEqual(errorsOf(refused.outcome), [
    { path: '/dir', code: 'TARGET_EXISTS' },
    { path: '/file', code: 'TARGET_EXISTS' },
  ]);
  assert.equal(await fs.readlink(join(target, 'dir')), sentinel);
  assert.equal(await fs.readlink(join(target, 'file')), join(sentinel, 'keep.txt'));

  const replaced = await restoreContained(contents, { target, overwrite: true });
  assert.deepEqual(errorsOf(replaced.outcome), []);
  assert.ok((await fs.lstat(join(target, 'dir'))).isDirectory());
  assert.equal(await fs.readFile(join(target, 'dir', 'inner', 'deep.txt'), 'utf8'), 'pwned\n');
  assert.ok((await fs.lstat(join(target, 'file'))).isFile());
  assert.equal(await fs.readFile(join(target, 'file'), 'utf8'), 'pwned\n');
});

test('symlinks already in the target that point outside are replaced, not followed, when overwrite is set', async () => {
  const entry = await craft(async ({ tree, text }) =>
    tree([
      dir(
        'a',
        await tree([
          dir('inner', await tree([await text('new.txt', 'restored\n')])),
          await text('keep.txt', 'restored\n'),
        ]),
      ),
    ]),
  );
  // The target's own directories are symlinks into the sentinel: a/ itself, and inside a real a/ too.
  const plant = (layout: 'dir-link' | 'inner-links') => async (target: string) => {
    await fs.mkdir(target);
    if (layout === 'dir-link') {
      await fs.symlink(sentinel, join(target, 'a'));
      return;
    }
    await fs.mkdir(join(target, 'a'));
    await fs.symlink(join(sentinel, 'inner'), join(target, 'a', 'inner'));
    await fs.symlink(join(sentinel, 'keep.txt'), join(target, 'a', 'keep.txt'));
  };
  for (const layout of ['dir-link', 'inner-links'] as const) {
    const kept = await restoreContained(entry, { prepare: plant(layout) });
    assert.ok(
      errorsOf(kept.outcome).length > 0 && errorsOf(kept.outcome).every(({ code }) => code === 'TARGET_EXISTS'),
    );

    const { target, outcome } = await restoreContained(entry, { prepare: plant(layout), overwrite: true });
    assert.deepEqual(errorsOf(outcome), []);
    assert.ok((await fs.lstat(join(target, 'a'))).isDirectory());
    assert.ok((await fs.lstat(join(target, 'a', 'inner'))).isDirectory());
    assert.equal(await fs.readFile(join(target, 'a', 'inner', 'new.txt'), 'utf8'), 'restored\n');
    assert.ok((await fs.lstat(join(target, 'a', 'keep.txt'))).isFile());
    assert.equal(await fs.readFile(join(target, 'a', 'keep.txt'), 'utf8'), 'restored\n');
  }
});
