// Red team: the S3 bucket source against writers that are not Amber, on the Ceph RGW of the test
// suite, through a proxy (src/testing/redteam-s3-proxy.ts) that lets another writer act between
// two of Amber's requests: an object written between a restore's HEAD and its PUT (the PUT is
// conditional, If-None-Match: *), an object over 8 MiB replaced between the listing and its GET
// (left out with a warning, the snapshot partial). And headers that do not round-trip: user
// metadata with non-ASCII text, an Expires that is not an HTTP date. Each test states what should
// hold; the ones that fail are findings.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { restoreBucket } from '../../src/source/bucket/bucket-restore.ts';
import { checkStoredBucket, parseBucketUrl } from '../../src/source/bucket/s3-bucket.ts';
import { sourceCli } from '../../src/testing/cli-runner.ts';
import { removeTree } from '../../src/testing/repo-fixture.ts';
import { bucketUrl, contents, makeBucket, putKey, redteamS3 } from '../../src/testing/redteam-s3.ts';
import { startHookedProxy } from '../../src/testing/redteam-s3-proxy.ts';
import { freshBucketName, s3Env } from '../../src/testing/s3-fixture.ts';

let dir: string;
let repo: string;
let s3: ReturnType<typeof redteamS3>;
const { ok, amberAsync } = sourceCli({
  dir: () => dir,
  passphrase: 'the bucket red team passphrase',
  sourcePassword: () => s3Env!.credentials.secretAccessKey,
});
const rgw = () => {
  const endpoint = new URL(s3Env!.endpoint);
  return { host: endpoint.hostname, port: Number(endpoint.port) };
};

