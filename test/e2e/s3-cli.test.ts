// Amber on S3 with Object Lock as an operator runs it, through the real bin against a real S3 server
// that enforces Object Lock (Ceph RGW, started by .ci/run): init creates and checks the bucket,
// backups restore bit for bit and verify, lock status reads the storage's own retention, an expired
// snapshot is pruned while a legal hold keeps another, and a replaced or hidden object is reported.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  HeadObjectCommand,
  ListObjectVersionsCommand,
  PutObjectCommand,
  PutObjectLockConfigurationCommand,
  PutObjectRetentionCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { fingerprintTree, removeTree, seededBytes } from '../../src/testing/repo-fixture.ts';
import { freshBucketName, s3CliEnv, s3Env, s3RepoUrl, whenS3 } from '../../src/testing/s3-fixture.ts';

const BIN = fileURLToPath(new URL('../../bin/amber.js', import.meta.url));

/** Quotas are set with radosgw-admin on the cluster scripts/s3/start-s3.sh started (S3_DIR). */
function quotaSkip(): string | false {
  if (!process.env.S3_DIR)
    return 'S3_DIR is not set: the S3 server was not started by scripts/s3/start-s3.sh, so no quota can be set';
  return spawnSync('radosgw-admin', ['--version']).status === 0 ? false : 'radosgw-admin is not installed';
}

