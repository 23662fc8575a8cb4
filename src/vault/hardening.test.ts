// The red team's attacks on the vault, each made as an attacker would make it: real HTTP to a vault
// on 127.0.0.1, real tokens of the role named, raw request targets where fetch would normalise them.
// Each test shows the attack refused with a clear JSON error and nothing stored or logged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { systemClock } from '../core/clock.ts';
import { initRepository, openRepository } from '../repo/repository.ts';
import { createHttpStore } from '../storage/http/http-store.ts';
import {
  fingerprintTree,
  makeTempDir,
  removeTree,
  TEST_PASSPHRASE,
  useTemporaryWriterCache,
} from '../testing/repo-fixture.ts';
import { encodeSignedRecord, jsonBytes } from '../repo/signed-record.ts';
import { encodeHeader } from '../repo/object-header.ts';
import { startVault, type VaultOptions } from './server.ts';
import { createToken, type Role } from './tokens.ts';
import { testOperation, testRetentionClock } from '../testing/operation.ts';
import type { Operation } from '../governance/operation.ts';

type Extra = Partial<Omit<VaultOptions, 'dataDir' | 'clock'>>;

async function vaultFixture(t: { after(fn: () => unknown): void }, label: string, extra: Extra = {}, repos = ['team']) {
  const dir = await makeTempDir(label);
  useTemporaryWriterCache(dir);
  const dataDir = join(dir, 'data');
  const vault = await startVault({
    dataDir,
    port: 0,
    clock: systemClock,
    retentionClock: testRetentionClock(systemClock),
    ...extra,
  });
  t.after(async () => {
    await vault.close();
    await removeTree(dir);
  });
  const token = (role: Role, repo = 'team') => createToken(dataDir, { role, repo, nowMs: Date.now() }).token;
  const storeFor = (secret: string, repo = 'team') =>
    createHttpStore(`${vault.url}/${repo}`, { token: secret, attempts: 1 });
  const owners = new Map<string, Operation>();
  for (const repo of repos) {
    const admin = storeFor(token('admin', repo), repo);
    await admin.createRepository();
    owners.set(
      repo,
      testOperation(
        await initRepository({ store: admin, passphrase: TEST_PASSPHRASE, clock: systemClock, kdfLogN: 10 }),
      ),
    );
  }
  const openAs = (secret: string, repo = 'team') =>
    openRepository({ store: storeFor(secret, repo), passphrase: TEST_PASSPHRASE, clock: systemClock }).then((opened) =>
      testOperation(opened),
    );
  return {
    dir,
    dataDir,
    vault,
    token,
    storeFor,
    owner: owners.get(repos[0])!,
    owners,
    openAs,
    repoDir: (repo = 'team') => join(dataDir, 'repos', repo),
  };
}

interface Answer {
  status: number;
  body: string;
  code?: string;
  message?: string;
}

/** A request whose target reaches the server exactly as written (fetch would fold `..` and `%2e`). */
function raw(url: string, method: string, path: string, token: string, body?: Buffer | string): Promise<Answer> {
  const { hostname, port } = new URL(url);
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: hostname,
        port,
        method,
        path,
        headers: { authorization: `Bearer ${token}`, 'content-length': bytes?.length ?? 0 },
      },
      (res) => {
        let text = '';
        res.on('data', (chunk) => (text += chunk));
        res.on('end', () => {
          let error: { code?: string; message?: string } = {};
          try {
            error = JSON.parse(text).error ?? {};
          } catch {
            // not JSON: the assertion on the status says enough
          }
          resolve({ status: res.statusCode ?? 0, body: text, code: error.code, message: error.message });
        });
      },
    );
    req.on('error', reject);
    req.end(bytes);
  });
}

const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** A well-formed grant record, signed by `repo`'s key: what a writer may store under grants/. */
const grantBytes = (repo: Operation) =>
  encodeSignedRecord(
    'grant',
    jsonBytes({ time: new Date().toISOString(), snapshot: null, entries: [] }),
    repo.key.signer,
  );

