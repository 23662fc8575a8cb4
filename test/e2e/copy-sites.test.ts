// The isolated copy (docs/isolation.md) between two sites, as operators run it: every step is the
// real bin in its own process, each site with its own passphrase, cache and credentials.
// 1. The primary is a vault repository; the copy site holds only a `reader` token of it, copies
//    into a local directory and restores bit for bit; a second copy adds only the anchor; the
//    reader token cannot write, and the copy never tried to.
// 2. The copy is an S3 bucket with Object Lock (Ceph RGW): copied objects carry COMPLIANCE
//    retention from the copy's policy and date, and restore once the primary's vault is gone.
//    With an S3 primary, the primary is read with its own credentials (--from-aws-profile or
//    AMBER_FROM_AWS_*), never with the copy site's AWS settings.
// 3. Real network isolation with network namespaces: the primary's vault runs in namespace P, the
//    copy site (with a vault of its own) in namespace C. C routes to P; P has no route to C (only
//    its vault's answers are routed back), so nothing at the primary can reach or command the
//    copy, while `amber copy` in C works.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GetObjectRetentionCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { DEFAULT_POLICY } from '../../src/governance/policy.ts';
import { roundUpMs } from '../../src/governance/retention.ts';
import { fingerprintTree, removeTree, seededBytes } from '../../src/testing/repo-fixture.ts';
import { compareTrees } from '../../src/testing/tree-compare.ts';
import { freshBucketName, s3CliEnv, s3Env, s3RepoUrl } from '../../src/testing/s3-fixture.ts';

const BIN = fileURLToPath(new URL('../../bin/amber.js', import.meta.url));
const NODE = process.execPath;
const HOUR = 3_600_000;

interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command to its end; `ns` runs it inside that network namespace. `noTerminal` runs it in a
 * session of its own, without the terminal a prompt would open even when stdin is not one.
 */
