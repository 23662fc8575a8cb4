// Attacks on the approval quorum: every decision that must not count is refused and logged; a quorum
// executes once even when decisions race; an approved unlock lets forget remove the snapshot, and
// a compliance lock cannot even be requested away.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { isAmberError, type ErrorCode } from '../core/errors.ts';
import { alterObjectFile, createScratchRepo, seededBytes } from '../testing/repo-fixture.ts';
import { createApproverKey, unlockApproverKey, type ApproverSigner } from '../governance/approver-key.ts';
import { backup } from '../engine/backup.ts';
import { forget } from './forget.ts';
import { lockStatus } from '../engine/lock-coverage.ts';
import { addHold, listHolds } from './holds.ts';
import { applyApprovedPolicyChange, lockPolicy, setPolicy, showPolicy } from './policy-admin.ts';
import { approverSet } from '../governance/policy.ts';
import { testOperation, testRetentionClock } from '../testing/operation.ts';
import {
  approverAuthor,
  authoriseClockConfirmation,
  createRequest,
  signDecision,
  submitDecision,
} from './approvals.ts';
import { openRepositoryView } from '../repo/repository.ts';
import { readAuditLog } from '../governance/audit-log.ts';
import { readRequests } from '../governance/requests.ts';
import { loadRetentionState } from '../governance/retention-state.ts';
import type { Operation } from '../governance/operation.ts';

const fails = (code: ErrorCode, pattern?: RegExp) => (error: unknown) =>
  isAmberError(error, code) && (!pattern || pattern.test(error.message));

async function approver(): Promise<ApproverSigner> {
  const { keyFile } = await createApproverKey('pw', 10);
  return unlockApproverKey(JSON.stringify(keyFile), 'pw', 'test');
}

async function governed(t: { after(fn: () => unknown): void }, label: string) {
  const { dir, owner } = await createScratchRepo(t, label);
  const [alice, bob, carol, mallory] = await Promise.all([approver(), approver(), approver(), approver()]);
  const approvers = [
    ['alice', alice],
    ['bob', bob],
    ['carol', carol],
  ] as const;
  await setPolicy(owner, {
    approvers: approvers.map(([name, key]) => ({ name, publicKey: key.publicKey.toString('hex') })),
    quorum: 2,
  });
  const source = join(dir, 'source');
  await fs.mkdir(source);
  await fs.writeFile(join(source, 'a.bin'), seededBytes(50_000, label));
  const locked = await backup({ repo: owner, paths: [source], retainMs: 30 * 86_400_000 });
  return { owner, alice, bob, carol, mallory, locked, source };
}

const actions = async (repo: Operation) => (await readAuditLog(repo)).entries.map(({ entry }) => entry.action);

test('decisions that must not count are refused, each with its reason, and logged', async (t) => {
  const { owner, alice, bob, mallory, locked } = await governed(t, 'requests-refused');
  const first = await createRequest({
    repo: owner,
    kind: 'unlock',
    target: locked.snapshotId,
    reason: 'mistake',
    asApproverKey: alice.publicKey.toString('hex'),
  });
  const other = await createRequest({ repo: owner, kind: 'unlock', target: locked.snapshotId, reason: 'second' });
  assert.notEqual(first.id, other.id, 'a nonce makes each request its own');

  await assert.rejects(
    submitDecision(owner, signDecision(first.id, 'approve', mallory)),
    fails('APPROVAL_REFUSED', /not a registered approver/),
  );
  const forged = {
    ...signDecision(first.id, 'approve', bob),
    signature: signDecision(first.id, 'reject', bob).signature,
  };
  await assert.rejects(submitDecision(owner, forged), fails('APPROVAL_REFUSED', /does not verify/));
  await assert.rejects(
    submitDecision(owner, signDecision(first.id, 'approve', alice)),
    fails('APPROVAL_REFUSED', /requester cannot decide/),
  );
  // Bob's approval of the other request, replayed for this one.
  const replayed = { ...signDecision(other.id, 'approve', bob), request: first.id };
  await assert.rejects(submitDecision(owner, replayed), fails('APPROVAL_REFUSED', /does not verify/));
  await submitDecision(owner, signDecision(first.id, 'approve', bob));
  await assert.rejects(
    submitDecision(owner, signDecision(first.id, 'approve', bob)),
    fails('APPROVAL_REFUSED', /already decided/),
  );

  const state = await loadRetentionState(owner);
  const { requests } = await readRequests(owner, state.policy, Date.now());
  const view = requests.find(({ id }) => id === first.id)!;
  assert.equal(view.status, 'pending');
  assert.deepEqual(view.approvedBy, ['bob']);
  const logged = await actions(owner);
  assert.equal(logged.filter((action) => action === 'request.approve.refused').length, 5);
  assert.equal(logged.filter((action) => action === 'request.approve').length, 1);
});

