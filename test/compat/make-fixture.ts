// Makes the repository fixture of the current format version for test/compat (run once per released
// format version; the tarball is committed and restored by compat.test.ts forever):
//   node test/compat/make-fixture.ts v2
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, symlink, link, writeFile, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { systemClock } from '../../src/core/clock.ts';
import { createFsStore } from '../../src/storage/fs/fs-store.ts';
import { initRepository, openRepository } from '../../src/repo/repository.ts';
import { addKey } from '../../src/protection/key-admin.ts';
import { backup } from '../../src/engine/backup.ts';
import { removeTree } from '../../src/testing/repo-fixture.ts';
import { FIXTURE } from './fixture-spec.ts';
import { setAttributeSync } from '@napi-rs/xattr';
import { utimeSecondsFromNs } from '../../src/source/fs/entry-meta.ts';
import { testOperation } from '../../src/testing/operation.ts';

const version = process.argv[2] ?? 'v2';
const work = await mkdtemp(join(tmpdir(), 'amber-compat-'));
try {
  const source = join(work, FIXTURE.sourceDir);
  await mkdir(join(source, 'docs', 'deep'), { recursive: true });
  for (const [path, content] of Object.entries(FIXTURE.files))
    await writeFile(join(source, path), FIXTURE.bytes(content));
  await symlink('notes.txt', join(source, 'docs', 'link-to-notes'));
  await link(join(source, 'notes.txt'), join(source, 'docs', 'hardlink-to-notes'));
  for (const path of Object.keys(FIXTURE.files)) await utimes(join(source, path), 1_700_000_000, 1_700_000_000);
  if (version !== 'v1') {
    const { latin1Name, latin1Content, xattr, atimeNs } = FIXTURE.v2;
    await writeFile(Buffer.concat([Buffer.from(`${source}/`), latin1Name]), latin1Content);
    setAttributeSync(join(source, 'notes.txt'), xattr.name, xattr.value);
    await utimes(join(source, 'notes.txt'), utimeSecondsFromNs(atimeNs), 1_700_000_000);
  }

  const store = createFsStore(join(work, 'repo'));
  const owner = testOperation(
    await initRepository({ store, passphrase: FIXTURE.passphrase, clock: systemClock, kdfLogN: 10 }),
  );
  await backup({ repo: owner, paths: [source], host: 'compat', tags: ['first'] });
  await addKey(owner, {
    passphrase: FIXTURE.writerPassphrase,
    role: 'write-only',
    label: 'compat writer',
    kdfLogN: 10,
  });
  await writeFile(join(source, 'docs', 'deep', 'later.txt'), FIXTURE.bytes(FIXTURE.later));
  const writer = testOperation(
    await openRepository({ store, passphrase: FIXTURE.writerPassphrase, clock: systemClock }),
  );
  await backup({ repo: writer, paths: [source], host: 'compat', tags: ['by-writer'] });

  const out = fileURLToPath(new URL(`./${version}.tar.gz`, import.meta.url));
  execFileSync('tar', ['-czf', out, '-C', work, 'repo']);
  console.log(`wrote ${out}`);
} finally {
  await removeTree(work);
}