describe('red team: S3 buckets with other writers, and headers', {
  skip: s3Env ? undefined : 'S3_ENDPOINT is not set (. /tmp/s3env.txt, or bash .ci/run)',
}, () => {
  before(() => {
    s3 = redteamS3();
    dir = mkdtempSync(join(tmpdir(), 'amber-redteam-bucket-races-'));
    repo = join(dir, 'repo');
    ok(['init', '--repo', repo]);
  });
  after(async () => {
    s3?.destroy();
    if (dir) await removeTree(dir);
  });

  test('an object another writer puts between the restore’s HEAD and its PUT is not overwritten', async () => {
    const source = freshBucketName('rt-src');
    const into = freshBucketName('rt-into');
    await makeBucket(s3, source);
    await makeBucket(s3, into);
    await putKey(s3, source, 'report.txt', 'the report as the snapshot has it');
    const id = JSON.parse(ok(['backup', '--repo', repo, bucketUrl(source), '--json']).stdout).id;
    let headSeen = false;
    const proxy = await startHookedProxy(rgw(), async (method, path) => {
      if (!path.startsWith(`/${into}/report.txt`)) return;
      if (method === 'HEAD') headSeen = true;
      else if (method === 'PUT' && headSeen) {
        headSeen = false;
        // A live application writes the key after Amber looked (404) and before Amber's PUT arrives.
        await putKey(s3, into, 'report.txt', 'NEWER report written by the application');
      }
    });
    try {
      const run = await amberAsync(['restore', id, '--repo', repo, '--to', bucketUrl(into, '', proxy.port), '--json']);
      assert.equal(run.status, 0, run.stderr);
      assert.deepEqual(
        await contents(s3, into),
        { 'report.txt': 'NEWER report written by the application' },
        `amber reported ${run.stdout.replace(/\s+/g, ' ')}; requests: ${proxy.requests.join(', ')}`,
      );
      assert.deepEqual(JSON.parse(run.stdout).conflicts, ['report.txt'], 'the object it found is named a conflict');
    } finally {
      await proxy.close();
    }
  });

  test('an object over 8 MiB replaced between the listing and its GET: a SOURCE_CHANGED warning naming it and a partial snapshot of the rest, not a crash; the next backup takes it', async () => {
    const source = freshBucketName('rt-src');
    await makeBucket(s3, source);
    await putKey(s3, source, 'big.bin', randomBytes(9 * 1024 * 1024));
    await putKey(s3, source, 'small.txt', 'small');
    let once = true;
    const proxy = await startHookedProxy(rgw(), async (method, path) => {
      if (once && method === 'GET' && path.startsWith(`/${source}/big.bin`)) {
        once = false;
        await putKey(s3, source, 'big.bin', randomBytes(10 * 1024 * 1024));
      }
    });
    try {
      const run = await amberAsync(['backup', '--repo', repo, bucketUrl(source, '', proxy.port), '--json']);
      assert.doesNotMatch(run.stderr, /^\s+at |Node\.js v\d|file:\/\//m, `a crash, not an error:\n${run.stderr}`);
      assert.equal(run.status, 3, `exit 3 (partial): ${run.stdout}${run.stderr}`);
      const partial = JSON.parse(run.stdout);
      assert.ok(partial.flags.includes('partial'));
      assert.deepEqual(
        partial.warnings.map((w: { path: string; code: string }) => [w.path, w.code]),
        [['/s3/objects/big.bin', 'SOURCE_CHANGED']],
      );
      assert.equal(partial.source.objects, 1, 'small.txt is in the snapshot');
      const again = await amberAsync(['backup', '--repo', repo, bucketUrl(source, '', proxy.port), '--json']);
      assert.equal(again.status, 0, again.stderr);
      assert.equal(JSON.parse(again.stdout).source.objects, 2);
    } finally {
      await proxy.close();
    }
  });

  test('user metadata with non-ASCII text comes back from a restore as it was (and does not stop the restore as refused credentials)', async () => {
    const source = freshBucketName('rt-src');
    const into = freshBucketName('rt-into');
    await makeBucket(s3, source);
    await makeBucket(s3, into);
    await putKey(s3, source, 'a.txt', 'before');
    await putKey(s3, source, 'photo.jpg', 'jpeg bytes', {
      Metadata: { caption: 'café', plain: 'ascii' },
      ContentLanguage: 'français',
    });
    // Beyond Latin-1, as boto3 or the AWS CLI send it: the UTF-8 bytes, signed as such (Node alone
    // refuses a header character above U+00FF).
    const poster = new PutObjectCommand({
      Bucket: source,
      Key: 'poster.jpg',
      Body: Buffer.from('more jpeg bytes'),
      Metadata: { title: '日本語 – ✓' },
    });
    poster.middlewareStack.add(
      (next) => async (args) => {
        const headers = (args.request as { headers: Record<string, string> }).headers;
        headers['x-amz-meta-title'] = Buffer.from(headers['x-amz-meta-title'], 'utf8').toString('latin1');
        return next(args);
      },
      { step: 'deserialize' },
    );
    await s3.send(poster);
    await putKey(s3, source, 'z.txt', 'after');
    const id = JSON.parse(ok(['backup', '--repo', repo, bucketUrl(source), '--json']).stdout).id;
    const run = await amberAsync(['restore', id, '--repo', repo, '--to', bucketUrl(into), '--json']);
    assert.equal(
      run.status,
      0,
      `${run.stdout}${run.stderr}; restored: ${JSON.stringify(Object.keys(await contents(s3, into)))} of a.txt, photo.jpg, poster.jpg, z.txt`,
    );
    assert.deepEqual(Object.keys(await contents(s3, into)), ['a.txt', 'photo.jpg', 'poster.jpg', 'z.txt']);
    for (const key of ['photo.jpg', 'poster.jpg']) {
      const before = await s3.send(new GetObjectCommand({ Bucket: source, Key: key }));
      const after = await s3.send(new GetObjectCommand({ Bucket: into, Key: key }));
      assert.deepEqual(after.Metadata, before.Metadata, key);
      assert.equal(after.ContentLanguage, before.ContentLanguage, key);
    }
    // bucket.json keeps the text, not the Latin-1 reading of its UTF-8 bytes.
    const target = join(dir, `meta-${source}`);
    ok(['restore', id, '--repo', repo, '--target', target]);
    const record = JSON.parse(readFileSync(join(target, 's3', 'bucket.json'), 'utf8'));
    const find = (key: string) => record.objects.find((o: { key: string }) => o.key === key);
    assert.deepEqual(
      [find('photo.jpg').metadata, find('photo.jpg').contentLanguage, find('photo.jpg').notUtf8],
      [{ caption: 'café', plain: 'ascii' }, 'français', undefined],
    );
    assert.deepEqual(find('poster.jpg').metadata, { title: '日本語 – ✓' });
  });

  test('an object whose headers cannot be sent is named, and the others are restored', async () => {
    const into = freshBucketName('rt-into');
    await makeBucket(s3, into);
    const body = Buffer.from('bytes');
    const object = (key: string, extra: object = {}) => ({
      key,
      file: `objects/${key}`,
      size: body.length,
      etag: null,
      lastModified: null,
      sha256: createHash('sha256').update(body).digest('hex'),
      contentType: null,
      contentEncoding: null,
      contentDisposition: null,
      contentLanguage: null,
      cacheControl: null,
      expires: null,
      metadata: {},
      ...extra,
    });
    const stored = checkStoredBucket(
      {
        version: 1,
        bucket: 'anything',
        prefix: '',
        objects: [
          object('a.txt'),
          object('latin1.txt', { metadata: { caption: 'caf\u00e9' }, notUtf8: ['x-amz-meta-caption'] }),
          object('control.txt', { metadata: { caption: 'bell\u0007' } }),
          object('z.txt', { metadata: { caption: 'café' } }),
        ],
      },
      'forged',
    );
    await assert.rejects(
      restoreBucket({
        target: parseBucketUrl(bucketUrl(into)),
        access: { password: s3Env!.credentials.secretAccessKey },
        stored,
        read: async () => body,
      }),
      (error: Error & { code?: string }) =>
        error.code === 'RESTORE_INCOMPLETE' &&
        /2 of 4 object\(s\)/.test(error.message) &&
        /latin1\.txt \(its header x-amz-meta-caption holds bytes that are not UTF-8/.test(error.message) &&
        /control\.txt \(its header x-amz-meta-caption holds a character/.test(error.message),
    );
    assert.deepEqual(Object.keys(await contents(s3, into)), ['a.txt', 'z.txt']);
  });

  test('an Expires header that is not an HTTP date ("0", as many tools write it) comes back as it was', async () => {
    const source = freshBucketName('rt-src');
    const into = freshBucketName('rt-into');
    await makeBucket(s3, source);
    await makeBucket(s3, into);
    const put = new PutObjectCommand({
      Bucket: source,
      Key: 'page.html',
      Body: '<html></html>',
      ContentType: 'text/html',
    });
    put.middlewareStack.add(
      (next) => async (args) => {
        (args.request as { headers: Record<string, string> }).headers.expires = '0';
        return next(args);
      },
      { step: 'build' },
    );
    await s3.send(put);
    await putKey(s3, source, 'dated.html', '<html></html>', { Expires: new Date('2031-02-03T04:05:06Z') });
    const id = JSON.parse(ok(['backup', '--repo', repo, bucketUrl(source), '--json']).stdout).id;
    ok(['restore', id, '--repo', repo, '--to', bucketUrl(into)]);
    for (const [key, text] of [
      ['page.html', '0'],
      ['dated.html', 'Mon, 03 Feb 2031 04:05:06 GMT'],
    ]) {
      const before = await s3.send(new GetObjectCommand({ Bucket: source, Key: key }));
      const after = await s3.send(new GetObjectCommand({ Bucket: into, Key: key }));
      assert.equal(before.ExpiresString, text);
      assert.equal(after.ExpiresString, before.ExpiresString, key);
    }
  });
});
