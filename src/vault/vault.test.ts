// The vault against real HTTP on 127.0.0.1: backups through it restore bit for bit and dedup across
// clients; a writer token cannot delete, overwrite, forge, shorten, read the audit log or escape the
// object namespace; a reader cannot write; a revoked token stops at once; a wrong token learns nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { systemClock } from '../core/clock.ts';
import { initRepository, openRepository } from '../repo/repository.ts';
import { createHttpStore } from '../storage/http/http-store.ts';
import { createS3Store } from '../storage/s3/s3-store.ts';
import {
  fingerprintTree,
  makeTempDir,
  removeTree,
  seededBytes,
  TEST_PASSPHRASE,
  useTemporaryWriterCache,
} from '../testing/repo-fixture.ts';
import { backup } from '../engine/backup.ts';
import { restore } from '../engine/restore.ts';
import { verify } from '../engine/verify.ts';
import { findSnapshot } from '../engine/snapshots.ts';
import { startVault } from './server.ts';
import { createToken, revokeToken, type Role } from './tokens.ts';
import { putRequest } from '../governance/requests.ts';
import type { Store } from '../storage/store.ts';
import { freshS3Store, s3Env, whenS3 } from '../testing/s3-fixture.ts';
import { decisionMessage } from '../governance/requests.ts';
import { testOperation, testRetentionClock } from '../testing/operation.ts';

async function vaultFixture(t: { after(fn: () => unknown): void }, label: string, backing?: (repo: string) => Store) {
  const dir = await makeTempDir(label);
  useTemporaryWriterCache(dir);
  const dataDir = join(dir, 'data');
  const vault = await startVault({
    dataDir,
    port: 0,
    clock: systemClock,
    retentionClock: testRetentionClock(systemClock),
    storeFor: backing,
  });
  t.after(async () => {
    await vault.close();
    await removeTree(dir);
  });
  const token = (role: Role, repo = 'team') => createToken(dataDir, { role, repo, nowMs: Date.now() }).token;
  const storeFor = (secret: string, repo = 'team') =>
    createHttpStore(`${vault.url}/${repo}`, { token: secret, attempts: 1 });
  const admin = storeFor(token('admin'));
  await admin.createRepository();
  const owner = testOperation(
    await initRepository({ store: admin, passphrase: TEST_PASSPHRASE, clock: systemClock, kdfLogN: 10 }),
  );
  const openAs = (secret: string) =>
    openRepository({ store: storeFor(secret), passphrase: TEST_PASSPHRASE, clock: systemClock }).then((opened) =>
      testOperation(opened),
    );
  return { dir, dataDir, vault, token, storeFor, owner, openAs, repoDir: join(dataDir, 'repos', 'team') };
}