test('dot segments, encoded or not, are refused with 400 and nothing is stored in or logged to any repository', async (t) => {
  const { vault, token, owners, dataDir, repoDir } = await vaultFixture(t, 'vault-dot-segments', {}, ['alpha', 'beta']);
  const alphaWriter = token('writer', 'alpha');
  const grant = grantBytes(owners.get('alpha')!);
  const name = `grants/${sha(grant)}`;
  const before = { alpha: await fingerprintTree(repoDir('alpha')), beta: await fingerprintTree(repoDir('beta')) };
  const logs = join(dataDir, 'vault', 'logs');
  const logOf = (repo: string) => fs.readFile(join(logs, `${repo}.jsonl`), 'utf8').catch(() => '');
  const logsBefore = { alpha: await logOf('alpha'), beta: await logOf('beta') };
  const attacks = [
    `/v1/repos/beta/objects/%2e%2e/%2e%2e/alpha/objects/${name}`, // the red team's: beta's log, alpha's disk
    `/v1/repos/beta/objects/../../alpha/objects/${name}`,
    `/v1/repos/beta/objects/%2E%2e/%2e%2E/alpha/objects/${name}`,
    `/v1/repos/beta/objects/.%2e/.%2e/alpha/objects/${name}`,
    `/v1/repos/alpha/objects/./${name}`,
    `/v1/repos/alpha/objects/grants/%2e/${name.slice('grants/'.length)}`,
    `/v1/repos/alpha/objects/%252e%252e/${name}`,
    `/v1/repos/alpha/objects/grants%2f${name.slice('grants/'.length)}`,
    `/v1/repos/alpha/objects/grants\\${name.slice('grants/'.length)}`,
    `/v1/repos/beta/objects/..\\..\\alpha\\objects\\${name}`,
    `/v1/repos/alpha/objects//${name}`,
    `/v1/repos/alpha/objects/${name}/.`,
  ];
  for (const path of attacks) {
    const answer = await raw(vault.url, 'PUT', path, alphaWriter, grant);
    assert.equal(answer.status, 400, `${path}: ${answer.body}`);
    assert.equal(answer.code, 'INVALID_OBJECT_NAME', path);
  }
  assert.deepEqual(await fingerprintTree(repoDir('alpha')), before.alpha, 'nothing reached alpha');
  assert.deepEqual(await fingerprintTree(repoDir('beta')), before.beta, 'nothing reached beta');
  assert.deepEqual(
    { alpha: await logOf('alpha'), beta: await logOf('beta') },
    logsBefore,
    'no refused path is logged to either repository',
  );

  // The same upload by its one plain path is stored and logged in alpha, under that path.
  assert.equal((await raw(vault.url, 'PUT', `/v1/repos/alpha/objects/${name}`, alphaWriter, grant)).status, 201);
  const last = JSON.parse((await logOf('alpha')).trimEnd().split('\n').at(-1)!);
  assert.deepEqual([last.path, last.status], [`/v1/repos/alpha/objects/${name}`, 201]);
  assert.equal(await logOf('beta'), logsBefore.beta);
});

test('wrong JSON on every JSON endpoint is 400 USAGE with a message, never 503 and never a stack in the log', async (t) => {
  const { vault, token } = await vaultFixture(t, 'vault-bad-json');
  const writer = token('writer');
  const wrong = [
    'null',
    '42',
    '[]',
    '"names"',
    'true',
    '{}',
    '{',
    '{"names":"config"}',
    '{"names":[1]}',
    '{"names":[null]}',
    '{"names":["../config"]}',
    '{"names":{"0":"config"}}',
  ];
  const wrongProtect = [
    '{"names":["config"]}',
    '{"names":["config"],"untilMs":"soon","mode":"governance"}',
    '{"names":["config"],"untilMs":1e20,"mode":"governance"}',
    '{"names":["config"],"untilMs":1.5,"mode":"governance"}',
    '{"names":["config"],"untilMs":-1,"mode":"governance"}',
    '{"names":["config"],"untilMs":null,"mode":"governance"}',
    '{"names":["config"],"untilMs":1,"mode":"forever"}',
    '{"names":["config"],"untilMs":1}',
  ];
  const written: string[] = [];
  const write = process.stderr.write;
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    written.push(String(chunk));
    return (write as (...args: unknown[]) => boolean).call(process.stderr, chunk, ...rest);
  }) as typeof process.stderr.write;
  try {
    for (const [endpoint, bodies] of [
      ['protection', wrong],
      ['protect', [...wrong, ...wrongProtect]],
    ] as const) {
      for (const body of bodies) {
        const answer = await raw(vault.url, 'POST', `/v1/repos/team/${endpoint}`, writer, body);
        assert.equal(answer.status, 400, `${endpoint} ${body}: ${answer.body}`);
        assert.equal(answer.code, 'USAGE', `${endpoint} ${body}`);
        assert.match(
          answer.message!,
          /^(protect|protection): |not JSON/,
          `${endpoint} ${body}: the message says what is wrong`,
        );
      }
    }
    const limit = await raw(vault.url, 'GET', '/v1/repos/team/objects?prefix=data/&limit=many', writer);
    assert.deepEqual([limit.status, limit.code], [400, 'USAGE']);
  } finally {
    process.stderr.write = write;
  }
  assert.deepEqual(
    written.filter((text) => /vault:|TypeError|\n\s+at /.test(text)),
    [],
    'no stack trace in the server log',
  );
  // A well-formed request still works.
  assert.equal((await raw(vault.url, 'POST', '/v1/repos/team/protection', writer, '{"names":["config"]}')).status, 200);
});

