// Governance on the command line as people use it: approvers make their own keys, the owner registers
// them and locks the policy, a governance lock is lifted only by a quorum (one approver signing
// offline), the audit log records all of it, reads without a passphrase, exports for auditors, and
// `audit verify` fails with AUDIT_TAMPERED once an entry is edited on disk.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { alterObjectFile, removeTree } from '../../src/testing/repo-fixture.ts';

const BIN = fileURLToPath(new URL('../../bin/amber.js', import.meta.url));
let dir: string;
let repo: string;

function amber(args: string[], env: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    env: {
      PATH: process.env.PATH,
      AMBER_PASSWORD: 'owner pass',
      AMBER_APPROVER_PASSWORD: 'approver pass',
      AMBER_KDF_LOG_N: '10',
      AMBER_REPO: repo,
      AMBER_CACHE_DIR: join(dir, 'cache'),
      ...env,
    },
  });
  return { status: result.status, stdout: String(result.stdout), stderr: String(result.stderr) };
}

function ok(args: string[], env?: Record<string, string>) {
  const result = amber(args, env);
  assert.equal(result.status, 0, `amber ${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

const json = (args: string[], env?: Record<string, string>) => JSON.parse(ok([...args, '--json'], env));

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'amber-governance-cli-'));
  repo = join(dir, 'repo');
  await mkdir(join(dir, 'source'));
  await writeFile(join(dir, 'source', 'ledger.csv'), 'a,b\n1,2\n');
});

after(() => removeTree(dir));

test('a quorum lifts a governance lock; the audit log shows it and catches an edit', async () => {
  ok(['init']);
  for (const name of ['alice', 'bob', 'carol']) {
    ok(['approver', 'keygen', '--out', join(dir, `${name}.key`)]);
    ok(['approver', 'add', name, '--public-key', join(dir, `${name}.key.pub`)]);
  }
  ok(['policy', 'set', '--quorum', '2']);
  const snapshot = json(['backup', join(dir, 'source'), '--retain', '30d']).id as string;
  assert.match(json(['lock', 'status', snapshot])[0].liftableBy, /key holder/);
  ok(['policy', 'lock', '--cooling-off', '0s']);
  assert.match(json(['lock', 'status', snapshot])[0].liftableBy, /quorum of 2 of 3/);

  const lift = amber(['lock', 'lift', snapshot]);
  assert.equal(lift.status, 1);
  assert.match(lift.stderr, /APPROVAL_REQUIRED[\s\S]*amber request unlock/);

  const id = json(['request', 'unlock', snapshot, '--reason', 'test data locked by mistake']).id as string;
  assert.match(id, /^[0-9a-f]{64}$/);
  // Approvers need no repository passphrase: their own key signs the decision and their audit entry.
  ok(['approve', id.slice(0, 12), '--key', join(dir, 'alice.key')], { AMBER_PASSWORD: '' });
  const wrongPassphrase = amber(['approve', id, '--key', join(dir, 'bob.key')], { AMBER_APPROVER_PASSWORD: 'nope' });
  assert.match(wrongPassphrase.stderr, /WRONG_PASSWORD/);
  // Bob signs on his own machine: no repository, no repository passphrase.
  ok(['approve', id, '--key', join(dir, 'bob.key'), '--out', join(dir, 'bob.sig')], {
    AMBER_REPO: '',
    AMBER_PASSWORD: '',
  });
  assert.match(ok(['approval', 'submit', join(dir, 'bob.sig')]), /executed now/);
  const again = amber(['approval', 'submit', join(dir, 'bob.sig')]);
  assert.match(again.stderr, /APPROVAL_REFUSED/);
  assert.equal(json(['request', 'show', id]).status, 'executed');

  assert.equal(json(['forget', '--keep-last', '0']).forgotten.length, 1);
  ok(['prune', '--grace', '0s']);

  // The auditor: no passphrase at all.
  const auditor = { AMBER_PASSWORD: '' };
  const actions = json(['audit', 'log'], auditor).map((row: { action: string }) => row.action);
  for (const action of [
    'init',
    'policy.set',
    'backup',
    'policy.lock',
    'request.create',
    'request.approve',
    'request.execute',
    'request.approve.refused',
    'forget',
    'prune',
  ]) {
    assert.ok(actions.includes(action), `${action} is logged`);
  }
  const approval = json(['audit', 'log'], auditor).find(
    (row: { action: string; actor: string }) => row.action === 'request.approve' && row.actor === 'approver alice',
  );
  assert.equal(approval?.signer, 'approver alice', 'the approver signed their own entry');
  const verified = json(['audit', 'verify'], auditor);
  assert.deepEqual(verified.problems, []);
  assert.ok(verified.checkpoint, 'prune sealed the log with a checkpoint');
  const csv = ok(['audit', 'export', '--format', 'csv'], auditor).trim().split('\n');
  assert.equal(csv[0], 'seq,time,actor,signer,signerKeyId,action,target,details,previous,name');
  assert.equal(csv.length, actions.length + 1);

  const entries = (await readdir(join(repo, 'audit'))).sort();
  await alterObjectFile(join(repo, 'audit', entries[2]), (bytes) => {
    bytes[bytes.length - 80] ^= 1;
    return bytes;
  });
  const tampered = amber(['audit', 'verify'], auditor);
  assert.equal(tampered.status, 1);
  assert.match(tampered.stderr, new RegExp(`first bad entry is #3 \\(audit/${entries[2]}\\)[\\s\\S]*AUDIT_TAMPERED`));
});
