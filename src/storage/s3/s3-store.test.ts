// The S3 store against a real S3 server that enforces Object Lock (Ceph RGW, started by .ci/run).
import { test } from 'node:test';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import assert from 'node:assert/strict';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  ListObjectVersionsCommand,
  PutObjectCommand,
  PutObjectLockConfigurationCommand,
  PutObjectRetentionCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { describeStoreConformance, assertAmberCode, assertBytesEqual } from '../../testing/store-conformance.ts';
import { freshS3Store, s3Env, whenS3 } from '../../testing/s3-fixture.ts';
import { parseS3Location } from './s3-location.ts';
import { createS3Store } from './s3-store.ts';
import { systemClock } from '../../core/clock.ts';

test('S3 locations: endpoint, bucket and prefix, or a clear refusal', () => {
  assert.deepEqual(parseS3Location('s3:http://127.0.0.1:7480/bucket-1/a/b'), {
    endpoint: 'http://127.0.0.1:7480',
    bucket: 'bucket-1',
    prefix: 'a/b',
  });
  assert.deepEqual(parseS3Location('s3:my-bucket'), { endpoint: undefined, bucket: 'my-bucket', prefix: '' });
  assert.deepEqual(parseS3Location('s3:my-bucket/team/'), { endpoint: undefined, bucket: 'my-bucket', prefix: 'team' });
  for (const bad of [
    's3:',
    's3:Bucket',
    's3:http://h/b/../x',
    's3:http://u:p@h/bucket',
    's3:b',
    's3:bucket//x',
    's3:http://h:1/bucket?x=1',
  ]) {
    assert.throws(() => parseS3Location(bad), /not an S3 repository location/, bad);
  }
});