function run(
  command: string,
  args: string[],
  env: Record<string, string>,
  ns?: string,
  noTerminal = false,
): Promise<Result> {
  const [file, argv] = ns ? ['ip', ['netns', 'exec', ns, command, ...args]] : [command, args];
  return new Promise((resolve, reject) => {
    const child = spawn(file, argv, {
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: noTerminal,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

const amber = (args: string[], env: Record<string, string>, ns?: string) => run(NODE, [BIN, ...args], env, ns);

/** `amber ARGS --json` that must succeed: its parsed output. */
async function amberJson(args: string[], env: Record<string, string>, ns?: string) {
  const result = await amber([...args, '--json'], env, ns);
  assert.equal(result.status, 0, `amber ${args.join(' ')}: ${result.stderr}`);
  return JSON.parse(result.stdout);
}

/** The settings of one site: its own passphrase and cache, and whatever credentials it holds. */
const site = (dir: string, passphrase: string, extra: Record<string, string> = {}) => ({
  AMBER_PASSWORD: passphrase,
  AMBER_KDF_LOG_N: '10',
  AMBER_CACHE_DIR: join(dir, 'cache'),
  ...extra,
});

async function makeToken(dataDir: string, role: string, repo: string): Promise<{ token: string; id: string }> {
  const made = await amberJson(['vault', 'token', 'create', '--data', dataDir, '--role', role, '--repo', repo], {});
  return { token: made.token, id: made.id };
}

interface Vault {
  url: string;
  dataDir: string;
  stop(): Promise<void>;
}

/** Starts `amber vault serve` (in namespace `ns` when given); stopped by the test's cleanup at the latest. */
async function startVault(
  t: { after(fn: () => Promise<void>): void },
  dataDir: string,
  listen: string,
  options: { ns?: string; extra?: string[]; env?: Record<string, string> } = {},
): Promise<Vault> {
  const args = [BIN, 'vault', 'serve', '--data', dataDir, '--listen', listen, ...(options.extra ?? [])];
  const [file, argv] = options.ns ? ['ip', ['netns', 'exec', options.ns, NODE, ...args]] : [NODE, args];
  // `ip netns exec` execs the command: the child is the vault itself, and a signal to it stops the vault.
  const server: ChildProcess = spawn(file, argv, {
    env: { PATH: process.env.PATH ?? '', ...options.env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => server.once('exit', () => resolve()));
  const stop = async () => {
    if (server.exitCode !== null || server.signalCode !== null) return;
    server.kill('SIGTERM');
    const timer = setTimeout(() => server.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  };
  t.after(stop);
  let text = '';
  const url = await new Promise<string>((resolve, reject) => {
    server.stderr!.on('data', (chunk) => {
      text += chunk;
      const match = / at (https?:\/\/\S+)/.exec(text);
      if (match) resolve(match[1]);
    });
    server.once('exit', () => reject(new Error(`the vault exited: ${text}`)));
  });
  return { url, dataDir, stop };
}

async function writeSource(source: string, label: string): Promise<void> {
  await mkdir(join(source, 'sub', 'deeper'), { recursive: true });
  for (let n = 0; n < 9; n++) {
    const where = [source, join(source, 'sub'), join(source, 'sub', 'deeper')][n % 3];
    await writeFile(join(where, `file-${n}.bin`), seededBytes(30_000 + n * 7_919, `${label}-${n}`));
  }
  await writeFile(join(source, 'big.bin'), seededBytes(2_500_000, `${label}-big`));
  await writeFile(join(source, 'notes.txt'), 'the same words again and again\n'.repeat(3000));
}

/** Every file below `root` (tmp/ aside), as names relative to it. */
async function filesBelow(root: string): Promise<Set<string>> {
  const names = new Set<string>();
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    const name = relative(root, join(entry.parentPath, entry.name));
    if (entry.isFile() && !name.startsWith('tmp/')) names.add(name);
  }
  return names;
}

/** The vault's log of mutating requests for one repository, one JSON object a line. */
async function accessLog(dataDir: string, repo: string): Promise<{ token: string; method: string; status: number }[]> {
  const text = await readFile(join(dataDir, 'vault', 'logs', `${repo}.jsonl`), 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line));
}

async function tempDir(t: { after(fn: () => Promise<void>): void }, label: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `amber-copy-sites-${label}-`));
  t.after(() => removeTree(dir));
  return dir;
}

test('vault → directory: the copy site holds only a reader token of the primary, copies, restores bit for bit; a second copy adds only the anchor', async (t) => {
  const dir = await tempDir(t, 'fs');
  const primaryData = join(dir, 'primary-vault');
  const admin = await makeToken(primaryData, 'admin', 'finance');
  const writer = await makeToken(primaryData, 'writer', 'finance');
  const reader = await makeToken(primaryData, 'reader', 'finance');
  const vault = await startVault(t, primaryData, '127.0.0.1:0');
  const primaryRepo = `${vault.url}/finance`;

  // The primary site: an admin creates the repository, a writer backs up twice.
  const primarySite = (token: string) => site(join(dir, 'primary-site'), 'primary pass', { AMBER_VAULT_TOKEN: token });
  await amberJson(['init', '--repo', primaryRepo], primarySite(admin.token));
  const source = join(dir, 'source');
  await writeSource(source, 'one');
  const firstTree = await fingerprintTree(source);
  const first = await amberJson(['backup', '--repo', primaryRepo, source, '--tag', 'daily'], primarySite(writer.token));
  await writeFile(join(source, 'sub', 'new.bin'), seededBytes(300_000, 'two-new'));
  await writeFile(join(source, 'notes.txt'), 'changed words\n'.repeat(2000));
  const second = await amberJson(
    ['backup', '--repo', primaryRepo, source, '--tag', 'daily'],
    primarySite(writer.token),
  );

  // The copy site: the reader token and the primary's passphrase in files, nothing else of the primary.
  const readerFile = join(dir, 'primary-reader.token');
  const passFile = join(dir, 'primary.pass');
  await writeFile(readerFile, `${reader.token}\n`, { mode: 0o600 });
  await writeFile(passFile, 'primary pass\n', { mode: 0o600 });
  const copyDir = join(dir, 'copy');
  const from = ['--from-repo', primaryRepo, '--from-token-file', readerFile, '--from-password-file', passFile];
  const copySite = site(join(dir, 'copy-site'), 'copy pass');
  const init = await amberJson(['init', '--repo', copyDir, ...from], copySite);
  assert.equal(init.copyOf.location, primaryRepo);

  const copied = await amberJson(['copy', '--repo', copyDir, ...from], copySite);
  assert.deepEqual(
    copied.copied.map((c: { source: string }) => c.source),
    [first.id, second.id],
  );
  assert.deepEqual([copied.failed, copied.ignored], [[], []]);
  // The reader token reads all the primary's log needs to verify, its vault's witnessed entries included.
  assert.ok(copied.anchor.entries > 0, "the primary's audit log was read and anchored");
  assert.deepEqual(copied.anchor.problems, []);
  // The token may come from the environment too, but only from the primary's own variables.
  const fromEnv = ['--from-repo', primaryRepo, '--from-password-file', passFile];
  const status = await amberJson(['copy', 'status', '--repo', copyDir, ...fromEnv, '--max-lag', '1h'], {
    ...copySite,
    AMBER_FROM_VAULT_TOKEN: reader.token,
  });
  assert.equal(status.length, 1);
  assert.equal(status[0].lagSeconds, 0);
  // The copy's own AMBER_VAULT_TOKEN never goes to the primary, not even one that would work there.
  const mixed = await amber(['copy', '--repo', copyDir, ...fromEnv], { ...copySite, AMBER_VAULT_TOKEN: reader.token });
  assert.equal(mixed.status, 12, mixed.stderr);
  assert.match(mixed.stderr, /needs a token of its own \[TOKEN_INVALID\]/);
  // Nor the copy's passphrase: without the primary's, the hint names the primary's own option.
  const noPass = await run(
    NODE,
    [BIN, 'copy', '--repo', copyDir, '--from-repo', primaryRepo, '--from-token-file', readerFile],
    copySite,
    undefined,
    true,
  );
  assert.equal(noPass.status, 2, noPass.stderr);
  assert.match(
    noPass.stderr,
    /no passphrase given .*\[PASSWORD_REQUIRED\]\nhint: set AMBER_FROM_PASSWORD or pass --from-password-file\n/,
  );
  // The vault logs every request that is not a read: the reader token made none.
  const log = await accessLog(primaryData, 'finance');
  assert.ok(log.some((line) => line.token === writer.id));
  assert.deepEqual(
    log.filter((line) => line.token === reader.id),
    [],
  );

  // The copy restores both snapshots on its own, with its own passphrase and no token at all.
  const snapshots = await amberJson(['snapshots', '--repo', copyDir], copySite);
  assert.equal(snapshots.length, 2);
  const restored = join(dir, 'restored');
  const latest = await amber(['restore', 'latest', '--repo', copyDir, '--target', restored], copySite);
  assert.equal(latest.status, 0, latest.stderr);
  assert.deepEqual(await compareTrees(source, join(restored, source), { ignoreRootMeta: true }), []);
  const older = join(dir, 'restored-first');
  const oldest = snapshots.find(
    (s: { id: string; copiedFrom?: { snapshot: string } }) => s.copiedFrom?.snapshot === first.id,
  );
  assert.ok(oldest, JSON.stringify(snapshots[0]));
  const restoredFirst = await amber(['restore', oldest.id, '--repo', copyDir, '--target', older], copySite);
  assert.equal(restoredFirst.status, 0, restoredFirst.stderr);
  assert.deepEqual(await fingerprintTree(join(older, source)), firstTree);

  // Nothing new at the primary: the second run only records its anchor in the copy's audit log.
  const before = await filesBelow(copyDir);
  const again = await amberJson(['copy', '--repo', copyDir, ...from], copySite);
  assert.deepEqual([again.copied.length, again.alreadyCopied], [0, 2]);
  const after = await filesBelow(copyDir);
  assert.deepEqual(
    [...before].filter((name) => !after.has(name)),
    [],
  );
  // One audit entry, and the checkpoint the copy's owner key signs after each entry it appends.
  const added = [...after].filter((name) => !before.has(name)).sort();
  assert.equal(added.length, 2, added.join(', '));
  assert.match(added[0], /^audit\/\d{12}-[0-9a-f]{64}$/);
  assert.equal(added[1].slice(0, 24), `checkpoints/${added[0].slice(6, 18)}`);
  const newest = (await amberJson(['audit', 'log', '--repo', copyDir], copySite)).at(-1);
  assert.deepEqual(
    [newest.name, newest.action, newest.details.copied, newest.details.entries],
    [added[0], 'copy.anchor', 0, again.anchor.entries],
  );

  // The reader token reads everything and writes nothing: a put, a delete, a lock change and a backup are refused.
  const objects = `${vault.url}/v1/repos/finance/objects`;
  const bearer = { authorization: `Bearer ${reader.token}` };
  const snapshotName = `snapshots/${first.id}`;
  const refusals = [
    await fetch(`${objects}/snapshots/${'0'.repeat(64)}`, { method: 'PUT', headers: bearer, body: 'forged' }),
    await fetch(`${objects}/${snapshotName}`, { method: 'DELETE', headers: bearer }),
    await fetch(`${vault.url}/v1/repos/finance/protect`, {
      method: 'POST',
      headers: { ...bearer, 'content-type': 'application/json' },
      body: JSON.stringify({ names: [snapshotName], untilMs: Date.now() + HOUR, mode: 'governance' }),
    }),
  ];
  for (const response of refusals) {
    assert.equal(response.status, 403);
    assert.equal(((await response.json()) as { error: { code: string } }).error.code, 'ROLE_FORBIDDEN');
  }
  assert.equal((await fetch(`${objects}/${snapshotName}`, { headers: bearer })).status, 200, 'still there, readable');
  // The vault logged these attempts: the log that showed no write by the copy would have shown one.
  const attempts = (await accessLog(primaryData, 'finance')).filter((line) => line.token === reader.id);
  assert.deepEqual(
    attempts.map((line) => [line.method, line.status]),
    [
      ['PUT', 403],
      ['DELETE', 403],
      ['POST', 403],
    ],
  );
  const backup = await amber(['backup', '--repo', primaryRepo, source], primarySite(reader.token));
  assert.notEqual(backup.status, 0);
  assert.match(backup.stderr, /ROLE_FORBIDDEN/);
});

/** Why the S3 copy cannot run here, or false: the Ceph RGW that `.ci/run` starts must answer. */
async function whyNoS3(): Promise<string | false> {
  const suffix =
    'so the copy into S3 with Object Lock did not run; `bash .ci/run` starts a Ceph RADOS Gateway (docs/s3.md#tests)';
  if (!s3Env) return `S3_ENDPOINT is not set, ${suffix}`;
  const { hostname, port, protocol } = new URL(s3Env.endpoint);
  const failure = await new Promise<string | undefined>((resolve) => {
    const socket = createConnection({ host: hostname, port: Number(port || (protocol === 'https:' ? 443 : 80)) });
    socket.setTimeout(3_000);
    const done = (problem: string | undefined) => {
      socket.destroy();
      resolve(problem);
    };
    socket.once('connect', () => done(undefined));
    socket.once('timeout', () => done('no answer'));
    socket.once('error', (error: NodeJS.ErrnoException) => done(error.code ?? error.message));
  });
  return failure === undefined ? false : `S3_ENDPOINT ${s3Env.endpoint} cannot be reached (${failure}), ${suffix}`;
}

/** A self-signed certificate for 127.0.0.1 (its own CA), or undefined without openssl: the vault then serves http. */
function certificateFor(dir: string, ip: string): { cert: string; key: string } | undefined {
  const cert = join(dir, 'vault.crt');
  const key = join(dir, 'vault.key');
  const made = spawnSync(
    'openssl',
    [
      ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'],
      ...['-subj', `/CN=${ip}`, '-addext', `subjectAltName=IP:${ip}`, '-days', '1', '-keyout', key, '-out', cert],
    ],
    { encoding: 'utf8' },
  );
  return made.status === 0 ? { cert, key } : undefined;
}

test('vault → S3 with Object Lock: copied objects carry COMPLIANCE retention from the copy’s policy and date, and restore with the primary gone', {
  skip: await whyNoS3(),
}, async (t) => {
  const dir = await tempDir(t, 's3');
  const primaryData = join(dir, 'primary-vault');
  const admin = await makeToken(primaryData, 'admin', 'finance');
  const writer = await makeToken(primaryData, 'writer', 'finance');
  const reader = await makeToken(primaryData, 'reader', 'finance');
  // Over TLS where openssl can make a certificate: both sites trust it through NODE_EXTRA_CA_CERTS.
  const tls = certificateFor(dir, '127.0.0.1');
  const trust: Record<string, string> = tls ? { NODE_EXTRA_CA_CERTS: tls.cert } : {};
  const vault = await startVault(t, primaryData, '127.0.0.1:0', {
    extra: tls ? ['--tls-cert', tls.cert, '--tls-key', tls.key] : [],
  });
  if (tls) assert.match(vault.url, /^https:/);
  const primaryRepo = `${vault.url}/finance`;
  const primarySite = (token: string) =>
    site(join(dir, 'primary-site'), 'primary pass', { AMBER_VAULT_TOKEN: token, ...trust });
  await amberJson(['init', '--repo', primaryRepo], primarySite(admin.token));
  const source = join(dir, 'source');
  await writeSource(source, 's3');
  // The primary keeps its backups two days, in governance mode: the copy's lock is its own.
  const backup = await amberJson(
    ['backup', '--repo', primaryRepo, source, '--retain', '2d'],
    primarySite(writer.token),
  );
  assert.equal(backup.retention.mode, 'governance');

  const readerFile = join(dir, 'primary-reader.token');
  const passFile = join(dir, 'primary.pass');
  await writeFile(readerFile, `${reader.token}\n`, { mode: 0o600 });
  await writeFile(passFile, 'primary pass\n', { mode: 0o600 });
  const from = ['--from-repo', primaryRepo, '--from-token-file', readerFile, '--from-password-file', passFile];
  const bucket = freshBucketName('amber-copy');
  const copyRepo = s3RepoUrl(bucket, 'copy');
  const copySite = site(join(dir, 'copy-site'), 'copy pass', { ...s3CliEnv(), ...trust });
  const init = await amberJson(
    ['init', '--repo', copyRepo, '--create-bucket', '--lock-mode', 'compliance', '--default-retain', '1h', ...from],
    copySite,
  );
  assert.equal(init.bucket.objectLock, true);
  assert.equal(init.copyOf.location, primaryRepo);

  const startedMs = Date.now();
  const copied = await amberJson(['copy', '--repo', copyRepo, ...from], copySite);
  const endedMs = Date.now();
  assert.deepEqual(
    copied.copied.map((c: { source: string }) => c.source),
    [backup.id],
  );
  const { retention } = copied.copied[0];
  assert.equal(retention.mode, 'compliance');
  const untilMs = Date.parse(retention.until);
  // The copy's default retention (1h) from the moment the copy ran, not the primary's two days.
  assert.ok(untilMs >= startedMs + HOUR - 1_000 && untilMs <= endedMs + HOUR + 1_000, retention.until);
  const [shown] = await amberJson(['snapshots', '--repo', copyRepo], copySite);
  assert.equal(shown.copiedFrom.snapshot, backup.id);
  assert.equal(shown.copiedFrom.retention.mode, 'governance', 'the primary’s own lock, recorded for information');

  // What S3 itself holds: every copied pack, index and the snapshot under COMPLIANCE until that date.
  const s3 = new S3Client({
    endpoint: s3Env!.endpoint,
    forcePathStyle: true,
    region: s3Env!.region,
    credentials: s3Env!.credentials,
  });
  t.after(() => s3.destroy());
  const keys: string[] = [];
  for (const prefix of ['copy/data/', 'copy/index/', 'copy/snapshots/']) {
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
    const found = (listed.Contents ?? []).map((object) => object.Key!);
    assert.ok(found.length > 0, `objects under ${prefix}`);
    keys.push(...found);
  }
  for (const key of keys) {
    const { Retention } = await s3.send(new GetObjectRetentionCommand({ Bucket: bucket, Key: key }));
    assert.equal(Retention?.Mode, 'COMPLIANCE', key);
    const storedMs = Retention!.RetainUntilDate!.getTime();
    const shownAt = `${key}: ${Retention!.RetainUntilDate!.toISOString()}`;
    assert.ok(storedMs >= untilMs - 1_000, shownAt);
    // Packs and the snapshot carry the snapshot's date; the index is metadata, kept as long as
    // anything is and rounded up to the policy's step (a grid of 30 days from the epoch): the
    // copy's date so rounded, never the primary's (which may round to the same boundary or later).
    if (key.startsWith('copy/index/'))
      assert.ok(storedMs <= roundUpMs(endedMs + HOUR + 1_000, DEFAULT_POLICY.extendStepMs), shownAt);
    else assert.ok(storedMs <= endedMs + HOUR + 1_000, shownAt);
  }

  // The primary is gone, its vault stopped and its data deleted: the copy restores on its own.
  await vault.stop();
  await removeTree(primaryData);
  const verified = await amber(['verify', '--repo', copyRepo, '--read-data'], copySite);
  assert.equal(verified.status, 0, verified.stderr);
  const restored = join(dir, 'restored');
  const restore = await amber(['restore', 'latest', '--repo', copyRepo, '--target', restored], copySite);
  assert.equal(restore.status, 0, restore.stderr);
  assert.deepEqual(await compareTrees(source, join(restored, source), { ignoreRootMeta: true }), []);
});

test('S3 → S3: the primary is read with its own S3 credentials, never the copy site’s AWS settings', {
  skip: await whyNoS3(),
}, async (t) => {
  const dir = await tempDir(t, 's3-from');
  const primaryRepo = s3RepoUrl(freshBucketName('amber-primary'), 'primary');
  const primarySite = site(join(dir, 'primary-site'), 'primary pass', s3CliEnv());
  await amberJson(['init', '--repo', primaryRepo, '--create-bucket'], primarySite);
  const source = join(dir, 'source');
  await writeSource(source, 's3-from');
  const backup = await amberJson(['backup', '--repo', primaryRepo, source], primarySite);

  // The copy site's environment holds AWS credentials: its own, for its own bucket.
  const passFile = join(dir, 'primary.pass');
  await writeFile(passFile, 'primary pass\n', { mode: 0o600 });
  const copyBucket = freshBucketName('amber-copy');
  const copyRepo = s3RepoUrl(copyBucket, 'copy');
  const copySite = site(join(dir, 'copy-site'), 'copy pass', s3CliEnv());
  const from = ['--from-repo', primaryRepo, '--from-password-file', passFile];
  const initCopy = (env: Record<string, string>, json: string[] = []) =>
    amber(['init', '--repo', copyRepo, '--create-bucket', ...from, ...json], { ...copySite, ...env });

  // Without credentials of the primary's own, nothing is read with the copy's.
  const none = await initCopy({});
  assert.equal(none.status, 2, none.stderr);
  assert.match(none.stderr, /the primary is an S3 repository and needs credentials of its own \[USAGE\]/);
  assert.match(none.stderr, /--from-aws-profile.*AMBER_FROM_AWS_ACCESS_KEY_ID/);
  const half = await initCopy({ AMBER_FROM_AWS_ACCESS_KEY_ID: s3Env!.credentials.accessKeyId });
  assert.equal(half.status, 2, half.stderr);
  assert.match(half.stderr, /AMBER_FROM_AWS_SECRET_ACCESS_KEY/);
  // A wrong secret for the primary fails although the copy site's own AWS settings would work there.
  const primaryKeys = {
    AMBER_FROM_AWS_ACCESS_KEY_ID: s3Env!.credentials.accessKeyId,
    AMBER_FROM_AWS_SECRET_ACCESS_KEY: s3Env!.credentials.secretAccessKey,
  };
  const wrong = await initCopy({ ...primaryKeys, AMBER_FROM_AWS_SECRET_ACCESS_KEY: 'not-the-secret' });
  assert.notEqual(wrong.status, 0);
  assert.match(wrong.stderr, /STORAGE_ACCESS_DENIED|SignatureDoesNotMatch|denied/i);

  // With the primary's keys in AMBER_FROM_AWS_*, or a profile of its own, the copy works.
  const init = await initCopy(primaryKeys, ['--json']);
  assert.equal(init.status, 0, init.stderr);
  assert.equal(JSON.parse(init.stdout).copyOf.location, primaryRepo);
  const copied = await amberJson(['copy', '--repo', copyRepo, ...from], { ...copySite, ...primaryKeys });
  assert.deepEqual(
    copied.copied.map((c: { source: string }) => c.source),
    [backup.id],
  );
  const credentials = join(dir, 'aws-credentials');
  const { accessKeyId, secretAccessKey } = s3Env!.credentials;
  await writeFile(
    credentials,
    `[primary-ro]\naws_access_key_id = ${accessKeyId}\naws_secret_access_key = ${secretAccessKey}\n` +
      `[wrong]\naws_access_key_id = ${accessKeyId}\naws_secret_access_key = not-the-secret\n`,
    { mode: 0o600 },
  );
  const profiles = { AWS_SHARED_CREDENTIALS_FILE: credentials, AWS_CONFIG_FILE: join(dir, 'no-aws-config') };
  const statusWith = (profile: string) =>
    amber(['copy', 'status', '--repo', copyRepo, ...from, '--from-aws-profile', profile, '--json'], {
      ...copySite,
      ...profiles,
    });
  const status = await statusWith('primary-ro');
  assert.equal(status.status, 0, status.stderr);
  assert.equal(JSON.parse(status.stdout)[0].lagSeconds, 0);
  // The profile is what reaches the primary: one with a wrong secret fails, the copy's AWS_* notwithstanding.
  const wrongProfile = await statusWith('wrong');
  assert.notEqual(wrongProfile.status, 0);
  assert.match(wrongProfile.stdout + wrongProfile.stderr, /STORAGE_ACCESS_DENIED|SignatureDoesNotMatch|denied/i);
});

// The isolation test's two sites: each a network namespace of its own, joined by one veth pair.
const NS_PRIMARY = `amber-p-${process.pid}`;
const NS_COPY = `amber-c-${process.pid}`;
const PRIMARY_ADDR = '10.231.1.1';
const COPY_ADDR = '10.231.2.1';
const PRIMARY_PORT = 8420;
const COPY_PORT = 8421;

const ip = (...args: string[]) => spawnSync('ip', args, { encoding: 'utf8' });

/** Why namespaces cannot be made here, or false; the probe namespace (and its veth pair) is removed at once. */
function whyNoNamespaces(): string | false {
  if (process.getuid?.() !== 0)
    return 'not root, so the network isolation test did not run (it makes network namespaces)';
  const probe = `amber-probe-${process.pid}`;
  const made = ip('netns', 'add', probe);
  if (made.error || made.status !== 0)
    return `network namespaces cannot be made here (ip netns add: ${made.error?.message ?? made.stderr.trim()}), so the network isolation test did not run`;
  const veth = ip('link', 'add', 'pa', 'netns', probe, 'type', 'veth', 'peer', 'name', 'pb', 'netns', probe);
  ip('netns', 'del', probe);
  return veth.status === 0
    ? false
    : `veth pairs cannot be made here (${veth.stderr.trim()}), so the network isolation test did not run`;
}

/** Ends what still runs in the namespace (only this test's processes run there) and deletes it with its veth end. */
function removeNamespace(name: string): void {
  for (const pid of (ip('netns', 'pids', name).stdout ?? '').split('\n').filter(Boolean)) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // gone already
    }
  }
  ip('netns', 'del', name);
}

/** From inside `ns`: GET `url` and say what happened, the connection's error code when there was none. */
async function probeFrom(ns: string, url: string): Promise<{ status?: number; body?: unknown; code?: string }> {
  const script = `fetch(${JSON.stringify(url)}, { signal: AbortSignal.timeout(10000) }).then(
    async (r) => console.log(JSON.stringify({ status: r.status, body: await r.json() })),
    (e) => console.log(JSON.stringify({ code: e.cause?.code ?? e.name })),
  );`;
  const result = await run(NODE, ['-e', script], {}, ns);
  assert.equal(result.status, 0, result.stderr);
  return JSON.parse(result.stdout);
}

test('network isolation: the copy site in its own namespace pulls from the primary vault in another; the primary has no route to the copy', {
  skip: whyNoNamespaces(),
}, async (t) => {
  // Registered first, so it runs last: after every server it started has been stopped.
  t.after(() => {
    removeNamespace(NS_PRIMARY);
    removeNamespace(NS_COPY);
    const left = ip('netns', 'list').stdout;
    assert.ok(!left.includes(NS_PRIMARY) && !left.includes(NS_COPY), left);
  });
  const setup = [
    ['netns', 'add', NS_PRIMARY],
    ['netns', 'add', NS_COPY],
    // One veth pair, made with its ends inside the namespaces: nothing is added to this host's own network.
    ['link', 'add', 'vp', 'netns', NS_PRIMARY, 'type', 'veth', 'peer', 'name', 'vc', 'netns', NS_COPY],
    ['-n', NS_PRIMARY, 'link', 'set', 'lo', 'up'],
    ['-n', NS_COPY, 'link', 'set', 'lo', 'up'],
    ['-n', NS_PRIMARY, 'addr', 'add', `${PRIMARY_ADDR}/32`, 'dev', 'vp'],
    ['-n', NS_COPY, 'addr', 'add', `${COPY_ADDR}/32`, 'dev', 'vc'],
    // IPv4 only: no IPv6 link-local addresses, which would join the two sites without any route.
    ['-n', NS_PRIMARY, 'link', 'set', 'vp', 'addrgenmode', 'none'],
    ['-n', NS_COPY, 'link', 'set', 'vc', 'addrgenmode', 'none'],
    ['-n', NS_PRIMARY, 'link', 'set', 'vp', 'up'],
    ['-n', NS_COPY, 'link', 'set', 'vc', 'up'],
    // The copy site routes to the primary's address ...
    ['-n', NS_COPY, 'route', 'add', `${PRIMARY_ADDR}/32`, 'dev', 'vc'],
    // ... and the primary has no route to the copy. Only its vault's answers (TCP from its port) find
    // their way back, through a table of their own, as a stateful firewall lets answers through:
    // nothing the primary starts, on any other port, can reach the copy site.
    ['-n', NS_PRIMARY, 'route', 'add', `${COPY_ADDR}/32`, 'dev', 'vp', 'table', '100'],
    ['-n', NS_PRIMARY, 'rule', 'add', 'ipproto', 'tcp', 'sport', String(PRIMARY_PORT), 'lookup', '100'],
  ];
  for (const args of setup) {
    const done = ip(...args);
    assert.equal(done.status, 0, `ip ${args.join(' ')}: ${done.stderr}`);
  }
  assert.equal(ip('-n', NS_COPY, 'route', 'get', PRIMARY_ADDR).status, 0, 'the copy site routes to the primary');
  for (const ns of [NS_PRIMARY, NS_COPY]) assert.doesNotMatch(ip('-n', ns, 'addr').stdout, /inet6 (?!::1\/128)/);
  for (const extra of [[], ['ipproto', 'tcp', 'sport', '40000'], ['ipproto', 'udp', 'sport', String(PRIMARY_PORT)]]) {
    const route = ip('-n', NS_PRIMARY, 'route', 'get', COPY_ADDR, ...extra);
    assert.notEqual(route.status, 0, `the primary has no route to the copy (${extra.join(' ')}): ${route.stdout}`);
    assert.match(route.stderr, /Network is unreachable/);
  }

  const dir = await tempDir(t, 'netns');
  // The primary site, all inside P: its vault on P's address, and the admin and backup client that use it.
  const primaryData = join(dir, 'primary-vault');
  const admin = await makeToken(primaryData, 'admin', 'finance');
  const writer = await makeToken(primaryData, 'writer', 'finance');
  const reader = await makeToken(primaryData, 'reader', 'finance');
  const primaryVault = await startVault(t, primaryData, `${PRIMARY_ADDR}:${PRIMARY_PORT}`, { ns: NS_PRIMARY });
  const primaryRepo = `http://${PRIMARY_ADDR}:${PRIMARY_PORT}/finance`;
  assert.equal(primaryVault.url, `http://${PRIMARY_ADDR}:${PRIMARY_PORT}`);
  const primarySite = (token: string) => site(join(dir, 'primary-site'), 'primary pass', { AMBER_VAULT_TOKEN: token });
  await amberJson(['init', '--repo', primaryRepo], primarySite(admin.token), NS_PRIMARY);
  const source = join(dir, 'source');
  await writeSource(source, 'netns');
  const backup = await amberJson(['backup', '--repo', primaryRepo, source], primarySite(writer.token), NS_PRIMARY);

  // The copy site, all inside C: a vault of its own on C's address (every address of C: 0.0.0.0),
  // with its own tokens; of the primary it holds only the reader token and the passphrase.
  const copyData = join(dir, 'copy-vault');
  const copyAdmin = await makeToken(copyData, 'admin', 'copy');
  const copyWriter = await makeToken(copyData, 'writer', 'copy');
  const copyReader = await makeToken(copyData, 'reader', 'copy');
  await startVault(t, copyData, `0.0.0.0:${COPY_PORT}`, { ns: NS_COPY });
  const copyRepo = `http://${COPY_ADDR}:${COPY_PORT}/copy`;
  const readerFile = join(dir, 'primary-reader.token');
  const passFile = join(dir, 'primary.pass');
  await writeFile(readerFile, `${reader.token}\n`, { mode: 0o600 });
  await writeFile(passFile, 'primary pass\n', { mode: 0o600 });
  const from = ['--from-repo', primaryRepo, '--from-token-file', readerFile, '--from-password-file', passFile];
  const copySite = (token: string) => site(join(dir, 'copy-site'), 'copy pass', { AMBER_VAULT_TOKEN: token });
  const init = await amberJson(['init', '--repo', copyRepo, ...from], copySite(copyAdmin.token), NS_COPY);
  assert.equal(init.copyOf.location, primaryRepo);
  const copied = await amberJson(['copy', '--repo', copyRepo, ...from], copySite(copyWriter.token), NS_COPY);
  assert.deepEqual(
    copied.copied.map((c: { source: string }) => c.source),
    [backup.id],
  );
  assert.deepEqual([copied.failed, copied.ignored], [[], []]);
  assert.deepEqual(
    (await accessLog(primaryData, 'finance')).filter((line) => line.token === reader.id),
    [],
    'the copy site wrote nothing to the primary',
  );

  // The copy's vault answers on C's address, to the copy site itself ...
  const health = `http://${COPY_ADDR}:${COPY_PORT}/v1/health`;
  assert.deepEqual(await probeFrom(NS_COPY, health), { status: 200, body: { status: 'ok' } });
  // ... and the primary cannot reach it: no route, at once, for the vault's host as for any other.
  assert.deepEqual(await probeFrom(NS_PRIMARY, health), { code: 'ENETUNREACH' });
  assert.deepEqual(await probeFrom(NS_PRIMARY, `http://${COPY_ADDR}:${COPY_PORT}/v1/repos/copy/objects/config`), {
    code: 'ENETUNREACH',
  });

  // With the primary's vault stopped, the copy site restores from its own vault with a reader token of it.
  await primaryVault.stop();
  const restored = join(dir, 'restored');
  const restore = await amber(
    ['restore', 'latest', '--repo', copyRepo, '--target', restored],
    copySite(copyReader.token),
    NS_COPY,
  );
  assert.equal(restore.status, 0, restore.stderr);
  assert.deepEqual(await compareTrees(source, join(restored, source), { ignoreRootMeta: true }), []);
});