test('junk a writer uploads under snapshots/, index/, audit/ or data/ is refused by its form; every legitimate upload is still stored', async (t) => {
  const { dir, vault, token, owner, openAs, storeFor, repoDir } = await vaultFixture(t, 'vault-junk');
  const { addKey, rotateKey } = await import('../protection/key-admin.ts');
  const { setPolicy } = await import('../protection/policy-admin.ts');
  const { backup } = await import('../engine/backup.ts');
  const { verify } = await import('../engine/verify.ts');
  const { verifyAudit, writeCheckpoint } = await import('../governance/audit-log.ts');
  const { addHold } = await import('../protection/holds.ts');
  const { createRequest, approverAuthor, signDecision, submitDecision } = await import('../protection/approvals.ts');
  const { createApproverKey, unlockApproverKey } = await import('../governance/approver-key.ts');
  const { openRepositoryView } = await import('../repo/repository.ts');
  const { generateSigningKeyPair } = await import('../crypto/signing.ts');
  const { signerOf } = await import('../repo/keys.ts');

  // Everything a repository's life uploads, through the vault, each with the role that does it.
  const admin = await openAs(token('admin'));
  await addKey(admin, { passphrase: 'writer pass', role: 'write-only', kdfLogN: 10 });
  const approver = async () =>
    unlockApproverKey(JSON.stringify((await createApproverKey('pw', 10)).keyFile), 'pw', 'test');
  const [alice, bob] = await Promise.all([approver(), approver()]);
  await setPolicy(admin, {
    approvers: [
      { name: 'alice', publicKey: alice.publicKey.toString('hex') },
      { name: 'bob', publicKey: bob.publicKey.toString('hex') },
    ],
    quorum: 2,
  });
  const source = join(dir, 'source');
  await fs.mkdir(source);
  await fs.writeFile(join(source, 'a.bin'), Buffer.alloc(300_000, 7));
  const writeOnly = testOperation(
    await openRepository({ store: storeFor(token('writer')), passphrase: 'writer pass', clock: systemClock }),
  );
  const first = await backup({ repo: writeOnly, paths: [source], retainMs: 86_400_000 });
  await rotateKey(admin, { reason: 'yearly' });
  await fs.writeFile(join(source, 'b.bin'), Buffer.alloc(200_000, 9));
  await backup({ repo: writeOnly, paths: [source], retainMs: 86_400_000 });
  await addHold(admin, { snapshot: first.snapshotId, reason: 'case 7' });
  const request = await createRequest({ repo: admin, kind: 'unlock', target: first.snapshotId, reason: 'test' });
  const approverView = await openRepositoryView(storeFor(token('approver')));
  for (const key of [alice, bob])
    await submitDecision(
      await approverAuthor(approverView, systemClock, key, testRetentionClock(systemClock)),
      signDecision(request.id, 'approve', key),
    );
  // Carrying out the unlock grants again what the other, still locked snapshot shares with it.
  const { applyToStorage } = await import('../protection/storage-effects.ts');
  assert.ok((await applyToStorage(testOperation(admin, testRetentionClock(systemClock)), request.id)).regranted > 0);
  await writeCheckpoint(await openAs(token('maintainer')));

  // Junk whose bytes hash to their names, and well-formed records no key of the repository signed.
  const writer = token('writer');
  const junk = Buffer.from('hashes to its name, and is nothing');
  const stranger = signerOf(generateSigningKeyPair());
  const forged = (kind: 'snapshot' | 'grant' | 'audit' | 'index', payload: unknown) =>
    encodeSignedRecord(
      kind,
      kind === 'snapshot' || kind === 'index' ? Buffer.alloc(40, 1) : jsonBytes(payload),
      stranger,
    );
  const entry = {
    repository: owner.config.repositoryId,
    seq: 1,
    time: new Date().toISOString(),
    actor: 'x',
    action: 'backup',
    target: 'x',
    details: {},
    previous: [],
  };
  const fakePack = Buffer.concat([encodeHeader('pack'), Buffer.alloc(300, 3)]);
  const badGrant = encodeSignedRecord(
    'grant',
    jsonBytes({ time: 'never', snapshot: null, entries: 'all' }),
    owner.key.signer,
  );
  const ownerGrantAsSnapshot = grantBytes(owner);
  const forgedGrant = forged('grant', { time: new Date().toISOString(), snapshot: null, entries: [] });
  const attempts: [string, Buffer, number, string][] = [
    [`snapshots/${sha(junk)}`, junk, 422, 'OBJECT_CORRUPT'],
    [`index/${sha(junk)}`, junk, 422, 'OBJECT_CORRUPT'],
    [`audit/000000000001-${sha(junk)}`, junk, 422, 'OBJECT_CORRUPT'],
    [`data/${sha(junk)}`, junk, 400, 'INVALID_OBJECT_NAME'],
    [
      `data/${sha(junk).slice(2, 4) === sha(junk).slice(0, 2) ? 'zz' : sha(junk).slice(2, 4)}/${sha(junk)}`,
      junk,
      400,
      'INVALID_OBJECT_NAME',
    ],
    [`index/extra/${sha(junk)}`, junk, 400, 'INVALID_OBJECT_NAME'],
    [`audit/1-${sha(junk)}`, junk, 400, 'INVALID_OBJECT_NAME'],
    [`snapshots/${sha(junk).toUpperCase()}`, junk, 400, 'INVALID_OBJECT_NAME'],
    [`data/${sha(fakePack).slice(0, 2)}/${sha(fakePack)}`, fakePack, 422, 'SIGNATURE_INVALID'],
    [`snapshots/${sha(forged('snapshot', null))}`, forged('snapshot', null), 422, 'SIGNATURE_INVALID'],
    [`index/${sha(forged('index', null))}`, forged('index', null), 422, 'SIGNATURE_INVALID'],
    [`grants/${sha(forgedGrant)}`, forgedGrant, 422, 'SIGNATURE_INVALID'],
    [`audit/000000000001-${sha(forged('audit', entry))}`, forged('audit', entry), 422, 'SIGNATURE_INVALID'],
    [`grants/${sha(badGrant)}`, badGrant, 422, 'OBJECT_CORRUPT'],
    [`snapshots/${sha(ownerGrantAsSnapshot)}`, ownerGrantAsSnapshot, 422, 'OBJECT_CORRUPT'],
  ];
  const before = await fingerprintTree(repoDir());
  for (const [name, bytes, status, code] of attempts) {
    const answer = await raw(vault.url, 'PUT', `/v1/repos/team/objects/${name}`, writer, bytes);
    assert.equal(answer.status, status, `${name}: ${answer.body}`);
    assert.equal(answer.code, code, name);
    assert.ok(answer.message!.includes(name.slice(0, 40)), `the error names the object: ${answer.message}`);
  }
  assert.deepEqual(await fingerprintTree(repoDir()), before, 'no junk reached the disk');
  // So verify and audit verify still find nothing wrong.
  assert.deepEqual((await verify({ repo: await openAs(token('reader')), readDataFraction: 1 })).problems, []);
  assert.deepEqual((await verifyAudit(await openRepositoryView(storeFor(token('auditor'))))).problems, []);
});

