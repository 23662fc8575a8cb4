// An S3 bucket as a source, against the Ceph RADOS Gateway of the test suite (S3_ENDPOINT) and
// watched through a proxy that counts the requests: objects with nested keys, a folder marker, a
// key that is also a "directory" of others, non-ASCII keys, headers and user metadata, and an
// 11 MiB multipart upload (whose ETag is not an MD5) are backed up, the bucket is emptied, and a
// restore brings every object back with its metadata: the digest before equals the digest after.
// A second backup after one change, one deletion and one addition reads only two objects; each
// snapshot restores to its own time; a prefix is backed up alone and restored elsewhere; a restore
// into a directory writes the objects as files; a wrong secret is said clearly.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  ListObjectVersionsCommand,
  PutBucketVersioningCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { sourceCli } from '../../src/testing/cli-runner.ts';
import { type HttpProxy, startHttpProxy } from '../../src/testing/http-proxy.ts';
import { removeTree } from '../../src/testing/repo-fixture.ts';
import { freshBucketName, s3Env } from '../../src/testing/s3-fixture.ts';

let dir: string;
let repo: string;
let proxy: HttpProxy;
let s3: S3Client;
const bucket = freshBucketName('amber-src');
const other = freshBucketName('amber-dst');
const { ok, amber, amberAsync } = sourceCli({
  dir: () => dir,
  passphrase: 'the bucket test passphrase',
  sourcePassword: () => s3Env!.credentials.secretAccessKey,
});
const endpoint = () => new URL(s3Env!.endpoint);
/** The bucket as Amber names it: through the proxy, with the access key id in the URL and its secret as the source password. */
const url = (name = bucket, prefix = '', via = proxy.port) =>
  `s3src+http://${s3Env!.credentials.accessKeyId}@127.0.0.1:${via}/${name}/${prefix}`;
const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex').slice(0, 16);

async function put(
  key: string,
  body: string | Buffer,
  extra: Partial<ConstructorParameters<typeof PutObjectCommand>[0]> = {},
) {
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ...extra }));
}

async function keys(name: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({ Bucket: name, Prefix: prefix || undefined, ContinuationToken: token }),
    );
    out.push(...(page.Contents ?? []).map((o) => o.Key!));
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return out;
}

/** Every object under the prefix: key (without the prefix), content hash, headers and user metadata. */
async function digest(name = bucket, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const key of await keys(name, prefix)) {
    const o = await s3.send(new GetObjectCommand({ Bucket: name, Key: key }));
    const body = await o.Body!.transformToByteArray();
    out.push(
      JSON.stringify([
        key.slice(prefix.length),
        sha(body),
        o.ContentType,
        o.CacheControl,
        o.ContentDisposition,
        o.ContentEncoding,
        o.ContentLanguage,
        o.Metadata,
      ]),
    );
  }
  return out.sort();
}

async function empty(name = bucket): Promise<void> {
  for (const key of await keys(name)) await s3.send(new DeleteObjectCommand({ Bucket: name, Key: key }));
}

interface Backup {
  id: string;
  objectGets: number;
  source: { objects: number; versions: number; fetched: number; carried: number };
}

async function backup(target = url(), args: string[] = []): Promise<Backup> {
  proxy.reset();
  const run = await amberAsync(['backup', '--repo', repo, target, '--json', ...args]);
  assert.equal(run.status, 0, run.stderr);
  // Object reads, not listings (ListObjectsV2 and ListObjectVersions are GETs of the bucket).
  const objectGets = proxy
    .requests()
    .filter((r) => r.startsWith('GET ') && !/[?&](list-type|versions)=/.test(r)).length;
  return { ...JSON.parse(run.stdout), objectGets };
}