/** A raw request, so that paths reach the server exactly as written (fetch would normalise `..`). */
function raw(
  url: string,
  method: string,
  path: string,
  token: string,
  body?: Buffer,
): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: hostname,
        port,
        method,
        path,
        headers: { authorization: `Bearer ${token}`, 'content-length': body?.length ?? 0 },
      },
      (res) => {
        let text = '';
        res.on('data', (chunk) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

test('backups through the vault restore bit for bit and verify; four clients at once succeed and dedup', async (t) => {
  const { dir, token, openAs } = await vaultFixture(t, 'vault-roundtrip');
  const shared = seededBytes(3_000_000, 'shared');
  const sources = await Promise.all(
    [0, 1, 2, 3].map(async (i) => {
      const source = join(dir, `source-${i}`);
      await fs.mkdir(join(source, 'nested'), { recursive: true });
      await fs.writeFile(join(source, 'shared.bin'), shared);
      await fs.writeFile(join(source, 'nested', `own-${i}.bin`), seededBytes(400_000 + i, `own-${i}`));
      await fs.writeFile(join(source, 'notes.txt'), `client ${i}\n`.repeat(500));
      return source;
    }),
  );
  const clients = await Promise.all(sources.map(() => openAs(token('writer'))));
  const results = await Promise.all(clients.map((repo, i) => backup({ repo, paths: [sources[i]] })));
  assert.equal(new Set(results.map(({ snapshotId }) => snapshotId)).size, 4);

  // A fifth client with the shared data finds every chunk stored already.
  const again = join(dir, 'again');
  await fs.mkdir(again);
  await fs.writeFile(join(again, 'copy-of-shared.bin'), shared);
  const fifth = await backup({ repo: await openAs(token('writer')), paths: [again] });
  assert.ok(
    fifth.snapshot.summary.bytesAdded < 10_000,
    `dedup across clients: ${fifth.snapshot.summary.bytesAdded} bytes added`,
  );

  const reader = await openAs(token('reader'));
  for (const [i, { snapshotId }] of results.entries()) {
    const target = join(dir, `restore-${i}`);
    await restore({ repo: reader, snapshot: await findSnapshot(reader, snapshotId), target });
    assert.deepEqual(await fingerprintTree(join(target, sources[i])), await fingerprintTree(sources[i]));
  }
  const checked = await verify({ repo: reader, readDataFraction: 1 });
  assert.deepEqual(checked.problems, []);
  assert.equal(checked.snapshots, 5);
});

test('a writer token can neither delete, overwrite, forge, shorten, hold, approve, read the audit log nor escape the namespace', async (t) => {
  const { dir, vault, token, owner, openAs, repoDir } = await vaultFixture(t, 'vault-writer-attacks');
  const source = join(dir, 'source');
  await fs.mkdir(source);
  await fs.writeFile(join(source, 'a.bin'), seededBytes(200_000, 'a'));
  await backup({ repo: await openAs(token('writer')), paths: [source] });
  const writer = token('writer');
  const before = await fingerprintTree(repoDir);
  const pack = [...before.keys()].find((name) => name.startsWith('data/') && before.get(name) !== 'dir')!;
  const audit = [...before.keys()].find((name) => name.startsWith('audit/') && before.get(name) !== 'dir')!;
  const junk = Buffer.from('not what the name says');
  const attempts: [string, string, number, Buffer?][] = [
    ['DELETE', 'objects/config', 403],
    ['DELETE', `objects/${pack}`, 403],
    ['PUT', `objects/${pack}`, 409, await fs.readFile(join(repoDir, pack))],
    ['PUT', `objects/data/ab/${'ab'.repeat(32)}`, 422, junk],
    ['PUT', `objects/holds/${sha(junk)}`, 403, junk],
    ['PUT', `objects/decisions/${sha(junk)}`, 403, junk],
    ['PUT', `objects/policies/${sha(junk)}`, 403, junk],
    ['PUT', 'objects/config', 403, junk],
    ['GET', `objects/${audit}`, 403],
    [
      'POST',
      'protect',
      409,
      Buffer.from(JSON.stringify({ names: [pack], untilMs: Date.now() - 1000, mode: 'governance' })),
    ],
    ['POST', '../tokens', 400, Buffer.from('{"role":"admin"}')],
    ['GET', 'objects/../config', 400],
    ['GET', 'objects/data%2F..%2Fconfig', 400],
    ['PUT', 'objects/snapshots/%2e%2e', 400, junk],
    ['PUT', `objects/snapshots/${'a'.repeat(600)}`, 400, junk],
    ['GET', 'objects/tmp/anything', 400],
  ];
  for (const [method, path, status, body] of attempts) {
    const response = await raw(vault.url, method, `/v1/repos/team/${path}`, writer, body);
    assert.equal(response.status, status, `${method} ${path.slice(0, 60)}: ${response.body}`);
    assert.match(JSON.parse(response.body).error.code, /^[A-Z_]+$/, 'errors are JSON with a stable code');
  }
  assert.deepEqual(await fingerprintTree(repoDir), before, 'nothing changed on disk');
  // The owner's own protection is unchanged too.
  assert.ok((await owner.store.protection(['config']))[0]);
});

test('a reader cannot write; a revoked token stops at once; a wrong token learns nothing about repositories', async (t) => {
  const { vault, token, dataDir } = await vaultFixture(t, 'vault-identities');
  const reader = token('reader');
  const blob = Buffer.from('x');
  assert.equal((await raw(vault.url, 'PUT', `/v1/repos/team/objects/index/${sha(blob)}`, reader, blob)).status, 403);
  assert.equal((await raw(vault.url, 'GET', '/v1/repos/team/objects/config', reader)).status, 200);

  const writerToken = createToken(dataDir, { role: 'writer', repo: 'team', nowMs: Date.now() });
  assert.equal((await raw(vault.url, 'GET', '/v1/repos/team/objects/config', writerToken.token)).status, 200);
  revokeToken(dataDir, writerToken.info.id, Date.now());
  assert.equal((await raw(vault.url, 'GET', '/v1/repos/team/objects/config', writerToken.token)).status, 401);

  const wrong = `amber_${'0'.repeat(16)}_${'A'.repeat(43)}`;
  const existing = await raw(vault.url, 'GET', '/v1/repos/team/objects/config', wrong);
  const missing = await raw(vault.url, 'GET', '/v1/repos/nothing-here/objects/config', wrong);
  assert.deepEqual([existing.status, existing.body], [missing.status, missing.body]);
  assert.equal(existing.status, 401);
  // A valid token for one repository sees another, existing or not, the same way.
  const other = token('reader', 'other');
  const outOfScope = await raw(vault.url, 'GET', '/v1/repos/team/objects/config', other);
  const nonexistent = await raw(vault.url, 'GET', '/v1/repos/ghost/objects/config', other);
  assert.equal(outOfScope.status, 404);
  assert.equal(JSON.parse(outOfScope.body).error.code, JSON.parse(nonexistent.body).error.code);
  const health = await fetch(`${vault.url}/v1/health`);
  assert.deepEqual(await health.json(), { status: 'ok' });
  assert.match(
    await (await fetch(`${vault.url}/metrics`)).text(),
    /amber_vault_requests_total\{method="GET",status="401"\} [1-9]/,
  );
});

test('the vault deletes only what an owner-signed condemn notice named, after its grace, once expired; a maintainer prunes through it', async (t) => {
  const { dir, vault, token, openAs, repoDir } = await vaultFixture(t, 'vault-prune');
  const source = join(dir, 'source');
  await fs.mkdir(source);
  await fs.writeFile(join(source, 'old.bin'), seededBytes(300_000, 'old'));
  const writer = await openAs(token('writer'));
  const short = await backup({ repo: writer, paths: [source], retainMs: 1_000 });
  await fs.rm(join(source, 'old.bin'));
  await fs.writeFile(join(source, 'new.bin'), seededBytes(300_000, 'new'));
  const kept = await backup({ repo: writer, paths: [source], retainMs: 3_600_000 });
  const maintainerToken = token('maintainer');
  const maintainer = await openAs(maintainerToken);

  // Nothing is condemned yet: a maintainer cannot delete on its own say-so.
  const keptSnapshot = `snapshots/${kept.snapshotId}`;
  const early = await raw(vault.url, 'DELETE', `/v1/repos/team/objects/${keptSnapshot}`, maintainerToken);
  assert.equal(early.status, 409);
  assert.match(JSON.parse(early.body).error.message, /not named by any condemn notice/);

  // A condemn notice naming the locked snapshot is refused by the vault itself.
  const { putRecord, CONDEMNS } = await import('../repo/retention-records.ts');
  await assert.rejects(
    putRecord(maintainer, CONDEMNS, {
      time: new Date().toISOString(),
      graceMs: 0,
      objects: [{ name: keptSnapshot, sizeBytes: 1 }],
    }),
    (error: Error & { code?: string }) => error.code === 'RETENTION_ACTIVE' && /retained until/.test(error.message),
  );

  await new Promise((resolve) => setTimeout(resolve, 1_500));
  const { forget } = await import('../protection/forget.ts');
  const { prune } = await import('../protection/prune.ts');
  assert.deepEqual(
    (await forget({ repo: maintainer, keep: { last: 1 } })).forgotten.map(({ snapshotId }) => snapshotId),
    [short.snapshotId],
  );
  const first = await prune({ repo: maintainer, graceMs: 0 });
  assert.ok(first.condemned.length >= 2, 'the old snapshot and its pack are condemned');
  const second = await prune({ repo: maintainer, graceMs: 0 });
  assert.deepEqual(second.deleted.map(({ name }) => name).sort(), first.condemned.map(({ name }) => name).sort());
  await assert.rejects(fs.stat(join(repoDir, `snapshots/${short.snapshotId}`)));
  const checked = await verify({ repo: await openAs(token('reader')), readDataFraction: 1 });
  assert.deepEqual(checked.problems, []);
  assert.equal(checked.snapshots, 1);
});

test('a vault the owner accepted as witness signs one audit entry per burst of requests, naming the tokens that made them', async (t) => {
  const { dir, dataDir, token, owner, storeFor, openAs } = await vaultFixture(t, 'vault-witness');
  const { addWitness } = await import('../protection/key-admin.ts');
  const { readAuditLog, verifyAudit } = await import('../governance/audit-log.ts');
  const adminStore = storeFor(token('admin'));
  const witnessKey = (await adminStore.witnessKey())!;
  assert.match(witnessKey, /^[0-9a-f]{64}$/);
  assert.ok(await addWitness(owner, witnessKey, 'test vault'));
  assert.equal(await addWitness(owner, witnessKey, 'test vault'), undefined, 'accepting it twice changes nothing');

  const source = join(dir, 'source');
  await fs.mkdir(source);
  await fs.writeFile(join(source, 'a.bin'), seededBytes(200_000, 'witnessed'));
  const writerToken = createToken(dataDir, { role: 'writer', repo: 'team', label: 'db1', nowMs: Date.now() });
  await backup({ repo: await openAs(writerToken.token), paths: [source] });

  // The snapshot upload completes the operation: the vault writes its entry without waiting.
  const auditor = storeFor(token('auditor'));
  const { openRepositoryView } = await import('../repo/repository.ts');
  let entries: Awaited<ReturnType<typeof readAuditLog>>['entries'] = [];
  for (
    let waited = 0;
    waited < 5_000 && !entries.some(({ entry }) => entry.action === 'vault.requests');
    waited += 50
  ) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    entries = (await readAuditLog(await openRepositoryView(auditor))).entries;
  }
  const vaultEntries = entries.filter(({ entry }) => entry.action === 'vault.requests');
  assert.ok(vaultEntries.length >= 1, 'the vault put the requests on the record');
  const tokens = vaultEntries.flatMap(
    ({ entry }) => entry.details.tokens as { token: string; label: string; requests: number }[],
  );
  const byWriter = tokens.filter(({ token: id }) => id === writerToken.info.id);
  assert.ok(byWriter.length > 0 && byWriter.every(({ label }) => label === 'db1'));
  assert.ok(
    byWriter.reduce((sum, { requests }) => sum + requests, 0) >= 3,
    'packs, index, grant and snapshot uploads are counted',
  );
  const view = await openRepositoryView(auditor);
  assert.match(view.authority.describe(vaultEntries[0].signerKeyId), /^witness test vault/);
  assert.deepEqual((await verifyAudit(view)).problems, []);
});

test('lock extend through the vault extends what it must and asks for nothing shorter', async (t) => {
  const { dir, token, openAs } = await vaultFixture(t, 'vault-extend');
  const source = join(dir, 'source');
  await fs.mkdir(source);
  await fs.writeFile(join(source, 'a.bin'), seededBytes(200_000, 'extend'));
  const writer = await openAs(token('writer'));
  const first = await backup({ repo: writer, paths: [source], retainMs: 3_600_000 });
  await backup({ repo: writer, paths: [source], retainMs: 90 * 86_400_000 });
  const { extendLock } = await import('../protection/locks.ts');
  const { lockStatus } = await import('../engine/lock-coverage.ts');
  // The first snapshot's packs are held 90 days by the second; extending it to 30 days asks nothing of them.
  const extended = await extendLock({
    repo: await openAs(token('admin')),
    snapshot: first.snapshotId,
    untilMs: Date.now() + 30 * 86_400_000,
  });
  assert.equal(extended.snapshotId, first.snapshotId);
  const [status] = await lockStatus({ repo: await openAs(token('reader')), snapshot: first.snapshotId });
  assert.equal(status.covered, true, JSON.stringify(status.gaps));
});

test('the vault keeps everything a held snapshot needs, even after its lock ends, whoever condemns it', async (t) => {
  const { dir, token, openAs } = await vaultFixture(t, 'vault-hold');
  const source = join(dir, 'source');
  await fs.mkdir(source);
  await fs.writeFile(join(source, 'evidence.bin'), seededBytes(250_000, 'evidence'));
  const held = await backup({ repo: await openAs(token('writer')), paths: [source], retainMs: 1_000 });
  const { addHold } = await import('../protection/holds.ts');
  const hold = await addHold(await openAs(token('admin')), { snapshot: held.snapshotId, reason: 'case 12' });
  const pack = hold.objects!.find((name) => name.startsWith('data/'))!;
  assert.ok(pack, 'the hold names the packs the snapshot needs');
  await new Promise((resolve) => setTimeout(resolve, 1_500));
  const { putRecord, CONDEMNS } = await import('../repo/retention-records.ts');
  const maintainer = await openAs(token('maintainer'));
  for (const name of [pack, `snapshots/${held.snapshotId}`]) {
    await assert.rejects(
      putRecord(maintainer, CONDEMNS, {
        time: new Date().toISOString(),
        graceMs: 0,
        objects: [{ name, sizeBytes: 1 }],
      }),
      (error: Error & { code?: string }) =>
        error.code === 'RETENTION_ACTIVE' && /legal hold \(case 12\)/.test(error.message),
    );
  }
});

test('the vault itself refuses policy links that loosen a locked policy or fork the chain, whatever client writes them', async (t) => {
  const { token, openAs } = await vaultFixture(t, 'vault-policy');
  const admin = await openAs(token('admin'));
  const { setPolicy, lockPolicy, showPolicy } = await import('../protection/policy-admin.ts');
  const first = await setPolicy(admin, { minRetentionMs: 7 * 86_400_000 });
  const locked = await lockPolicy(admin, 0);
  // A modified client with the owner key and an admin token skips its own checks and writes the links itself.
  const { putRecord, POLICIES } = await import('../repo/retention-records.ts');
  const loosen = {
    time: new Date().toISOString(),
    previous: locked.head,
    settings: { ...locked.settings, minRetentionMs: 1_000 },
    lock: locked.lock,
  };
  await assert.rejects(
    putRecord(admin, POLICIES, loosen),
    (error: Error & { code?: string }) => error.code === 'POLICY_LOCKED' && /tightened/.test(error.message),
  );
  const fork = { time: new Date().toISOString(), previous: first.head, settings: first.settings, lock: null };
  await assert.rejects(
    putRecord(admin, POLICIES, fork),
    (error: Error & { code?: string }) =>
      error.code === 'POLICY_LOCKED' && /does not continue the policy chain/.test(error.message),
  );
  const unlock = { time: new Date().toISOString(), previous: locked.head, settings: locked.settings, lock: null };
  await assert.rejects(
    putRecord(admin, POLICIES, unlock),
    (error: Error & { code?: string }) => error.code === 'POLICY_LOCKED',
  );
  const forged = { ...loosen, approval: 'ab'.repeat(32) };
  await assert.rejects(
    putRecord(admin, POLICIES, forged),
    (error: Error & { code?: string }) => error.code === 'APPROVAL_REQUIRED',
  );
  // Tightening passes.
  const tighter = await setPolicy(admin, { minRetentionMs: 14 * 86_400_000 });
  assert.equal((await showPolicy(admin)).settings.minRetentionMs, tighter.settings.minRetentionMs);
});

test('an approver token files only decisions its named key signed, on requests the repository holds', async (t) => {
  const { vault, token, owner, repoDir } = await vaultFixture(t, 'vault-decisions');
  const request = await putRequest(owner, {
    repository: owner.config.repositoryId,
    kind: 'unlock',
    target: 'a'.repeat(64),
    parameters: { reason: 'test' },
    requester: { name: 'owner', keyId: owner.key.keyId },
    created: new Date().toISOString(),
    expires: new Date(Date.now() + 3_600_000).toISOString(),
    nonce: 'n1',
  });
  const alice = generateKeyPairSync('ed25519');
  const mallory = generateKeyPairSync('ed25519');
  const rawKey = (key: KeyObject) => Buffer.from(key.export({ format: 'jwk' }).x!, 'base64url').toString('hex');
  const decision = (forRequest: string, signedBy: KeyObject, named: KeyObject) =>
    Buffer.from(
      `${JSON.stringify({
        type: 'amber-decision',
        request: forRequest,
        decision: 'approve',
        approver: rawKey(named),
        signature: sign(null, decisionMessage(forRequest, 'approve'), signedBy).toString('base64'),
      })}\n`,
    );
  const approver = token('approver');
  const put = (bytes: Buffer) =>
    raw(vault.url, 'PUT', `/v1/repos/team/objects/decisions/${sha(bytes)}`, approver, bytes);
  const before = await fingerprintTree(repoDir);
  const refusals: [Buffer, number, string][] = [
    [Buffer.from('{"type":"amber-decision"}'), 422, 'OBJECT_CORRUPT'],
    [decision(request, mallory.privateKey, alice.publicKey), 422, 'SIGNATURE_INVALID'],
    [decision('b'.repeat(64), alice.privateKey, alice.publicKey), 404, 'OBJECT_NOT_FOUND'],
  ];
  for (const [bytes, status, code] of refusals) {
    const response = await put(bytes);
    assert.equal(response.status, status, response.body);
    assert.equal(JSON.parse(response.body).error.code, code);
  }
  assert.deepEqual(await fingerprintTree(repoDir), before, 'no refused decision reached the disk');
  assert.equal((await put(decision(request, alice.privateKey, alice.publicKey))).status, 201);
});

whenS3(() => {
  test('a vault keeping its objects in S3: backups restore and verify, every object carries its lock in the bucket, and a writer still cannot delete', async (t) => {
    const bucket = await freshS3Store();
    const perRepo = (repo: string) =>
      createS3Store(
        { endpoint: s3Env!.endpoint, bucket: bucket.bucket, prefix: repo },
        { clock: systemClock, credentials: s3Env!.credentials, region: s3Env!.region },
      );
    const { dir, vault, token, openAs, dataDir } = await vaultFixture(t, 'vault-s3', perRepo);
    const source = join(dir, 'source');
    await fs.mkdir(source);
    await fs.writeFile(join(source, 'a.bin'), seededBytes(700_000, 'vault-s3'));
    const { snapshotId } = await backup({ repo: await openAs(token('writer')), paths: [source], retainMs: 86_400_000 });
    const reader = await openAs(token('reader'));
    const target = join(dir, 'restored');
    await restore({ repo: reader, snapshot: await findSnapshot(reader, snapshotId), target });
    assert.deepEqual(await fingerprintTree(join(target, source)), await fingerprintTree(source));
    assert.deepEqual((await verify({ repo: reader, readDataFraction: 1 })).problems, []);

    const inBucket = perRepo('team');
    const names: string[] = [];
    for await (const { name } of inBucket.list('')) names.push(name);
    assert.ok(names.includes(`snapshots/${snapshotId}`) && names.some((name) => name.startsWith('data/')));
    for (const held of await inBucket.protection(names.filter((name) => /^(data|snapshots)\//.test(name)))) {
      assert.ok(held.locked && held.untilMs! > Date.now() + 86_000_000, `${held.name} is locked in the bucket itself`);
    }
    const pack = names.find((name) => name.startsWith('data/'))!;
    assert.equal((await raw(vault.url, 'DELETE', `/v1/repos/team/objects/${pack}`, token('writer'))).status, 403);
    assert.equal(
      (await raw(vault.url, 'DELETE', `/v1/repos/team/objects/${pack}`, token('maintainer'))).status,
      409,
      'nor can a maintainer, without a condemn notice',
    );
    await fs.access(join(dataDir, 'repos', 'team'));
  });
});