whenS3(() => {
  let dir: string;
  let source: string;
  const bucket = freshBucketName('amber-cli');
  const repo = s3RepoUrl(bucket, 'team');
  const s3 = new S3Client({
    endpoint: s3Env!.endpoint,
    forcePathStyle: true,
    region: s3Env!.region,
    credentials: s3Env!.credentials,
  });

  function amber(args: string[], repoUrl = repo) {
    const result = spawnSync(process.execPath, [BIN, ...args], {
      encoding: 'utf8',
      env: {
        PATH: process.env.PATH,
        AMBER_PASSWORD: 'test passphrase',
        AMBER_KDF_LOG_N: '10',
        AMBER_REPO: repoUrl,
        AMBER_CACHE_DIR: join(dir, 'cache'),
        ...s3CliEnv(),
      },
    });
    return { status: result.status, stdout: String(result.stdout), stderr: String(result.stderr) };
  }
  function json(args: string[]) {
    const result = amber([...args, '--json']);
    assert.equal(result.status, 0, `amber ${args.join(' ')}: ${result.stderr}`);
    return JSON.parse(result.stdout);
  }
  const keysOf = async (prefix: string) =>
    ((await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: `team/${prefix}` }))).Versions ?? []).map(
      (v) => v.Key!,
    );

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'amber-s3-cli-'));
    source = join(dir, 'source');
    await mkdir(join(source, 'sub'), { recursive: true });
    await writeFile(join(source, 'big.bin'), seededBytes(3_000_000, 'big'));
    await writeFile(join(source, 'sub', 'notes.txt'), 'quarterly figures\n'.repeat(500));
  });
  after(() => removeTree(dir));

  test('init refuses a bucket without Object Lock, and creates one with it', async () => {
    const plain = freshBucketName('amber-plain');
    await s3.send(new CreateBucketCommand({ Bucket: plain }));
    const refused = amber(['init'], s3RepoUrl(plain));
    assert.equal(refused.status, 1);
    assert.match(
      refused.stderr,
      /neither versioning nor Object Lock; Amber will not claim immutability there \[STORAGE_UNSUITABLE\]/,
    );
    assert.deepEqual(
      (await s3.send(new ListObjectVersionsCommand({ Bucket: plain }))).Versions ?? [],
      [],
      'nothing was written',
    );

    const init = json(['init', '--create-bucket', '--default-retain', '1h', '--lock-mode', 'compliance']);
    assert.equal(init.bucket.objectLock, true);
    assert.equal(init.policy.defaultMode, 'compliance');
    // The config and first key carry their own lock from the moment they are written.
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'team/config' }));
    assert.equal(head.ObjectLockMode, 'COMPLIANCE');
    assert.ok(head.ObjectLockRetainUntilDate!.getTime() > Date.now() + 3_000_000);
    assert.match(
      amber(['policy', 'show']).stdout,
      new RegExp(`bucket ${bucket}: Object Lock enabled, no default retention`),
    );
  });

  test('a bucket default retention longer than the policy minimum raises the minimum, and policy show says so', async () => {
    const withDefault = freshBucketName('amber-default');
    await s3.send(new CreateBucketCommand({ Bucket: withDefault, ObjectLockEnabledForBucket: true }));
    await s3.send(
      new PutObjectLockConfigurationCommand({
        Bucket: withDefault,
        ObjectLockConfiguration: {
          ObjectLockEnabled: 'Enabled',
          Rule: { DefaultRetention: { Mode: 'GOVERNANCE', Days: 2 } },
        },
      }),
    );
    const init = amber(['init', '--min-retention', '1d'], s3RepoUrl(withDefault));
    assert.equal(init.status, 0, init.stderr);
    assert.match(init.stdout, /default retention 2d \(governance\)/);
    assert.match(init.stdout, /at least 2d|at least 2\.0d|at least 48/);
    const shown = amber(['policy', 'show', '--json'], s3RepoUrl(withDefault));
    const policy = JSON.parse(shown.stdout);
    assert.equal(policy.settings.minRetentionMs, 2 * 86_400_000);
    assert.deepEqual(policy.bucket.defaultRetention, { mode: 'governance', days: 2 });
  });

  test("backups restore bit for bit and verify; lock status reads the storage's retention, also for reused packs", async () => {
    const first = json(['backup', source]);
    assert.equal(first.retention.mode, 'compliance');
    assert.ok(first.storageRequests.PutObjectCommand > 0, JSON.stringify(first.storageRequests));
    const text = amber(['backup', source]);
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /^S3 requests: \d+ \(.*PutObject \d+/m);

    const target = join(dir, 'restored');
    const restored = amber(['restore', 'latest', '--target', target]);
    assert.equal(restored.status, 0, restored.stderr);
    assert.deepEqual(await fingerprintTree(join(target, source)), await fingerprintTree(source));
    const verify = amber(['verify', '--read-data']);
    assert.equal(verify.status, 0, verify.stdout + verify.stderr);

    const statuses = json(['lock', 'status']);
    assert.equal(statuses.length, 2);
    for (const status of statuses) {
      assert.equal(status.covered, true, JSON.stringify(status.gaps));
      assert.equal(status.enforcement.enforcer, 'storage');
      assert.equal(status.lockedByStore, status.objects, 'every object is locked by S3 itself');
    }
  });

  test('a replaced and a hidden object change no restore, and verify reports both as tampering', async () => {
    const [snapshotKey] = await keysOf('snapshots/');
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: snapshotKey, Body: 'forged snapshot' }));
    const [packKey] = await keysOf('data/');
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: packKey }));

    const target = join(dir, 'restored-after-attack');
    const restored = amber(['restore', snapshotKey.split('/').at(-1)!.slice(0, 12), '--target', target]);
    assert.equal(restored.status, 0, restored.stderr);
    assert.deepEqual(await fingerprintTree(join(target, source)), await fingerprintTree(source));

    const verify = amber(['verify']);
    assert.equal(verify.status, 1);
    assert.match(verify.stdout + verify.stderr, /a later version with other bytes was written over it/);
    assert.match(verify.stdout + verify.stderr, /a delete marker hides it from plain reads/);
  });

  test("a governance date shortened behind Amber's back (with the bypass permission) is a gap in lock status, and lock extend restores it", async () => {
    const snapshot = json(['backup', source, '--retain', '1d', '--lock-mode', 'governance']);
    const key = `team/snapshots/${snapshot.id}`;
    await s3.send(
      new PutObjectRetentionCommand({
        Bucket: bucket,
        Key: key,
        BypassGovernanceRetention: true,
        Retention: { Mode: 'GOVERNANCE', RetainUntilDate: new Date(Date.now() + 120_000) },
      }),
    );
    const gap = amber(['lock', 'status', snapshot.id]);
    assert.equal(gap.status, 1, gap.stdout);
    assert.match(gap.stdout, new RegExp(`gap: snapshots/${snapshot.id} retained only until`));
    assert.match(gap.stderr, /\[LOCK_GAP\]/);
    json(['lock', 'extend', snapshot.id, '--until', snapshot.retention.until]);
    const repaired = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    assert.ok(repaired.ObjectLockRetainUntilDate!.getTime() >= Date.parse(snapshot.retention.until));
    assert.equal(amber(['lock', 'status', snapshot.id]).status, 0);
  });

  test('a full bucket (a quota on the server) fails the backup with STORAGE_FULL and loses nothing; with room again it completes', {
    skip: quotaSkip(),
  }, async () => {
    const full = freshBucketName('amber-full');
    const repoUrl = s3RepoUrl(full);
    const init = amber(['init', '--create-bucket'], repoUrl);
    assert.equal(init.status, 0, init.stderr);
    const first = amber(['backup', join(source, 'sub')], repoUrl);
    assert.equal(first.status, 0, first.stderr);
    const admin = (...args: string[]) =>
      spawnSync('radosgw-admin', ['-c', join(process.env.S3_DIR!, 'ceph.conf'), ...args], { encoding: 'utf8' });
    assert.equal(admin('quota', 'set', '--quota-scope=bucket', `--bucket=${full}`, '--max-size=1000000').status, 0);
    assert.equal(admin('quota', 'enable', '--quota-scope=bucket', `--bucket=${full}`).status, 0);

    const refused = amber(['backup', source], repoUrl);
    assert.equal(refused.status, 1, refused.stdout);
    assert.match(refused.stderr, /QuotaExceeded.*\[STORAGE_FULL\]\nhint: /s);
    assert.equal(amber(['verify'], repoUrl).status, 0, 'what was there is intact');

    assert.equal(admin('quota', 'disable', '--quota-scope=bucket', `--bucket=${full}`).status, 0);
    const again = amber(['backup', source], repoUrl);
    assert.equal(again.status, 0, again.stderr);
    const verify = amber(['verify', '--read-data'], repoUrl);
    assert.equal(verify.status, 0, verify.stdout + verify.stderr);
  });

  test('vault serve --store keeps repositories in an Object Lock bucket, and refuses a bucket without it', async () => {
    const data = join(dir, 'vault');
    const plain = freshBucketName('amber-vault-plain');
    await s3.send(new CreateBucketCommand({ Bucket: plain }));
    const refused = amber(['vault', 'serve', '--data', data, '--listen', '127.0.0.1:0', '--store', s3RepoUrl(plain)]);
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /\[STORAGE_UNSUITABLE\]/);

    const vaultBucket = freshBucketName('amber-vault');
    await s3.send(new CreateBucketCommand({ Bucket: vaultBucket, ObjectLockEnabledForBucket: true }));
    const admin = JSON.parse(
      amber(['vault', 'token', 'create', '--data', data, '--role', 'admin', '--repo', 'ops', '--json']).stdout,
    ).token;
    const server = spawn(
      process.execPath,
      [BIN, 'vault', 'serve', '--data', data, '--listen', '127.0.0.1:0', '--store', s3RepoUrl(vaultBucket, 'vaults')],
      {
        env: { PATH: process.env.PATH, AMBER_CACHE_DIR: join(dir, 'cache'), ...s3CliEnv() },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let text = '';
        server.stderr!.on('data', (chunk) => {
          text += chunk;
          const match = /at (http:\/\/127\.0\.0\.1:\d+)/.exec(text);
          if (match) resolve(match[1]);
        });
        server.on('exit', () => reject(new Error(`the vault exited: ${text}`)));
      });
      const init = spawnSync(process.execPath, [BIN, 'init', '--repo', `${url}/ops`], {
        encoding: 'utf8',
        env: {
          PATH: process.env.PATH,
          AMBER_PASSWORD: 'pw',
          AMBER_KDF_LOG_N: '10',
          AMBER_CACHE_DIR: join(dir, 'cache'),
          AMBER_VAULT_TOKEN: admin,
        },
      });
      assert.equal(init.status, 0, init.stderr);
      const stored = (
        (await s3.send(new ListObjectVersionsCommand({ Bucket: vaultBucket, Prefix: 'vaults/ops/' }))).Versions ?? []
      ).map((v) => v.Key);
      assert.ok(stored.includes('vaults/ops/config'), JSON.stringify(stored));
    } finally {
      server.kill('SIGKILL');
    }
  });

  test("prune deletes an expired snapshot's versions and the delete markers; a legal hold keeps another", async () => {
    const other = join(dir, 'other');
    await mkdir(other);
    await writeFile(join(other, 'a.bin'), seededBytes(200_000, 'short-a'));
    // Short locks, but long enough that a backup on a loaded machine still sets them in the future
    // (with 2 s, the lock of a slow run was already past when S3 received it: InvalidArgument).
    const expiring = json(['backup', other, '--retain', '8s', '--lock-mode', 'governance']);
    await writeFile(join(other, 'b.bin'), seededBytes(200_000, 'short-b'));
    const held = json(['backup', other, '--retain', '8s', '--lock-mode', 'governance']);
    json(['hold', 'add', held.id, '--reason', 'case 7']);
    const heldPacks = json(['lock', 'status', held.id])[0];
    assert.equal(heldPacks.covered, true);
    await sleep(8_500);

    json(['forget', '--keep-last', '1']);
    const condemned = json(['prune', '--grace', '0s']);
    assert.equal(condemned.deleteMarkersRemoved, 1, 'the marker left by the attack above');
    const pruned = json(['prune']);
    assert.ok(
      pruned.deleted.some(({ name }: { name: string }) => name === `snapshots/${expiring.id}`),
      JSON.stringify(pruned),
    );
    assert.deepEqual(await keysOf(`snapshots/${expiring.id}`), [], 'every version of it is gone');
    assert.ok((await keysOf(`snapshots/${held.id}`)).length > 0);
    const hold = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: `team/snapshots/${held.id}` }));
    assert.equal(hold.ObjectLockLegalHoldStatus, 'ON', 'the storage holds it too');
    const verify = amber(['verify']);
    assert.doesNotMatch(verify.stdout + verify.stderr, /delete marker/);
  });
});