describe('S3 buckets as a source', {
  skip: s3Env ? undefined : 'S3_ENDPOINT is not set (bash .ci/run starts Ceph RGW)',
}, () => {
  before(async () => {
    s3 = new S3Client({
      endpoint: s3Env!.endpoint,
      region: s3Env!.region,
      credentials: s3Env!.credentials,
      forcePathStyle: true,
    });
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    await s3.send(new CreateBucketCommand({ Bucket: other }));
    proxy = await startHttpProxy({ host: endpoint().hostname, port: Number(endpoint().port) });
    dir = mkdtempSync(join(tmpdir(), 'amber-bucket-test-'));
    repo = join(dir, 'repo');
    await put('photos/2024/a.jpg', randomBytes(300_000), { ContentType: 'image/jpeg', CacheControl: 'max-age=3600' });
    await put('photos/2024/b.jpg', randomBytes(200_000), {
      ContentType: 'image/jpeg',
      Metadata: { camera: 'x100', 'taken-at': '2024-05-06' },
    });
    await put('photos/', ''); // a folder marker
    await put('a', 'a file named a');
    await put('a/b', 'a file below a key of the same name');
    await put('Grüße & co/ü 1.txt', 'Grüße', {
      ContentType: 'text/plain; charset=utf-8',
      ContentLanguage: 'de',
      ContentDisposition: 'attachment; filename="gruss.txt"',
    });
    await put('data.json.gz', Buffer.from([0x1f, 0x8b, 0, 1, 2]), {
      ContentType: 'application/json',
      ContentEncoding: 'gzip',
    });
    // A multipart upload: its ETag is "…-2", not an MD5 of the bytes.
    const upload = await s3.send(
      new CreateMultipartUploadCommand({
        Bucket: bucket,
        Key: 'big/archive.bin',
        ContentType: 'application/octet-stream',
      }),
    );
    const parts = [randomBytes(6 * 1024 * 1024), randomBytes(5 * 1024 * 1024)];
    const etags: string[] = [];
    for (const [n, part] of parts.entries())
      etags.push(
        (
          await s3.send(
            new UploadPartCommand({
              Bucket: bucket,
              Key: 'big/archive.bin',
              UploadId: upload.UploadId,
              PartNumber: n + 1,
              Body: part,
            }),
          )
        ).ETag!,
      );
    await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: bucket,
        Key: 'big/archive.bin',
        UploadId: upload.UploadId,
        MultipartUpload: { Parts: etags.map((ETag, n) => ({ ETag, PartNumber: n + 1 })) },
      }),
    );
    ok(['init', '--repo', repo]);
  });
  after(async () => {
    await proxy?.close();
    s3?.destroy();
    if (dir) await removeTree(dir);
  });

  test('a bucket backed up, emptied and restored: every object with its headers and metadata comes back', async () => {
    const before = await digest();
    const first = await backup();
    assert.equal(first.source.objects, 8);
    assert.equal(first.objectGets, 8);
    const files = ok(['ls', '--repo', repo, first.id, '/s3']).stdout;
    assert.match(files, /\/s3\/objects\/photos\/2024\/a\.jpg/);
    assert.match(files, /\/s3\/objects\/a%$/m, 'the key "a" beside "a/b"');
    assert.match(files, /\/s3\/objects\/photos\/%$/m, 'the folder marker photos/');
    await empty();
    assert.deepEqual(await keys(bucket), []);
    const restored = JSON.parse(
      ok(['restore', first.id, '--repo', repo, '--to', url(bucket, '', Number(endpoint().port)), '--json']).stdout,
    );
    assert.equal(restored.put, 8);
    assert.deepEqual(await digest(), before);
    const again = JSON.parse(
      ok(['restore', first.id, '--repo', repo, '--to', url(bucket, '', Number(endpoint().port)), '--json']).stdout,
    );
    assert.deepEqual([again.put, again.present], [0, 8], 'a repeated restore writes nothing');
  });

  test('the next backup reads only changed objects; each snapshot restores to its own time', async () => {
    const first = await backup();
    const atFirst = await digest();
    await put('a', 'a file named a, changed');
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'data.json.gz' }));
    await put('photos/2025/c.jpg', randomBytes(1000), { ContentType: 'image/jpeg' });
    const atSecond = await digest();
    const second = await backup();
    assert.equal(second.objectGets, 2, proxy.requests().join('\n'));
    assert.deepEqual([second.source.fetched, second.source.carried, second.source.objects], [2, 6, 8]);
    assert.equal((await backup()).objectGets, 0, 'no change: no object read');
    for (const [snapshot, expected] of [
      [first.id, atFirst],
      [second.id, atSecond],
    ] as const) {
      await empty();
      ok(['restore', snapshot, '--repo', repo, '--to', url(bucket, '', Number(endpoint().port))]);
      assert.deepEqual(await digest(), expected, `snapshot ${snapshot.slice(0, 8)}`);
    }
  });

  test('a prefix alone, restored under another prefix of another bucket, and into a directory as files', async () => {
    const photos = await backup(url(bucket, 'photos'));
    assert.equal(photos.source.objects, 4);
    ok(['restore', photos.id, '--repo', repo, '--to', url(other, 'restored/photos', Number(endpoint().port))]);
    assert.deepEqual(await digest(other, 'restored/photos/'), await digest(bucket, 'photos/'));
    const target = join(dir, 'as-files');
    ok(['restore', photos.id, '--repo', repo, '--target', target]);
    const local = readFileSync(join(target, 's3', 'objects', '2024', 'b.jpg'));
    const remote = await (
      await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'photos/2024/b.jpg' }))
    ).Body!.transformToByteArray();
    assert.equal(sha(local), sha(remote));
  });

  test('--versions keeps every version and delete marker; a restore replays them into a versioned bucket; the next backup reads only the new version', async () => {
    const versioned = freshBucketName('amber-ver');
    const target = freshBucketName('amber-ver-dst');
    for (const name of [versioned, target]) {
      await s3.send(new CreateBucketCommand({ Bucket: name }));
      await s3.send(new PutBucketVersioningCommand({ Bucket: name, VersioningConfiguration: { Status: 'Enabled' } }));
    }
    const putIn = (key: string, body: string, type = 'text/plain') =>
      s3.send(new PutObjectCommand({ Bucket: versioned, Key: key, Body: body, ContentType: type }));
    await putIn('report.txt', 'draft 1');
    await putIn('report.txt', 'draft 2');
    await putIn('report.txt', 'final', 'text/markdown');
    await putIn('gone.txt', 'was here');
    await s3.send(new DeleteObjectCommand({ Bucket: versioned, Key: 'gone.txt' })); // a delete marker
    /** Each key's versions newest first: the bytes' hash and type, or DELETED for a delete marker. */
    const history = async (name: string) => {
      const page = await s3.send(new ListObjectVersionsCommand({ Bucket: name }));
      const entries = [
        ...(page.Versions ?? []).map((v) => ({
          key: v.Key!,
          id: v.VersionId!,
          at: v.LastModified!,
          latest: v.IsLatest,
          marker: false,
        })),
        ...(page.DeleteMarkers ?? []).map((m) => ({
          key: m.Key!,
          id: m.VersionId!,
          at: m.LastModified!,
          latest: m.IsLatest,
          marker: true,
        })),
      ].sort((a, b) =>
        a.key < b.key ? -1 : a.key > b.key ? 1 : Number(b.latest) - Number(a.latest) || b.at.getTime() - a.at.getTime(),
      );
      const out: string[] = [];
      for (const e of entries) {
        if (e.marker) {
          out.push(`${e.key} DELETED`);
          continue;
        }
        const o = await s3.send(new GetObjectCommand({ Bucket: name, Key: e.key, VersionId: e.id }));
        out.push(`${e.key} ${sha(await o.Body!.transformToByteArray())} ${o.ContentType}`);
      }
      return out;
    };
    const before = await history(versioned);
    assert.equal(before.length, 5);
    const first = await backup(url(versioned), ['--versions']);
    assert.deepEqual([first.source.objects, first.source.versions, first.source.fetched], [1, 4, 4]);
    assert.match(ok(['ls', '--repo', repo, first.id, '/s3']).stdout, /\/s3\/versions\/report\.txt\//);
    ok(['restore', first.id, '--repo', repo, '--to', url(target, '', Number(endpoint().port))]);
    assert.deepEqual(await history(target), before, 'the same versions in the same order, the delete marker on top');

    await putIn('report.txt', 'final, corrected');
    const second = await backup(url(versioned), ['--versions']);
    assert.equal(second.objectGets, 1, proxy.requests().join('\n'));
    assert.deepEqual([second.source.objects, second.source.versions, second.source.carried], [1, 5, 4]);
    const refused = amber(['backup', '--repo', repo, dir, '--versions']);
    assert.equal(refused.status, 2);
    assert.match(refused.stderr, /--versions applies to an s3src/);
  });

  test('the policy file: a bucket by url with its secret in a file, backed up by amber run', async () => {
    writeFileSync(join(dir, 'bucket.secret'), `${s3Env!.credentials.secretAccessKey}\n`);
    const file = join(dir, 'policy.yaml');
    writeFileSync(
      file,
      `repositories:
  main: { repo: ${repo} }
sources:
  - name: media
    url: ${url(bucket, 'photos', Number(endpoint().port))}
    password-file: bucket.secret
    repository: main
    schedule: every 1d
state-dir: state
`,
    );
    const run = await amberAsync(['run', 'media', '--config', file, '--json'], { AMBER_SOURCE_PASSWORD: '' });
    assert.equal(run.status, 0, run.stderr);
    const outcome = JSON.parse(run.stdout);
    assert.equal(outcome.status, 'succeeded');
    const listed = JSON.parse(ok(['snapshots', '--repo', repo, '--json']).stdout).find(
      (s: { id: string }) => s.id === outcome.snapshot,
    );
    assert.equal(listed.source.kind, 's3');
    assert.equal(listed.source.prefix, 'photos/');
  });

  test('a wrong secret and a secret in the URL are refused clearly; no snapshot is written', () => {
    const count = JSON.parse(ok(['snapshots', '--repo', repo, '--json']).stdout).length;
    const wrong = amber(['backup', '--repo', repo, url(bucket, '', Number(endpoint().port))], {
      AMBER_SOURCE_PASSWORD: 'not the secret',
    });
    assert.equal(wrong.status, 1, wrong.stderr);
    assert.match(wrong.stderr, /refused the credentials .*\[SOURCE_AUTH_FAILED\]/);
    const inUrl = amber(['backup', '--repo', repo, `s3src+http://key:secret@127.0.0.1:1/${bucket}/`]);
    assert.equal(inUrl.status, 2);
    assert.match(inUrl.stderr, /has a secret in it/);
    assert.doesNotMatch(inUrl.stderr, /secret@/);
    assert.equal(JSON.parse(ok(['snapshots', '--repo', repo, '--json']).stdout).length, count);
  });
});