test('an expired request takes no decision; a request cannot lift a compliance lock', async (t) => {
  const { owner, bob, source } = await governed(t, 'requests-expired');
  const snapshot = (await backup({ repo: owner, paths: [source], retainMs: 86_400_000 })).snapshotId;
  const request = await createRequest({ repo: owner, kind: 'unlock', target: snapshot, reason: 'r', expiresInMs: 1 });
  await new Promise((resolve) => setTimeout(resolve, 20));
  await assert.rejects(
    submitDecision(owner, signDecision(request.id, 'approve', bob)),
    fails('APPROVAL_REFUSED', /is expired/),
  );

  const compliance = await backup({ repo: owner, paths: [source], retainMs: 86_400_000, lockMode: 'compliance' });
  await assert.rejects(
    createRequest({ repo: owner, kind: 'unlock', target: compliance.snapshotId, reason: 'r' }),
    fails('RETENTION_LOCKED'),
  );
});

test('a quorum executes once even when the approvals race, and the unlock lets forget remove the snapshot', async (t) => {
  const { owner, alice, bob, carol, locked } = await governed(t, 'requests-quorum');
  await assert.equal((await forget({ repo: owner, keep: { last: 0 } })).forgotten.length, 0, 'locked: kept');
  const request = await createRequest({ repo: owner, kind: 'unlock', target: locked.snapshotId, reason: 'test data' });
  const results = await Promise.all(
    [alice, bob, carol].map((key) =>
      submitDecision(owner, signDecision(request.id, 'approve', key)).catch((error) => error),
    ),
  );
  const executed = results.filter((result) => !(result instanceof Error) && result.executedNow);
  assert.equal(executed.length, 1, 'exactly one submission executed it');
  assert.equal((await actions(owner)).filter((action) => action === 'request.execute').length, 1);
  const state = await loadRetentionState(owner);
  assert.ok(state.ledger.snapshotLock(locked.snapshotId, null)!.untilMs <= Date.now());
  const result = await forget({ repo: owner, keep: { last: 0 } });
  assert.deepEqual(
    result.forgotten.map(({ snapshotId }) => snapshotId),
    [locked.snapshotId],
  );
});

test('a hold is released only by an approved request, and rejections close a request', async (t) => {
  const { owner, alice, bob, carol, locked } = await governed(t, 'requests-hold');
  await addHold(owner, { snapshot: locked.snapshotId, reason: 'case 9' });
  const release = await createRequest({
    repo: owner,
    kind: 'release-hold',
    target: locked.snapshotId,
    reason: 'case closed',
  });
  await submitDecision(owner, signDecision(release.id, 'reject', alice));
  const closed = await submitDecision(owner, signDecision(release.id, 'reject', bob));
  assert.equal(closed.request.status, 'rejected', 'with M=2 of N=3, two rejections close it');
  await assert.rejects(
    submitDecision(owner, signDecision(release.id, 'approve', carol)),
    fails('APPROVAL_REFUSED', /is rejected/),
  );
  assert.equal((await listHolds(owner)).length, 1);

  const again = await createRequest({
    repo: owner,
    kind: 'release-hold',
    target: locked.snapshotId,
    reason: 'case closed, really',
  });
  await submitDecision(owner, signDecision(again.id, 'approve', alice));
  await submitDecision(owner, signDecision(again.id, 'approve', carol));
  assert.deepEqual(await listHolds(owner), []);
});