test('a forget mark written under a clock 400 days ahead is refused by the vault; the locked snapshots stay listed, locked and restorable', async (t) => {
  const { dir, token, openAs, repoDir } = await vaultFixture(t, 'vault-forged-forget');
  const { backup } = await import('../engine/backup.ts');
  const { forget } = await import('../protection/forget.ts');
  const { listSnapshots, findSnapshot } = await import('../engine/snapshots.ts');
  const { lockStatus } = await import('../engine/lock-coverage.ts');
  const { putRecord, FORGETS } = await import('../repo/retention-records.ts');
  const source = join(dir, 'source');
  await fs.mkdir(source);
  await fs.writeFile(join(source, 'a.bin'), Buffer.alloc(100_000, 1));
  const writer = await openAs(token('writer'));
  const governance = await backup({ repo: writer, paths: [source], retainMs: 90 * 86_400_000 });
  const compliance = await backup({ repo: writer, paths: [source], retainMs: 90 * 86_400_000, lockMode: 'compliance' });
  await backup({ repo: writer, paths: [source], retainMs: 86_400_000 });

  // A maintainer token and the full key, on a host whose clock runs 400 days ahead, with no cache.
  const ahead = () => Date.now() + 400 * 86_400_000;
  const maintainer = await openAs(token('maintainer'));
  await assert.rejects(
    forget({ repo: testOperation(maintainer, { deletionNowMs: ahead, retentionBaseMs: ahead }), keep: { last: 1 } }),
    (error: Error & { code?: string }) =>
      error.code === 'RETENTION_ACTIVE' &&
      /forgets snapshot .* retained until .* by the vault's clock/.test(error.message),
  );
  // The same mark written by hand, one snapshot at a time: refused for each.
  for (const id of [governance.snapshotId, compliance.snapshotId]) {
    await assert.rejects(
      putRecord(maintainer, FORGETS, { time: new Date(ahead()).toISOString(), snapshots: [id], rule: 'last=1' }),
      (error: Error & { code?: string }) => error.code === 'RETENTION_ACTIVE',
    );
  }
  await assert.rejects(fs.readdir(join(repoDir(), 'forgets')), 'no forget mark was stored');
  const reader = await openAs(token('reader'));
  const listed = (await listSnapshots(reader)).map(({ id }) => id);
  assert.ok(listed.includes(governance.snapshotId) && listed.includes(compliance.snapshotId));
  for (const id of [governance.snapshotId, compliance.snapshotId]) {
    assert.equal((await findSnapshot(reader, id)).id, id);
    const [status] = await lockStatus({ repo: reader, snapshot: id });
    assert.equal(status.covered, true);
  }
});