whenS3(
  () => {
    describeStoreConformance('s3', () => freshS3Store());
    describeStoreConformance('s3 under a prefix', () => freshS3Store({ prefix: 'team/a' }));

    const raw = () =>
      new S3Client({
        endpoint: s3Env!.endpoint,
        forcePathStyle: true,
        region: s3Env!.region,
        credentials: s3Env!.credentials,
        requestChecksumCalculation: 'WHEN_REQUIRED',
      });

    test('the server itself refuses, with the credentials that wrote it, to delete, shorten or weaken a locked version', async () => {
      const store = await freshS3Store();
      const untilMs = Date.now() + 86_400_000;
      await store.put('snapshots/locked', Buffer.from('kept'), { retainUntilMs: untilMs, mode: 'compliance' });
      const [held] = await store.protection(['snapshots/locked']);
      assert.equal(held.mode, 'compliance');
      assert.ok(held.locked && held.untilMs! >= untilMs);
      const s3 = raw();
      const strays = async () => {
        const found = [];
        for await (const stray of store.strayVersions('')) found.push(stray);
        return found;
      };
      const { Versions } = await s3.send(
        new ListObjectVersionsCommand({ Bucket: store.bucket, Prefix: 'snapshots/locked' }),
      );
      const original = Versions![0].VersionId!;
      const forbidden = (error: { $metadata?: { httpStatusCode?: number } }) => error.$metadata?.httpStatusCode === 403;
      await assert.rejects(
        s3.send(new DeleteObjectCommand({ Bucket: store.bucket, Key: 'snapshots/locked', VersionId: original })),
        forbidden,
      );
      await assert.rejects(
        s3.send(
          new DeleteObjectCommand({
            Bucket: store.bucket,
            Key: 'snapshots/locked',
            VersionId: original,
            BypassGovernanceRetention: true,
          }),
        ),
        forbidden,
      );
      await assert.rejects(
        s3.send(
          new PutObjectRetentionCommand({
            Bucket: store.bucket,
            Key: 'snapshots/locked',
            VersionId: original,
            Retention: { Mode: 'COMPLIANCE', RetainUntilDate: new Date(Date.now() + 60_000) },
          }),
        ),
        forbidden,
      );
      await assert.rejects(
        s3.send(
          new PutObjectRetentionCommand({
            Bucket: store.bucket,
            Key: 'snapshots/locked',
            VersionId: original,
            Retention: { Mode: 'GOVERNANCE', RetainUntilDate: new Date(untilMs + 86_400_000) },
          }),
        ),
        forbidden,
      );
      await assertAmberCode(store.deleteExpired('snapshots/locked'), 'RETENTION_ACTIVE');
      // Even the unlock executor's path (lowering with the bypass header) leaves compliance alone.
      assert.equal(await store.lowerGovernanceRetention(['snapshots/locked'], Date.now()), 0);
      assert.equal((await store.protection(['snapshots/locked']))[0].untilMs, held.untilMs);

      // Replacing it: a second PUT and a delete marker. The store still reads the first bytes, and says what it found.
      await s3.send(new PutObjectCommand({ Bucket: store.bucket, Key: 'snapshots/locked', Body: 'replacement' }));
      await s3.send(new DeleteObjectCommand({ Bucket: store.bucket, Key: 'snapshots/locked' }));
      const fresh = await freshS3Store({ create: false, bucket: store.bucket });
      assertBytesEqual(await fresh.get('snapshots/locked'), Buffer.from('kept'));
      assert.deepEqual((await strays()).map(({ kind, sameBytes }) => [kind, sameBytes]).sort(), [
        ['delete-marker', false],
        ['later-version', false],
      ]);
      assert.equal(await fresh.removeDeleteMarkers(''), 1);
      assert.deepEqual(
        (await strays()).map(({ kind }) => kind),
        ['later-version'],
      );
    });

    test('a legal hold keeps an object whose retention has passed; lifted, the object can go', async () => {
      const store = await freshS3Store();
      await store.put('holds/h', Buffer.from('h'), { retainUntilMs: Date.now() + 2_000, mode: 'compliance' });
      await store.setLegalHold(['holds/h'], true);
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      const [held] = await store.protection(['holds/h']);
      assert.deepEqual([held.legalHold, held.locked], [true, true]);
      await assertAmberCode(store.deleteExpired('holds/h'), 'RETENTION_ACTIVE');
      await store.setLegalHold(['holds/h'], false);
      await store.deleteExpired('holds/h');
      await assertAmberCode(store.stat('holds/h'), 'OBJECT_NOT_FOUND');
      assert.ok((store.requestCounts().PutObjectLegalHoldCommand ?? 0) >= 2, JSON.stringify(store.requestCounts()));
    });

    test('init-time checks: a bucket without Object Lock is seen as such', async () => {
      const store = await freshS3Store({ create: false });
      const s3 = raw();
      await s3.send(new CreateBucketCommand({ Bucket: store.bucket }));
      assert.deepEqual(await store.bucketLockState(), {
        versioning: false,
        objectLock: false,
        defaultRetention: undefined,
      });
      const locked = await freshS3Store();
      await s3.send(
        new PutObjectLockConfigurationCommand({
          Bucket: locked.bucket,
          ObjectLockConfiguration: {
            ObjectLockEnabled: 'Enabled',
            Rule: { DefaultRetention: { Mode: 'GOVERNANCE', Days: 3 } },
          },
        }),
      );
      assert.deepEqual(await locked.bucketLockState(), {
        versioning: true,
        objectLock: true,
        defaultRetention: { mode: 'governance', days: 3 },
      });
    });

    test('wrong credentials, a missing bucket and a server that is down each get their own clear error', async () => {
      const store = await freshS3Store();
      await store.put('config', Buffer.from('c'));
      const as = (endpoint: string, bucket: string, secretAccessKey: string) =>
        createS3Store(
          { endpoint, bucket, prefix: '' },
          {
            clock: systemClock,
            region: s3Env!.region,
            credentials: { accessKeyId: s3Env!.credentials.accessKeyId, secretAccessKey },
            maxAttempts: 2,
          },
        );
      await assertAmberCode(as(s3Env!.endpoint, store.bucket, 'wrong-secret').get('config'), 'STORAGE_ACCESS_DENIED');
      await assertAmberCode(
        as(s3Env!.endpoint, 'amber-no-such-bucket', s3Env!.credentials.secretAccessKey).exists(),
        'REPO_NOT_FOUND',
      );
      await assertAmberCode(
        as('http://127.0.0.1:1', store.bucket, s3Env!.credentials.secretAccessKey).exists(),
        'STORAGE_TRANSIENT',
      );
    });

    test('a client whose clock was moved a year ahead still cannot delete a locked object: the server judges by its own time', async () => {
      const honest = await freshS3Store();
      await honest.put('data/ab/locked', Buffer.from('pack'), {
        retainUntilMs: Date.now() + 86_400_000,
        mode: 'governance',
      });
      const ahead = { nowMs: () => Date.now() + 365 * 86_400_000, monotonicMs: () => systemClock.monotonicMs() };
      const skewed = await freshS3Store({ create: false, bucket: honest.bucket, clock: ahead });
      const [seen] = await skewed.protection(['data/ab/locked']);
      assert.equal(seen.locked, false, 'by the moved clock the date has passed');
      await assertAmberCode(skewed.deleteExpired('data/ab/locked'), 'RETENTION_ACTIVE');
      assertBytesEqual(await honest.get('data/ab/locked'), Buffer.from('pack'));
    });

    const SLOW_DOWN =
      '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>slow down</Message></Error>';

    /**
     * A proxy on 127.0.0.1 in front of the S3 server, and a store that talks through it. `answer`
     * gets each request with what the server answered and decides what the client sees.
     */
    async function throughProxy(
      t: { after(fn: () => unknown): void },
      bucket: string,
      answer: (
        method: string,
        upstream: { status: number; headers: IncomingHttpHeaders; body: Buffer },
        res: ServerResponse,
      ) => void,
    ) {
      const target = new URL(s3Env!.endpoint);
      const proxy = createServer((req, res) => {
        const upstream = httpRequest(
          { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
          (reply) => {
            const chunks: Buffer[] = [];
            reply.on('data', (chunk: Buffer) => chunks.push(chunk));
            reply.on('end', () =>
              answer(
                req.method ?? '',
                { status: reply.statusCode ?? 502, headers: reply.headers, body: Buffer.concat(chunks) },
                res,
              ),
            );
          },
        );
        req.pipe(upstream);
      });
      await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
      t.after(() => new Promise((resolve) => proxy.close(resolve)));
      return createS3Store(
        { endpoint: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`, bucket, prefix: '' },
        {
          clock: systemClock,
          region: s3Env!.region,
          credentials: s3Env!.credentials,
          maxAttempts: 5,
        },
      );
    }
    const pass = (upstream: { status: number; headers: IncomingHttpHeaders; body: Buffer }, res: ServerResponse) => {
      res.writeHead(upstream.status, upstream.headers);
      res.end(upstream.body);
    };
    const slowDown = (res: ServerResponse) => {
      res.writeHead(503, { 'content-type': 'application/xml' });
      res.end(SLOW_DOWN);
    };

    test('throttling and server errors are retried with backoff; each attempt is counted', async (t) => {
      const store = await freshS3Store();
      // The first three requests are answered 503 SlowDown (after reaching the server: reads and listings only).
      let failures = 3;
      const through = await throughProxy(t, store.bucket, (method, upstream, res) => {
        if (failures > 0 && method !== 'PUT') {
          failures -= 1;
          return slowDown(res);
        }
        pass(upstream, res);
      });
      await through.put('index/retried', Buffer.from('survives'));
      assertBytesEqual(await store.get('index/retried'), Buffer.from('survives'));
      assert.equal(failures, 0);
      const sent = Object.values(through.requestCounts()).reduce((sum, n) => sum + n, 0);
      assert.ok(
        sent >= 3 + 3,
        `the three refused attempts are counted too: ${JSON.stringify(through.requestCounts())}`,
      );
    });

    test('a PUT that landed but whose answer was lost is retried, and the put counts as done, not as a clash', async (t) => {
      const store = await freshS3Store();
      let lost = 1;
      const through = await throughProxy(t, store.bucket, (method, upstream, res) => {
        if (method === 'PUT' && lost > 0) {
          lost -= 1;
          return slowDown(res); // the object is stored; the client is told it failed
        }
        pass(upstream, res);
      });
      await through.put('data/ab/landed', Buffer.from('pack bytes'));
      assert.equal(lost, 0);
      assertBytesEqual(await store.get('data/ab/landed'), Buffer.from('pack bytes'));
      // The retry made a second version with the same bytes: harmless, and counted apart by verify.
      const strays: [string, boolean][] = [];
      for await (const { kind, sameBytes } of store.strayVersions('')) strays.push([kind, sameBytes]);
      assert.deepEqual(strays, [['later-version', true]]);
      // A first attempt refused as existing is still a clash.
      await assertAmberCode(through.put('data/ab/landed', Buffer.from('other bytes')), 'OBJECT_EXISTS');
      await assertAmberCode(through.put('data/ab/landed', Buffer.from('pack bytes')), 'OBJECT_EXISTS');
    });

    test("listings that span many pages, with a key's versions and delete markers split across pages, lose and invent nothing", async () => {
      const store = await freshS3Store();
      const s3 = raw();
      const names = Array.from({ length: 7 }, (_, i) => `data/0${i}/pack${i}`);
      for (const name of names) await store.put(name, Buffer.from(`first ${name}`));
      // Later versions and markers on some keys, so one key's entries straddle page boundaries.
      for (const name of [names[1], names[1], names[4]])
        await s3.send(new PutObjectCommand({ Bucket: store.bucket, Key: name, Body: 'later' }));
      await s3.send(new DeleteObjectCommand({ Bucket: store.bucket, Key: names[4] }));
      await s3.send(new DeleteObjectCommand({ Bucket: store.bucket, Key: names[6] }));
      for (const pageSize of [1, 2, 3, 1000]) {
        const paged = createS3Store(
          { endpoint: s3Env!.endpoint, bucket: store.bucket, prefix: '' },
          {
            clock: systemClock,
            region: s3Env!.region,
            credentials: s3Env!.credentials,
            listPageSize: pageSize,
          },
        );
        const listed: string[] = [];
        for await (const { name, sizeBytes } of paged.list('data/')) {
          listed.push(name);
          assert.equal(
            sizeBytes,
            Buffer.byteLength(`first ${name}`),
            `${name} is listed with its first version (page size ${pageSize})`,
          );
        }
        assert.deepEqual(listed, names, `page size ${pageSize}`);
        for (const name of [names[1], names[4], names[6]])
          assertBytesEqual(await paged.get(name), Buffer.from(`first ${name}`));
        const strays: string[] = [];
        for await (const { name, kind } of paged.strayVersions('data/')) strays.push(`${kind} ${name}`);
        assert.deepEqual(
          strays.sort(),
          [
            `delete-marker ${names[4]}`,
            `delete-marker ${names[6]}`,
            `later-version ${names[1]}`,
            `later-version ${names[1]}`,
            `later-version ${names[4]}`,
          ],
          `page size ${pageSize}`,
        );
      }
    });
  },
  { announceSkip: true },
);