test('a locked policy is loosened only through an approved policy-change request, applied once', async (t) => {
  const { owner, alice, bob, carol } = await governed(t, 'requests-policy');
  await setPolicy(owner, { minRetentionMs: 7 * 86_400_000, defaultRetentionMs: 30 * 86_400_000 });
  assert.match((await lockStatus({ repo: owner }))[0].liftableBy, /the key holder/, 'approvers can still be swapped');
  await lockPolicy(owner, 0);
  assert.match((await lockStatus({ repo: owner }))[0].liftableBy, /a quorum of 2 of 3 approvers/);
  await assert.rejects(setPolicy(owner, { minRetentionMs: 86_400_000 }), fails('POLICY_LOCKED'));
  await assert.rejects(setPolicy(owner, { approvers: [], quorum: 0 }), fails('POLICY_LOCKED', /approver set/));
  await assert.rejects(setPolicy(owner, { quorum: 3 }), fails('POLICY_LOCKED', /one lost key/));
  await assert.rejects(setPolicy(owner, { quorum: 4 }), fails('POLICY_VIOLATION'));
  await assert.rejects(
    createRequest({
      repo: owner,
      kind: 'policy-change',
      target: 'policy',
      reason: 'r',
      policyChange: { minRetentionMs: 14 * 86_400_000 },
    }),
    fails('USAGE', /needs no approval/),
  );

  const request = await createRequest({
    repo: owner,
    kind: 'policy-change',
    target: 'policy',
    reason: 'board decision',
    policyChange: { minRetentionMs: 86_400_000 },
  });
  await submitDecision(owner, signDecision(request.id, 'approve', alice));
  assert.equal((await showPolicy(owner)).settings.minRetentionMs, 7 * 86_400_000, 'one approval is not a quorum');
  await submitDecision(owner, signDecision(request.id, 'approve', carol));
  const policy = await showPolicy(owner);
  assert.equal(policy.settings.minRetentionMs, 86_400_000);
  assert.equal(policy.approval, request.id);
  assert.equal(policy.locked, true, 'the lock stays');
  assert.equal(
    (await applyApprovedPolicyChange(owner, request.id)).head,
    policy.head,
    'applying again changes nothing',
  );
  assert.equal((await actions(owner)).filter((action) => action === 'policy.change').length, 1);

  // A request made against a policy that changed meanwhile no longer applies.
  const stale = await createRequest({
    repo: owner,
    kind: 'policy-change',
    target: 'policy',
    reason: 'r',
    policyChange: { quorum: 1 },
  });
  await setPolicy(owner, { minRetentionMs: 2 * 86_400_000 });
  await submitDecision(owner, signDecision(stale.id, 'approve', alice));
  await assert.rejects(
    submitDecision(owner, signDecision(stale.id, 'approve', bob)),
    fails('USAGE', /policy changed after request/),
  );
  assert.equal(approverSet((await showPolicy(owner)).settings).quorum, 2);
});

test('once a quorum is set, the clock is confirmed only with an approved confirm-clock request from this host', async (t) => {
  const { owner, alice, bob } = await governed(t, 'requests-clock');
  const clock = testRetentionClock(owner.clock);
  await assert.rejects(authoriseClockConfirmation(testOperation(owner, clock), undefined), fails('APPROVAL_REQUIRED'));
  const request = await createRequest({
    repo: owner,
    kind: 'confirm-clock',
    target: 'clock',
    reason: 'checked against NTP',
  });
  await assert.rejects(
    authoriseClockConfirmation(testOperation(owner, clock), request.id),
    fails('APPROVAL_REQUIRED', /pending/),
  );
  await submitDecision(owner, signDecision(request.id, 'approve', alice));
  await submitDecision(owner, signDecision(request.id, 'approve', bob));
  assert.equal(await authoriseClockConfirmation(testOperation(owner, clock), request.id), request.id);
  const later = { retentionBaseMs: () => Date.now() + 100 * 3_600_000, deletionNowMs: () => Date.now() };
  await assert.rejects(
    authoriseClockConfirmation(testOperation(owner, later), request.id),
    fails('APPROVAL_REQUIRED', /expired/),
  );
});

test('a removed approver no longer counts, and a request altered after it was made takes no decision', async (t) => {
  const { owner, alice, bob, locked } = await governed(t, 'requests-removed');
  const request = await createRequest({ repo: owner, kind: 'unlock', target: locked.snapshotId, reason: 'r' });
  const { approvers } = approverSet((await showPolicy(owner)).settings);
  await setPolicy(owner, { approvers: approvers.filter(({ name }) => name !== 'bob') });
  await assert.rejects(
    submitDecision(owner, signDecision(request.id, 'approve', bob)),
    fails('APPROVAL_REFUSED', /not a registered approver/),
  );

  // Someone with access to the storage edits the stored request (a longer expiry, say) after it was made.
  const path = join(owner.store.location, 'requests', request.id);
  await alterObjectFile(path, (bytes) =>
    Buffer.from(bytes.toString('latin1').replace(request.expires, '2099-01-01T00:00:00.000Z'), 'latin1'),
  );
  await assert.rejects(
    submitDecision(owner, signDecision(request.id, 'approve', alice)),
    fails('APPROVAL_REFUSED', /altered/),
  );
  const logged = (await readAuditLog(owner)).entries.filter(({ entry }) => entry.action === 'request.approve.refused');
  assert.equal(logged.length, 2, 'both refusals are logged');
  const { problems } = await readRequests(owner, await showPolicy(owner), Date.now());
  assert.deepEqual(
    problems.map(({ name }) => name),
    [`requests/${request.id}`],
  );
});