test('protect is bounded by the grants and the policy: a writer cannot raise retention to 2100 in compliance or beyond the policy maximum', async (t) => {
  const { dir, vault, token, openAs, storeFor } = await vaultFixture(t, 'vault-protect-bounds');
  const { backup } = await import('../engine/backup.ts');
  const { extendLock } = await import('../protection/locks.ts');
  const { lockStatus } = await import('../engine/lock-coverage.ts');
  const { setPolicy } = await import('../protection/policy-admin.ts');
  const { addHold } = await import('../protection/holds.ts');
  const { putRecord, GRANTS } = await import('../repo/retention-records.ts');
  const source = join(dir, 'source');
  await fs.mkdir(source);
  await fs.writeFile(join(source, 'a.bin'), Buffer.alloc(100_000, 2));
  const writerToken = token('writer');
  const writer = await openAs(writerToken);
  const { snapshotId } = await backup({ repo: writer, paths: [source], retainMs: 7 * 86_400_000 });
  const names: string[] = [];
  for await (const { name } of storeFor(writerToken).list('data/')) names.push(name);
  const protect = (body: unknown) =>
    raw(vault.url, 'POST', '/v1/repos/team/protect', writerToken, JSON.stringify(body));
  const year2100 = Date.parse('2100-01-01T00:00:00Z');
  const refusals = [
    { names, untilMs: year2100, mode: 'compliance' },
    { names, untilMs: year2100, mode: 'governance' },
    { names: [`snapshots/${snapshotId}`], untilMs: Date.now() + 30 * 86_400_000, mode: 'governance' },
    { names, untilMs: Date.now() + 86_400_000, mode: 'compliance' }, // within the date, but a stronger mode than granted
  ];
  for (const body of refusals) {
    const answer = await protect(body);
    assert.equal(answer.status, 422, `${JSON.stringify(body).slice(0, 120)}: ${answer.body}`);
    assert.equal(answer.code, 'POLICY_VIOLATION');
    assert.match(answer.message!, /protect asks for .* to be retained until/);
  }
  assert.deepEqual([(await protect({ names, untilMs: 1e20, mode: 'compliance' })).status], [400], 'no date at all');
  // Records (config, keys, the audit log) are kept as long as anything, but not beyond the bound.
  const config = await protect({ names: ['config'], untilMs: year2100, mode: 'compliance' });
  assert.deepEqual([config.status, config.code], [422, 'POLICY_VIOLATION'], config.body);
  assert.match(config.message!, /beyond .*the vault's limit of 3650 days/);
  // What the grants give passes.
  assert.equal((await protect({ names, untilMs: Date.now() + 86_400_000, mode: 'governance' })).status, 200);

  // A grant beyond the policy's maximum is refused before it can make protect pass; so is a pack
  // upload that asks for it.
  await setPolicy(await openAs(token('admin')), { maxRetentionMs: 365 * 86_400_000 });
  const grant = {
    time: new Date().toISOString(),
    snapshot: null,
    entries: [{ mode: 'compliance' as const, until: new Date(year2100).toISOString(), objects: names }],
  };
  await assert.rejects(
    putRecord(writer, GRANTS, grant),
    (error: Error & { code?: string }) =>
      error.code === 'POLICY_VIOLATION' && /maximum retention of 365 days/.test(error.message),
  );
  await assert.rejects(
    putRecord(
      writer,
      GRANTS,
      { time: new Date().toISOString(), snapshot: null, entries: [] },
      { retainUntilMs: year2100, mode: 'compliance' },
    ),
    (error: Error & { code?: string }) =>
      error.code === 'POLICY_VIOLATION' && /the upload of grants\/.* asks for retention until 2100/.test(error.message),
  );

  // Legitimate raises still pass: a lock extended within the policy, a hold, a backup reusing the packs.
  const admin = await openAs(token('admin'));
  await extendLock({ repo: admin, snapshot: snapshotId, untilMs: Date.now() + 200 * 86_400_000 });
  assert.equal((await lockStatus({ repo: admin, snapshot: snapshotId }))[0].covered, true);
  await addHold(admin, { snapshot: snapshotId, reason: 'audit' });
  await backup({ repo: writer, paths: [source], retainMs: 300 * 86_400_000 });
  await assert.rejects(
    extendLock({ repo: admin, snapshot: snapshotId, untilMs: year2100 }),
    (error: Error & { code?: string }) => error.code === 'POLICY_VIOLATION',
  );
});

/** A PUT that declares `declared` bytes and sends one byte per tick, on a raw socket, until stopped. */
function trickle(url: string, path: string, token: string, declared: number) {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  socket.write(
    `PUT ${path} HTTP/1.1\r\nHost: ${hostname}\r\nAuthorization: Bearer ${token}\r\nContent-Length: ${declared}\r\n\r\n`,
  );
  let sent = 0;
  const ticks = setInterval(() => {
    if (!socket.destroyed && sent < 200) socket.write('x', () => (sent += 1));
  }, 25);
  let answer = '';
  socket.on('data', (chunk) => (answer += chunk));
  socket.on('error', () => undefined);
  const closed = new Promise<string>((resolve) =>
    socket.on('close', () => {
      clearInterval(ticks);
      resolve(answer);
    }),
  );
  return { closed, sentBytes: () => sent, stop: () => socket.destroy(), isOpen: () => !socket.destroyed };
}

const until = async (condition: () => boolean) => {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 10));
};

