// The vault's own judgement of retention, from the signed plaintext records (grants, holds, condemn
// notices, approved requests) and its own clock, never from what a client says. It refuses a condemn
// notice that names a retained object, and deletes only what such a notice named once its grace has
// passed, that is still expired and unheld, and that no grant written since has named again.
import { AmberError } from '../core/errors.ts';
import { openRepositoryView } from '../repo/repository.ts';
import { CONDEMNS, GRANTS, loadRecords, POLICIES, type CondemnNotice, type PolicyRecord } from '../repo/retention-records.ts';
import { canonicalJson } from '../core/canonical-json.ts';
import { checkPolicyChange, isLocked } from '../governance/policy.ts';
import { approvedRequests } from '../engine/request-book.ts';
import { decodeSignedRecord, hasValidSignature, parseJsonPayload } from '../repo/signed-record.ts';
import { PREFIX } from '../repo/layout.ts';
import type { Store } from '../storage/store.ts';
import { loadRetentionState, type RetentionState } from '../engine/retention-state.ts';

const iso = (ms: number) => new Date(ms).toISOString();

/** Why an object is still retained at `nowMs`, or undefined when it may go. */
async function retainedBecause(store: Store, state: RetentionState, name: string, nowMs: number): Promise<string | undefined> {
  const lock = state.ledger.lockOf(name);
  if (lock && lock.untilMs > nowMs) return `it is retained until ${iso(lock.untilMs)} (${lock.mode})`;
  if (!lock) {
    // Like prune: an object no grant names keeps the default retention from when the vault received it.
    const writtenMs = (await store.stat(name)).writtenMs;
    const untilMs = writtenMs === undefined ? Infinity : writtenMs + state.policy.settings.defaultRetentionMs;
    if (untilMs > nowMs) return `no grant names it, so it keeps the default retention until ${Number.isFinite(untilMs) ? iso(untilMs) : 'further notice'}`;
  }
  const held = state.holds.find(({ value }) => name === `${PREFIX.snapshots}${value.snapshot}` || value.objects?.includes(name));
  if (held) return `it is under a legal hold (${held.value.reason})`;
  return undefined;
}

const refuse = (message: string) => new AmberError('RETENTION_ACTIVE', message, {
  hint: 'the vault deletes only expired, unheld objects that a condemn notice named a grace period ago',
});

/** A condemn notice must be the owner's and name only objects that may go now. */
export async function checkCondemnUpload(store: Store, name: string, bytes: Buffer, nowMs: number): Promise<void> {
  const view = await openRepositoryView(store);
  const record = decodeSignedRecord('condemn', bytes, name);
  const owner = view.authority.ownerKeyFor(record.signerKeyId);
  if (!owner || !hasValidSignature('condemn', record, owner)) {
    throw new AmberError('SIGNATURE_INVALID', `${name} is not signed by the repository owner: only a full-key prune condemns objects`);
  }
  const notice = parseJsonPayload<CondemnNotice>(record, name);
  if (!CONDEMNS.isValid(notice)) throw new AmberError('OBJECT_CORRUPT', `${name} is not a well-formed condemn notice`);
  const state = await loadRetentionState(view);
  for (const { name: object } of notice.objects) {
    if (!object.startsWith(PREFIX.data) && !object.startsWith(PREFIX.snapshots)) throw refuse(`${name} condemns ${object}: only packs and snapshots are ever deleted`);
    const why = await retainedBecause(store, state, object, nowMs).catch(() => undefined);
    if (why) throw refuse(`${name} condemns ${object}, but ${why}; the notice was not stored`);
  }
}

/** Whether `name` may be deleted now; throws RETENTION_ACTIVE with the reason when not. */
export async function checkDeletion(store: Store, name: string, nowMs: number): Promise<void> {
  const view = await openRepositoryView(store);
  const state = await loadRetentionState(view);
  const notices = (await loadRecords(view, CONDEMNS, [])).filter(({ value }) => value.objects.some((object) => object.name === name));
  const due = notices.find(({ value, writtenMs }) => writtenMs !== undefined && writtenMs + value.graceMs <= nowMs);
  if (!due) {
    throw refuse(notices.length === 0
      ? `${name} is not named by any condemn notice`
      : `the grace period of the condemn notice for ${name} has not passed`);
  }
  const why = await retainedBecause(store, state, name, nowMs);
  if (why) throw refuse(`${name} cannot be deleted: ${why}`);
  const grants = await loadRecords(view, GRANTS, []);
  const renewed = grants.find(({ value, writtenMs }) => (writtenMs ?? Infinity) > due.writtenMs! && value.entries.some(({ objects }) => objects.includes(name)));
  if (renewed) throw refuse(`${name} was granted retention again after it was condemned (${renewed.name})`);
}

/**
 * A protect call asks for retention until `untilMs`; one that names an object the grants already hold
 * longer is an attempt to shorten it, and is refused (retention is only ever extended).
 */
export async function refuseShortening(store: Store, names: readonly string[], untilMs: number): Promise<void> {
  const state = await loadRetentionState(await openRepositoryView(store));
  for (const name of names) {
    const lock = state.ledger.lockOf(name);
    if (lock && lock.untilMs > untilMs) {
      throw refuse(`${name} is retained until ${iso(lock.untilMs)}; asking for ${iso(untilMs)} would shorten that, and retention is only ever extended`);
    }
  }
}

/**
 * A policy link must continue the chain and, once the policy is locked, only tighten it — unless it
 * carries out a policy change the approver quorum approved. The vault checks this itself, so an admin
 * token with the owner key cannot loosen a locked policy either.
 */
export async function checkPolicyUpload(store: Store, name: string, bytes: Buffer, nowMs: number): Promise<void> {
  const view = await openRepositoryView(store);
  const record = decodeSignedRecord('policy', bytes, name);
  const owner = view.authority.ownerKeyFor(record.signerKeyId);
  if (!owner || !hasValidSignature('policy', record, owner)) throw new AmberError('SIGNATURE_INVALID', `${name} is not signed by the repository owner`);
  const link = parseJsonPayload<PolicyRecord>(record, name);
  if (!POLICIES.isValid(link)) throw new AmberError('OBJECT_CORRUPT', `${name} is not a well-formed policy record`);
  const { policy } = await loadRetentionState(view);
  if (link.previous !== policy.head) {
    throw new AmberError('POLICY_LOCKED', `${name} does not continue the policy chain (it follows ${link.previous ?? 'nothing'}, the policy is ${policy.head ?? 'the default'})`, {
      hint: 'read the policy again and write the change on top of it',
    });
  }
  let approved = false;
  if (typeof link.approval === 'string') {
    approved = (await approvedRequests(view, policy)).some(({ id, request }) => id === link.approval && request.kind === 'policy-change' &&
      request.parameters.previous === link.previous && canonicalJson(request.parameters.settings) === canonicalJson(link.settings));
    if (!approved) throw new AmberError('APPROVAL_REQUIRED', `${name} names request ${String(link.approval).slice(0, 12)}, which is not an approved change to exactly these settings`);
  }
  checkPolicyChange(policy, link.settings, nowMs, approved);
  if (isLocked(policy, nowMs) && canonicalJson(link.lock) !== canonicalJson(policy.lock)) {
    throw new AmberError('POLICY_LOCKED', `the policy lock took effect on ${policy.lock!.coolingOffUntil}; ${name} would change or remove it`);
  }
}
