// Red team: S3 keys against the key → snapshot path mapping (filesOfKeys), on the Ceph RGW of the
// test suite: keys with an empty segment ("a//b", "/x", "p//"), which RGW and AWS store as they are.
// Each test states what should hold; the ones that fail are findings. The "held up" group shows
// key shapes that round-trip: dot segments, case, Unicode normalisation, %, a key that is also a
// "directory", paging past 1,000 keys, and restores that cannot leave the target prefix.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, ListObjectVersionsCommand, PutBucketVersioningCommand } from '@aws-sdk/client-s3';
import { restoreBucket } from '../../src/source/bucket/bucket-restore.ts';
import { checkStoredBucket, parseBucketUrl } from '../../src/source/bucket/s3-bucket.ts';
import { sourceCli } from '../../src/testing/cli-runner.ts';
import { removeTree } from '../../src/testing/repo-fixture.ts';
import { bucketUrl, contents, listKeys, makeBucket, putKey, redteamS3 } from '../../src/testing/redteam-s3.ts';
import { freshBucketName, s3Env } from '../../src/testing/s3-fixture.ts';

let dir: string;
let repo: string;
let s3: ReturnType<typeof redteamS3>;
const { ok, amber } = sourceCli({
  dir: () => dir,
  passphrase: 'the bucket red team passphrase',
  sourcePassword: () => s3Env!.credentials.secretAccessKey,
});

/** A fresh bucket holding these keys, each with the body "body of KEY". */
async function bucketWith(keys: string[]): Promise<string> {
  const bucket = freshBucketName('rt-keys');
  await makeBucket(s3, bucket);
  for (const key of keys) await putKey(s3, bucket, key, `body of ${key}`);
  return bucket;
}

/** Backs up bucket/prefix, restores the snapshot into a fresh bucket under the same prefix; both runs and the restored objects. */
async function roundTrip(bucket: string, prefix = '') {
  const backup = amber(['backup', '--repo', repo, bucketUrl(bucket, prefix), '--json']);
  if (backup.status !== 0) return { backup };
  const id = JSON.parse(backup.stdout).id as string;
  const into = freshBucketName('rt-into');
  await makeBucket(s3, into);
  const restore = amber(['restore', id, '--repo', repo, '--to', bucketUrl(into, prefix), '--json']);
  return { backup, id, restore, restored: await contents(s3, into) };
}