// A vault without these defences never answers: the time-outs turn a hang into a failure, they measure nothing.
test("two trickling uploads of one token do not hold up another token's small upload", {
  timeout: 60_000,
}, async (t) => {
  const share = 256 * 1024 * 1024;
  const { vault, token, owner } = await vaultFixture(t, 'vault-fair-budget', {
    memoryBudgetBytes: 2 * share,
    minUploadBytesPerSecond: 0,
  });
  const slow = token('writer');
  const name = `data/ab/${'ab'.repeat(32)}`;
  const trickles = [
    trickle(vault.url, `/v1/repos/team/objects/${name}`, slow, share),
    trickle(vault.url, `/v1/repos/team/objects/${name}`, slow, share),
  ];
  // Both have sent their headers and are trickling (the server has reserved what they declared).
  await until(() => trickles.every(({ sentBytes }) => sentBytes() >= 4));
  const grant = grantBytes(owner);
  const events: string[] = [];
  const small = raw(vault.url, 'PUT', `/v1/repos/team/objects/grants/${sha(grant)}`, token('writer'), grant).then(
    (answer) => {
      events.push('small upload answered');
      return answer;
    },
  );
  const bothClosed = Promise.all(trickles.map(({ closed }) => closed)).then(() => events.push('trickles closed'));
  // The trickles never end their bodies (they stop sending after 200 bytes and stay open).
  const answer = await small;
  assert.equal(events[0], 'small upload answered', 'the small upload completed while both trickles were still open');
  assert.ok(trickles.every(({ isOpen }) => isOpen()));
  assert.equal(answer.status, 201, answer.body);
  for (const { stop } of trickles) stop();
  await bothClosed;
});