test('an approved unlock leaves the snapshots that share its data covered: what they reused is granted again for their locks', async (t) => {
  const { owner, alice, bob, locked, source } = await governed(t, 'requests-shared');
  // The second backup reuses the first one's pack, which the first lock (30 days) already covers.
  await fs.writeFile(join(source, 'b.bin'), seededBytes(50_000, 'second file'));
  const kept = await backup({ repo: owner, paths: [source], retainMs: 7 * 86_400_000 });
  const request = await createRequest({ repo: owner, kind: 'unlock', target: locked.snapshotId, reason: 'wrong disk' });
  await submitDecision(owner, signDecision(request.id, 'approve', alice));
  await submitDecision(owner, signDecision(request.id, 'approve', bob));
  const [status] = await lockStatus({ repo: owner, snapshot: kept.snapshotId });
  assert.deepEqual(status.gaps, [], 'the shared pack is still held for the kept snapshot');
  assert.ok((await actions(owner)).includes('request.execute'));
});

/**
 * `op` on a store that counts how often the policy chain is read: every load of the retention state
 * (and every partial read of the policy) lists policies/ once. The sweep over all metadata that
 * granting shared objects again makes (snapshot-objects.ts sharedMetadata) lists it too, along with
 * epochs/, which nothing else in an approval lists: those listings are not state loads.
 */
function countingStateLoads(op: Operation): { op: Operation; loads: () => number } {
  const listed = new Map<string, number>();
  const store = {
    ...op.store,
    list: (prefix: string) => {
      listed.set(prefix, (listed.get(prefix) ?? 0) + 1);
      return op.store.list(prefix);
    },
  };
  return {
    op: testOperation({ ...op, store }),
    loads: () => (listed.get('policies/') ?? 0) - (listed.get('epochs/') ?? 0),
  };
}

test('one approval reads the retention state once, also the one that executes an unlock and grants shared objects again', async (t) => {
  const { owner, alice, bob, source } = await governed(t, 'requests-one-load');
  await backup({ repo: owner, paths: [source], retainMs: 40 * 86_400_000 }); // shares the pack with `locked`
  const target = (await backup({ repo: owner, paths: [source], retainMs: 30 * 86_400_000 })).snapshotId;
  const request = await createRequest({ repo: owner, kind: 'unlock', target, reason: 'wrong disk' });

  const first = countingStateLoads(owner);
  assert.equal((await submitDecision(first.op, signDecision(request.id, 'approve', alice))).executedNow, false);
  assert.equal(first.loads(), 1, 'the first approval');

  const last = countingStateLoads(owner);
  const done = await submitDecision(last.op, signDecision(request.id, 'approve', bob));
  assert.equal(done.executedNow, true);
  assert.equal(last.loads(), 1, 'the approval that completes the quorum, executes and grants again');
  assert.ok((await actions(owner)).includes('request.execute'));
  // It granted the shared objects again (the owner's word that the unlocked snapshot's cap applies),
  // and every snapshot still locked stays covered.
  assert.ok((await loadRetentionState(owner)).regranted.has(request.id));
  for (const status of await lockStatus({ repo: testOperation(owner) })) {
    if (status.snapshotId !== target)
      assert.deepEqual(status.gaps, [], `snapshot ${status.snapshotId.slice(0, 8)} stays covered`);
  }
});

test('an approver without the repository key reads the retention state once for their decision', async (t) => {
  const { owner, alice, locked } = await governed(t, 'requests-one-load-approver');
  const request = await createRequest({ repo: owner, kind: 'unlock', target: locked.snapshotId, reason: 'r' });
  let loads = 0;
  const store = {
    ...owner.store,
    list: (prefix: string) => {
      if (prefix === 'policies/') loads++;
      return owner.store.list(prefix);
    },
  };
  const view = await openRepositoryView(store);
  const author = await approverAuthor(view, owner.clock, alice, testRetentionClock(owner.clock));
  await submitDecision(author, signDecision(request.id, 'approve', alice));
  assert.equal(loads, 1);
});
