// Repositories written by every released format version must stay readable forever.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { lstat, mkdtemp, readFile, readlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { systemClock } from '../../src/core/clock.ts';
import { isAmberError } from '../../src/core/errors.ts';
import { createFsStore } from '../../src/storage/fs/fs-store.ts';
import { openRepository } from '../../src/repo/repository.ts';
import { listSnapshots } from '../../src/engine/snapshots.ts';
import { restore } from '../../src/engine/restore.ts';
import { verify } from '../../src/engine/verify.ts';
import { removeTree } from '../../src/testing/repo-fixture.ts';
import { FIXTURE } from './fixture-spec.ts';
import { getAttributeSync } from '@napi-rs/xattr';
import { createBlobReader } from '../../src/repo/blob-reader.ts';
import { loadIndex } from '../../src/repo/index-loader.ts';
import { TREE_V2_MARKER } from '../../src/repo/tree.ts';
import { testOperation } from '../../src/testing/operation.ts';

for (const version of ['v1', 'v2']) {
  test(`a format ${version} repository opens, lists, restores exactly and verifies`, async (t) => {
    const work = await mkdtemp(join(tmpdir(), `amber-compat-${version}-`));
    t.after(() => removeTree(work));
    execFileSync('tar', ['-xzf', fileURLToPath(new URL(`./${version}.tar.gz`, import.meta.url)), '-C', work]);
    const store = createFsStore(join(work, 'repo'));
    const repo = testOperation(await openRepository({ store, passphrase: FIXTURE.passphrase, clock: systemClock }));

    const snapshots = await listSnapshots(repo);
    assert.deepEqual(
      snapshots.map(({ snapshot }) => snapshot.tags),
      [['first'], ['by-writer']],
    );
    assert.deepEqual(
      snapshots.map(({ signer }) => signer.split(' ')[0]),
      ['owner', 'writer'],
    );

    const reader = createBlobReader(repo, (await loadIndex(repo)).index);
    for (const [n, entry] of snapshots.entries()) {
      // The trees are of the version the repository was written in: JSON, or the version 2 marker.
      const rootTree = await reader.readBlob(Buffer.from(entry.snapshot.tree, 'hex'));
      if (version === 'v1') assert.equal(rootTree[0], 0x7b);
      else assert.deepEqual(rootTree.subarray(0, 4), TREE_V2_MARKER);
      const target = join(work, `restore-${n}`);
      const result = await restore({ repo, snapshot: entry, target });
      assert.deepEqual(result.errors, []);
      const root = join(target, entry.snapshot.paths[0]);
      // Before any file is read: reading sets the access time (relatime).
      if (version !== 'v1') {
        const { latin1Name, latin1Content, xattr, atimeNs } = FIXTURE.v2;
        assert.equal(await readFile(Buffer.concat([Buffer.from(`${root}/`), latin1Name]), 'utf8'), latin1Content);
        assert.deepEqual(getAttributeSync(join(root, 'notes.txt'), xattr.name), xattr.value);
        const notes = await lstat(join(root, 'notes.txt'), { bigint: true });
        assert.ok(notes.atimeNs - atimeNs < 1_000n && atimeNs - notes.atimeNs < 1_000n, `atime ${notes.atimeNs}`);
      }
      for (const [path, content] of Object.entries(FIXTURE.files)) {
        assert.deepEqual(await readFile(join(root, path)), FIXTURE.bytes(content), `${path} in snapshot ${n}`);
      }
      assert.equal(await readlink(join(root, 'docs', 'link-to-notes')), 'notes.txt');
      assert.equal(
        (await lstat(join(root, 'docs', 'hardlink-to-notes'))).ino,
        (await lstat(join(root, 'notes.txt'))).ino,
      );
      const later = readFile(join(root, 'docs', 'deep', 'later.txt'));
      if (n === 0) await assert.rejects(later);
      else assert.deepEqual(await later, FIXTURE.bytes(FIXTURE.later));
    }

    assert.deepEqual((await verify({ repo, readDataFraction: 1 })).problems, []);
    const writer = testOperation(
      await openRepository({ store, passphrase: FIXTURE.writerPassphrase, clock: systemClock }),
    );
    await assert.rejects(listSnapshots(writer), (error) => isAmberError(error, 'WRITE_ONLY_KEY'));
  });
}