test('an upload below the minimum rate is cut off with 408 and its reserved bytes go back to its token', {
  timeout: 60_000,
}, async (t) => {
  const share = 256 * 1024 * 1024;
  const { vault, token, owner } = await vaultFixture(t, 'vault-min-rate', {
    memoryBudgetBytes: 2 * share,
    minUploadBytesPerSecond: 64 * 1024,
    uploadGraceMs: 300,
  });
  const writer = token('writer');
  const slow = trickle(vault.url, `/v1/repos/team/objects/data/ab/${'ab'.repeat(32)}`, writer, share);
  await until(() => slow.sentBytes() >= 2);
  // The same token's next upload goes beside it (the slow one holds only what it has sent) or waits.
  const grant = grantBytes(owner);
  const next = raw(vault.url, 'PUT', `/v1/repos/team/objects/grants/${sha(grant)}`, writer, grant);
  // The trickle never ends its body: only the vault can close it.
  const cut = await slow.closed;
  assert.match(cut, /^HTTP\/1\.1 408 /);
  const body = JSON.parse(cut.slice(cut.indexOf('\r\n\r\n') + 4));
  assert.equal(body.error.code, 'UPLOAD_TOO_SLOW');
  assert.match(body.error.message, /slower than the vault's minimum of 65536 bytes a second/);
  const answer = await next;
  assert.equal(answer.status, 201, answer.body);
});

/** A PUT on a raw socket whose body the test sends when it likes; the answer parsed once it comes. */
function partialPut(url: string, path: string, token: string, declared: number) {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  socket.write(
    `PUT ${path} HTTP/1.1\r\nHost: ${hostname}\r\nAuthorization: Bearer ${token}\r\nContent-Length: ${declared}\r\n\r\n`,
  );
  let text = '';
  socket.on('data', (chunk) => (text += chunk));
  socket.on('error', () => undefined);
  const answer = new Promise<{ status: number; retryAfter?: string; code?: string }>((resolve) =>
    socket.on('close', () => {
      const [head, body = ''] = text.split('\r\n\r\n');
      let code: string | undefined;
      try {
        code = JSON.parse(body).error?.code;
      } catch {
        // no JSON: the status says enough
      }
      resolve({
        status: Number(head.split(' ')[1] ?? 0),
        retryAfter: /\r\nretry-after: *(\S+)/i.exec(head)?.[1],
        code,
      });
    }),
  );
  const answered = answer.then((a) => {
    socket.destroy();
    return a;
  });
  // The answer's end: the server closes after a cut-off answer; after another one, close it here.
  socket.on('data', () => {
    if (/\r\n\r\n\{.*\}$/s.test(text)) socket.end();
  });
  return { send: (bytes: Buffer) => socket.write(bytes), answer: answered };
}

/** A pack's header and then junk, named by its hash: read in full, then refused by its signature (422). */
function fakePack(size: number) {
  const header = encodeHeader('pack');
  const bytes = Buffer.concat([header, randomBytes(size - header.length)]);
  return { bytes, name: `data/${sha(bytes).slice(0, 2)}/${sha(bytes)}` };
}

const memoryInUse = async (url: string) =>
  Number(/^amber_vault_memory_bytes_in_use (\d+)$/m.exec(await (await fetch(`${url}/metrics`)).text())![1]);
const untilAsync = async (condition: () => Promise<boolean>) => {
  while (!(await condition())) await new Promise((resolve) => setTimeout(resolve, 10));
};

test('uploads that hold the whole memory budget between them and all wait for more do not deadlock: the oldest finishes, the rest finish or get 503 with Retry-After, and a retry goes through', {
  timeout: 60_000,
}, async (t) => {
  const size = 1024 * 1024;
  const quarter = size / 4;
  const { vault, token } = await vaultFixture(t, 'vault-interleave', {
    memoryBudgetBytes: size,
    maxObjectBytes: size,
    budgetStepBytes: 64 * 1024,
    minUploadBytesPerSecond: 0,
  });
  const packs = [0, 1, 2, 3].map(() => fakePack(size));
  const tokens = packs.map(() => token('writer'));
  const uploads: ReturnType<typeof partialPut>[] = [];
  // Oldest first: each sends a quarter of its body, and the vault holds exactly what arrived.
  for (const [i, pack] of packs.entries()) {
    const upload = partialPut(vault.url, `/v1/repos/team/objects/${pack.name}`, tokens[i], size);
    upload.send(pack.bytes.subarray(0, quarter));
    uploads.push(upload);
    await untilAsync(async () => (await memoryInUse(vault.url)) === (i + 1) * quarter);
  }
  // The budget is spent; now every one sends the rest and needs more than is free.
  for (const [i, upload] of uploads.entries()) upload.send(packs[i].bytes.subarray(quarter));
  const answers = await Promise.all(uploads.map(({ answer }) => answer));
  assert.equal(answers[0].status, 422, 'the oldest upload was read in full and judged (a fake pack)');
  for (const answer of answers) {
    assert.ok(answer.status === 422 || answer.status === 503, JSON.stringify(answer));
    if (answer.status === 503) assert.deepEqual([answer.code, answer.retryAfter], ['STORAGE_TRANSIENT', '5']);
  }
  assert.ok(
    answers.some(({ status }) => status === 503),
    'some upload gave way: together they could never all have finished',
  );
  assert.equal(await memoryInUse(vault.url), 0, 'every byte went back');
  // Retried, each goes through.
  for (const [i, answer] of answers.entries()) {
    if (answer.status !== 503) continue;
    const again = await raw(vault.url, 'PUT', `/v1/repos/team/objects/${packs[i].name}`, tokens[i], packs[i].bytes);
    assert.equal(again.status, 422, again.body);
  }
});

test('trickling uploads hold only what they sent: an upload of the largest size from another token goes through beside them', {
  timeout: 60_000,
}, async (t) => {
  const size = 1024 * 1024;
  const step = 64 * 1024;
  const { vault, token } = await vaultFixture(t, 'vault-trickle-steps', {
    memoryBudgetBytes: 2 * size,
    maxObjectBytes: size,
    budgetStepBytes: step,
    minUploadBytesPerSecond: 0,
  });
  const trickles = [0, 1].map((i) =>
    trickle(vault.url, `/v1/repos/team/objects/data/ab/${'ab'.repeat(31)}a${i}`, token('writer'), size),
  );
  await until(() => trickles.every(({ sentBytes }) => sentBytes() >= 4));
  await untilAsync(async () => (await memoryInUse(vault.url)) === 2 * step);
  // Had the vault reserved what they declared, the two would hold the whole budget.
  const pack = fakePack(size);
  const answer = await raw(vault.url, 'PUT', `/v1/repos/team/objects/${pack.name}`, token('writer'), pack.bytes);
  assert.equal(answer.status, 422, answer.body);
  assert.equal(answer.code, 'SIGNATURE_INVALID', 'read in full and judged');
  assert.ok(trickles.every(({ isOpen }) => isOpen()));
  assert.equal(await memoryInUse(vault.url), 2 * step, 'the trickles still hold one step each');
  for (const { stop } of trickles) stop();
  await Promise.all(trickles.map(({ closed }) => closed));
  await untilAsync(async () => (await memoryInUse(vault.url)) === 0);
});

test('a body without a Content-Length (chunked) is 411 with a message that says so, on uploads and JSON endpoints alike', async (t) => {
  const { vault, token } = await vaultFixture(t, 'vault-length-required');
  const writer = token('writer');
  const { hostname, port } = new URL(vault.url);
  const chunked = (method: string, path: string, body: string) =>
    new Promise<Answer>((resolve, reject) => {
      const req = httpRequest(
        {
          host: hostname,
          port,
          method,
          path,
          headers: { authorization: `Bearer ${writer}`, 'transfer-encoding': 'chunked' },
        },
        (res) => {
          let text = '';
          res.on('data', (chunk) => (text += chunk));
          res.on('end', () => {
            const error = JSON.parse(text).error ?? {};
            resolve({ status: res.statusCode ?? 0, body: text, code: error.code, message: error.message });
          });
        },
      );
      req.on('error', reject);
      req.write(body.slice(0, 5));
      req.end(body.slice(5));
    });
  const pack = `data/ab/${'ab'.repeat(32)}`;
  for (const [method, path, body] of [
    ['PUT', `/v1/repos/team/objects/${pack}`, 'some bytes of a pack'],
    ['POST', '/v1/repos/team/protection', '{"names":["config"]}'],
    ['POST', '/v1/repos/team/protect', `{"names":["config"],"untilMs":${Date.now()},"mode":"governance"}`],
  ] as const) {
    const answer = await chunked(method, path, body);
    assert.equal(answer.status, 411, `${method} ${path}: ${answer.body}`);
    assert.equal(answer.code, 'USAGE');
    assert.match(answer.message!, /has no Content-Length \(its body is sent chunked\)/);
    assert.doesNotMatch(answer.message!, /at most/);
  }
  // With its length, the same request is answered as ever.
  assert.equal((await raw(vault.url, 'POST', '/v1/repos/team/protection', writer, '{"names":["config"]}')).status, 200);
});

test('reads go out a step of the budget at a time and arrive whole, ranges across steps too', {
  timeout: 60_000,
}, async (t) => {
  const step = 16 * 1024;
  const { dir, token, storeFor, repoDir, vault } = await vaultFixture(t, 'vault-stepped-reads', {
    budgetStepBytes: step,
  });
  const { backup } = await import('../engine/backup.ts');
  const { createFsStore } = await import('../storage/fs/fs-store.ts');
  const source = join(dir, 'source');
  await fs.mkdir(source);
  await fs.writeFile(join(source, 'a.bin'), randomBytes(200_000));
  const writer = token('writer');
  await backup({
    repo: testOperation(
      await openRepository({ store: storeFor(writer), passphrase: TEST_PASSPHRASE, clock: systemClock }),
    ),
    paths: [source],
    retainMs: 86_400_000,
  });
  const reader = storeFor(token('reader'));
  const disk = createFsStore(repoDir());
  let large = 0;
  for await (const { name, sizeBytes } of disk.list('data/')) {
    const expected = Buffer.from(await disk.get(name));
    assert.ok(Buffer.from(await reader.get(name)).equals(expected), name);
    if (sizeBytes <= 3 * step) continue;
    large += 1;
    const range = { offset: step - 10, length: 2 * step + 20 };
    assert.ok(
      Buffer.from(await reader.get(name, range)).equals(expected.subarray(range.offset, range.offset + range.length)),
      `${name} ${JSON.stringify(range)}`,
    );
  }
  assert.ok(large > 0, 'a pack larger than three steps was read');
  assert.equal(await memoryInUse(vault.url), 0);
});