describe('red team: S3 keys and the snapshot paths they become', {
  skip: s3Env ? undefined : 'S3_ENDPOINT is not set (. /tmp/s3env.txt, or bash .ci/run)',
}, () => {
  before(() => {
    s3 = redteamS3();
    dir = mkdtempSync(join(tmpdir(), 'amber-redteam-bucket-'));
    repo = join(dir, 'repo');
    ok(['init', '--repo', repo]);
  });
  after(async () => {
    s3?.destroy();
    if (dir) await removeTree(dir);
  });

  test('a key with an empty segment ("a//b") gives a snapshot that verifies and restores into a bucket', async () => {
    const bucket = await bucketWith(['a//b', 'c.txt']);
    const { backup, id, restore, restored } = await roundTrip(bucket);
    assert.equal(backup.status, 0, backup.stderr);
    const verify = amber(['verify', '--repo', repo]);
    const ls = amber(['ls', '--repo', repo, id!, '/s3']);
    assert.deepEqual(
      [verify.status, ls.status, restore!.status],
      [0, 0, 0],
      `verify: ${verify.stdout}${verify.stderr}\nls: ${ls.stderr}\nrestore --to: ${restore!.stdout}${restore!.stderr}`,
    );
    assert.deepEqual(restored, await contents(s3, bucket));
  });

  for (const [keys, prefix] of [
    [['x', '/x'], ''],
    [['p/x', 'p//x'], 'p'],
    [['p/', 'p//'], 'p'],
  ] as const)
    test(`keys ${keys.map((k) => JSON.stringify(k)).join(' and ')}${prefix ? ` under the prefix ${prefix}/` : ''} are both backed up and restored`, async () => {
      const bucket = await bucketWith([...keys]);
      const { backup, restore, restored } = await roundTrip(bucket, prefix);
      assert.equal(backup.status, 0, `the backup of a bucket holding both fails: ${backup.stdout}${backup.stderr}`);
      assert.equal(restore!.status, 0, restore!.stderr);
      assert.deepEqual(restored, await contents(s3, bucket));
    });

  test('the folder marker of the prefix itself, restored into the root of a bucket, is not a conflict named ""', async () => {
    const bucket = await bucketWith(['photos/', 'photos/a.jpg']);
    const backup = ok(['backup', '--repo', repo, bucketUrl(bucket, 'photos'), '--json']);
    const into = freshBucketName('rt-into');
    await makeBucket(s3, into);
    const restore = ok(['restore', JSON.parse(backup.stdout).id, '--repo', repo, '--to', bucketUrl(into), '--json']);
    const result = JSON.parse(restore.stdout);
    assert.ok(!result.conflicts.includes(''), `the restore reports ${JSON.stringify(result)}`);
    assert.deepEqual(await listKeys(s3, into), ['a.jpg'], 'a bucket root has no folder marker');
    // Under a prefix, the marker is that prefix's own.
    const under = freshBucketName('rt-into');
    await makeBucket(s3, under);
    ok(['restore', JSON.parse(backup.stdout).id, '--repo', repo, '--to', bucketUrl(under, 'restored')]);
    assert.deepEqual(await listKeys(s3, under), ['restored/', 'restored/a.jpg']);
  });

  test('with --versions, keys with empty segments keep their versions apart, verify, and replay into a versioned bucket', async () => {
    const bucket = freshBucketName('rt-keys');
    const into = freshBucketName('rt-into');
    for (const name of [bucket, into]) {
      await makeBucket(s3, name);
      await s3.send(new PutBucketVersioningCommand({ Bucket: name, VersioningConfiguration: { Status: 'Enabled' } }));
    }
    const keys = ['x', '/x', 'a//b', 'a/b', 'a', 'p/', 'p//'];
    for (const key of keys) {
      await putKey(s3, bucket, key, `first ${key}`);
      await putKey(s3, bucket, key, `second ${key}`);
    }
    const backup = ok(['backup', '--repo', repo, bucketUrl(bucket), '--versions', '--json']);
    assert.deepEqual(
      [JSON.parse(backup.stdout).source.objects, JSON.parse(backup.stdout).source.versions],
      [keys.length, keys.length],
    );
    ok(['verify', '--repo', repo]);
    ok(['restore', JSON.parse(backup.stdout).id, '--repo', repo, '--to', bucketUrl(into)]);
    const history = async (name: string) => {
      const out: string[] = [];
      for (const v of (await s3.send(new ListObjectVersionsCommand({ Bucket: name }))).Versions ?? []) {
        const o = await s3.send(new GetObjectCommand({ Bucket: name, Key: v.Key, VersionId: v.VersionId }));
        out.push(`${v.Key} ${Buffer.from(await o.Body!.transformToByteArray()).toString()}`);
      }
      return out.sort();
    };
    assert.deepEqual(await history(into), await history(bucket));
  });

  describe('held up', () => {
    test('dot segments, case, Unicode normalisation, %, control characters and a key that is also a directory round-trip', async () => {
      const keys = [
        '..',
        'p/../q',
        'p/./r',
        'a/..',
        'A',
        'a',
        'a/',
        'a/b',
        'a%',
        'a%25',
        'a/%',
        'caf\u00e9',
        'cafe\u0301',
        'tab\there',
        'line\nbreak',
        'collection.json',
        'bucket.json',
        'objects/x',
        'versions/y',
      ];
      const bucket = await bucketWith(keys);
      const { backup, restore, restored } = await roundTrip(bucket);
      assert.equal(backup.status, 0, backup.stderr);
      assert.equal(restore!.status, 0, restore!.stderr);
      assert.deepEqual(restored, await contents(s3, bucket));
      assert.equal(Object.keys(restored!).length, keys.length);
    });

    test('1,005 keys (two listing pages) are all backed up', async () => {
      const bucket = freshBucketName('rt-keys');
      await makeBucket(s3, bucket);
      const keys = Array.from({ length: 1005 }, (_, n) => `k/${String(n).padStart(5, '0')}`);
      for (let i = 0; i < keys.length; i += 50)
        await Promise.all(keys.slice(i, i + 50).map((k) => putKey(s3, bucket, k, k)));
      const backup = ok(['backup', '--repo', repo, bucketUrl(bucket), '--json']);
      assert.equal(JSON.parse(backup.stdout).source.objects, 1005);
    });

    test('a forged bucket.json cannot make a restore write outside the target prefix or into another bucket', async () => {
      const into = freshBucketName('rt-into');
      const victim = freshBucketName('rt-victim');
      await makeBucket(s3, into);
      await makeBucket(s3, victim);
      const body = Buffer.from('forged');
      const sha256 = createHash('sha256').update(body).digest('hex');
      const object = (key: string, n: number) => ({
        key,
        file: `objects/f${n}`,
        size: body.length,
        etag: null,
        lastModified: null,
        sha256,
        contentType: null,
        contentEncoding: null,
        contentDisposition: null,
        contentLanguage: null,
        cacheControl: null,
        expires: null,
        metadata: {},
      });
      const stored = checkStoredBucket(
        {
          version: 1,
          bucket: 'anything',
          prefix: 'src/',
          objects: [`src/../${victim}/y`, `src/../../${victim}/z`, 'src/%2e%2e/w', 'src//../x', 'src/\\..\\v'].map(
            object,
          ),
        },
        'forged',
      );
      await restoreBucket({
        target: parseBucketUrl(bucketUrl(into, 'restored')),
        access: { password: s3Env!.credentials.secretAccessKey },
        stored,
        read: async () => body,
      });
      assert.deepEqual(await listKeys(s3, victim), []);
      const written = await listKeys(s3, into);
      assert.equal(written.length, 5);
      for (const key of written) assert.ok(key.startsWith('restored/'), key);
    });
  });
});
