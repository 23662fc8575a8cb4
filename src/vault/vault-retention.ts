// The vault's own judgement of retention, from the signed plaintext records (grants, holds, condemn
// notices, approved requests) and its own clock, never from what a client says. It refuses a condemn
// notice or forget mark that names a retained object, and deletes only what such a notice named once
// its grace has passed, that is still expired and unheld, and that no grant written since has named
// again. It bounds every retention request: grants and retention dates by the policy's maximum from
// its clock, protect by what the grants give.
import { AmberError, isAmberError } from '../core/errors.ts';
import type { RepositoryView } from '../repo/repository.ts';
import {
  CONDEMNS,
  GRANTS,
  loadRecords,
  POLICIES,
  type CondemnNotice,
  type ForgetMark,
  type Grant,
  type PolicyRecord,
} from '../repo/retention-records.ts';
import { canonicalJson } from '../core/canonical-json.ts';
import { isoDate } from '../core/units.ts';
import { asSnapshotId } from '../core/ids.ts';
import { checkPolicyChange, isLocked } from '../governance/policy.ts';
import { approvedRequests } from '../governance/requests.ts';
import { decodeSignedRecord, hasValidSignature, parseJsonPayload } from '../repo/signed-record.ts';
import { CONFIG_NAME, METADATA_PREFIXES, PREFIX, snapshotName } from '../repo/layout.ts';
import { covers, roundUpMs, type ObjectLock } from '../governance/retention.ts';
import type { Store } from '../storage/store.ts';
import { loadRetentionState, type RetentionState } from '../governance/retention-state.ts';

/** Why an object is still retained at `nowMs`, or undefined when it may go. */
async function retainedBecause(
  store: Store,
  state: RetentionState,
  name: string,
  nowMs: number,
): Promise<string | undefined> {
  const lock = state.ledger.lockOf(name);
  if (lock && lock.untilMs > nowMs) return `it is retained until ${isoDate(lock.untilMs)} (${lock.mode})`;
  if (!lock) {
    // Like prune: an object no grant names keeps the default retention from when the vault received it.
    const writtenMs = (await store.stat(name)).writtenMs;
    const untilMs = writtenMs === undefined ? Infinity : writtenMs + state.policy.settings.defaultRetentionMs;
    if (untilMs > nowMs)
      return `no grant names it, so it keeps the default retention until ${Number.isFinite(untilMs) ? isoDate(untilMs) : 'further notice'}`;
  }
  const held = state.holds.find(({ value }) => name === snapshotName(value.snapshot) || value.objects?.includes(name));
  if (held) return `it is under a legal hold (${held.value.reason})`;
  return undefined;
}

const refuse = (message: string) =>
  new AmberError('RETENTION_ACTIVE', message, {
    hint: 'the vault deletes only expired, unheld objects that a condemn notice named a grace period ago',
  });

/** A condemn notice must be the owner's and name only objects that may go now. */
export async function checkCondemnUpload(
  view: RepositoryView,
  name: string,
  bytes: Buffer,
  nowMs: number,
): Promise<void> {
  const { store } = view;
  const record = decodeSignedRecord('condemn', bytes, name);
  const owner = view.authority.ownerKeyFor(record.signerKeyId);
  if (!owner || !hasValidSignature('condemn', record, owner)) {
    throw new AmberError(
      'SIGNATURE_INVALID',
      `${name} is not signed by the repository owner: only a full-key prune condemns objects`,
    );
  }
  const notice = parseJsonPayload<CondemnNotice>(record, name);
  if (!CONDEMNS.isValid(notice)) throw new AmberError('OBJECT_CORRUPT', `${name} is not a well-formed condemn notice`);
  const state = await loadRetentionState(view);
  for (const { name: object } of notice.objects) {
    if (!object.startsWith(PREFIX.data) && !object.startsWith(PREFIX.snapshots))
      throw refuse(`${name} condemns ${object}: only packs and snapshots are ever deleted`);
    const why = await retainedBecause(store, state, object, nowMs).catch(() => undefined);
    if (why) throw refuse(`${name} condemns ${object}, but ${why}; the notice was not stored`);
  }
}

/** Whether `name` may be deleted now; throws RETENTION_ACTIVE with the reason when not. */
export async function checkDeletion(view: RepositoryView, name: string, nowMs: number): Promise<void> {
  const { store } = view;
  const state = await loadRetentionState(view);
  const notices = (await loadRecords(view, CONDEMNS, [])).filter(({ value }) =>
    value.objects.some((object) => object.name === name),
  );
  const due = notices.find(({ value, writtenMs }) => writtenMs !== undefined && writtenMs + value.graceMs <= nowMs);
  if (!due) {
    throw refuse(
      notices.length === 0
        ? `${name} is not named by any condemn notice`
        : `the grace period of the condemn notice for ${name} has not passed`,
    );
  }
  const why = await retainedBecause(store, state, name, nowMs);
  if (why) throw refuse(`${name} cannot be deleted: ${why}`);
  const grants = await loadRecords(view, GRANTS, []);
  const renewed = grants.find(
    ({ value, writtenMs }) =>
      (writtenMs ?? Infinity) > due.writtenMs! && value.entries.some(({ objects }) => objects.includes(name)),
  );
  if (renewed) throw refuse(`${name} was granted retention again after it was condemned (${renewed.name})`);
}

/**
 * A forget mark hides snapshots from listings, restores and what prune keeps: one naming a snapshot
 * that is still retained or held, by the vault's own clock, is refused and not stored (a client whose
 * clock runs ahead would otherwise hide locked snapshots).
 */
export async function checkForgetUpload(
  view: RepositoryView,
  name: string,
  bytes: Buffer,
  nowMs: number,
): Promise<void> {
  const mark = parseJsonPayload<ForgetMark>(decodeSignedRecord('forget', bytes, name), name);
  const state = await loadRetentionState(view);
  for (const id of mark.snapshots) {
    if (!/^[0-9a-f]{64}$/.test(id))
      throw new AmberError(
        'OBJECT_CORRUPT',
        `${name} forgets "${id.slice(0, 80)}", which is not a snapshot id; it was not stored`,
      );
    const why = await retainedBecause(view.store, state, snapshotName(asSnapshotId(id)), nowMs).catch(
      (error: unknown) => {
        if (isAmberError(error, 'OBJECT_NOT_FOUND')) return undefined; // nothing to hide
        throw error;
      },
    );
    if (why) {
      throw new AmberError(
        'RETENTION_ACTIVE',
        `${name} forgets snapshot ${id.slice(0, 12)}, but ${why} by the vault's clock (${isoDate(nowMs)}); the forget mark was not stored`,
        {
          hint: 'only snapshots whose lock has ended and that no hold names can be forgotten; check the clock of the host that ran forget',
        },
      );
    }
  }
}

/** How far a client's clock may run ahead of the vault's: it computes retention dates from its own. */
export const CLOCK_TOLERANCE_MS = 60 * 60_000;

/**
 * The latest retain-until date anyone may ask of the vault now: the policy's maximum retention (or,
 * without one, the vault's `fallbackMaxMs`) from the vault's clock, rounded up to the extension step
 * as clients round; never below what the repository already holds something until (rounded the same
 * way), so metadata can always be kept as long as what needs it.
 */
export function retentionCeiling(
  state: RetentionState,
  baseMs: number,
  fallbackMaxMs: number,
): { untilMs: number; because: string } {
  const { maxRetentionMs, extendStepMs } = state.policy.settings;
  const maxMs = maxRetentionMs ?? fallbackMaxMs;
  const bound = roundUpMs(baseMs + CLOCK_TOLERANCE_MS + maxMs, extendStepMs);
  const held = roundUpMs(state.ledger.maxUntilMs, extendStepMs);
  const because =
    maxRetentionMs === null
      ? `the vault's limit of ${days(maxMs)} days (the policy sets no maximum retention)`
      : `the policy's maximum retention of ${days(maxMs)} days`;
  return { untilMs: Math.max(bound, held), because };
}

const days = (ms: number) => Math.round((ms / 86_400_000) * 100) / 100;

const beyond = (what: string, untilMs: number, ceiling: { untilMs: number; because: string }) =>
  new AmberError(
    'POLICY_VIOLATION',
    `${what} asks for retention until ${isoDate(untilMs)}, beyond ${isoDate(ceiling.untilMs)}: ${ceiling.because} from the vault's clock`,
    {
      hint: 'ask for a retention within the policy (`amber policy show`); a longer one needs a policy with a longer maximum',
    },
  );

/** A retention date sent with an upload (X-Amber-Retain-Until) stays within the ceiling. */
export async function checkRetainUntil(
  view: RepositoryView,
  name: string,
  untilMs: number,
  baseMs: number,
  fallbackMaxMs: number,
): Promise<void> {
  // Most uploads ask for far less than the shortest ceiling there can be: no grant need be read.
  if (untilMs <= baseMs + CLOCK_TOLERANCE_MS) return;
  const ceiling = retentionCeiling(await loadRetentionState(view), baseMs, fallbackMaxMs);
  if (untilMs > ceiling.untilMs) throw beyond(`the upload of ${name}`, untilMs, ceiling);
}

/** Every entry of an uploaded grant stays within the ceiling: a grant is what protect may raise to. */
export async function checkGrantUpload(
  view: RepositoryView,
  name: string,
  bytes: Buffer,
  baseMs: number,
  fallbackMaxMs: number,
): Promise<void> {
  const grant = parseJsonPayload<Grant>(decodeSignedRecord('grant', bytes, name), name);
  const latest = Math.max(0, ...grant.entries.map(({ until }) => Date.parse(until)));
  if (latest <= baseMs + CLOCK_TOLERANCE_MS) return;
  const ceiling = retentionCeiling(await loadRetentionState(view), baseMs, fallbackMaxMs);
  if (latest > ceiling.untilMs) throw beyond(name, latest, ceiling);
}

/**
 * Records and keys a client keeps as long as anything (config, keys, the retention records, the
 * audit log), often before the grant that justifies it exists (`init` keeps its first entries for
 * the retention a backup would get, before the policy that says so): small objects, raised at most to
 * the retention bound. Index objects are not among them: they are raised only by grants, like data.
 */
const isRecord = (name: string) =>
  name === CONFIG_NAME || METADATA_PREFIXES.some((kind) => kind !== 'index' && name.startsWith(PREFIX[kind]));

/**
 * A protect call may raise an object only as far as the records allow: a pack, snapshot or index
 * object to what some grant gives it; a record within the retention bound (retentionCeiling). And it
 * never shortens: asking for a date already past for an object held longer is refused (retention is
 * only ever extended).
 */
export async function checkProtect(
  view: RepositoryView,
  names: readonly string[],
  asked: ObjectLock,
  baseMs: number,
  fallbackMaxMs: number,
): Promise<void> {
  const state = await loadRetentionState(view);
  const ceiling = retentionCeiling(state, baseMs, fallbackMaxMs);
  for (const name of names) {
    const lock = state.ledger.lockOf(name);
    if (asked.untilMs < baseMs && lock && lock.untilMs > asked.untilMs) {
      throw refuse(
        `${name} is retained until ${isoDate(lock.untilMs)}; asking for ${isoDate(asked.untilMs)} would shorten that, and retention is only ever extended`,
      );
    }
    if (covers(lock, asked.untilMs, asked.mode)) continue;
    if (isRecord(name)) {
      if (asked.untilMs <= ceiling.untilMs) continue;
      throw beyond(`protect of ${name}`, asked.untilMs, ceiling);
    }
    throw new AmberError(
      'POLICY_VIOLATION',
      `protect asks for ${name} to be retained until ${isoDate(asked.untilMs)} (${asked.mode}), but ${
        lock ? `its grants give it only until ${isoDate(lock.untilMs)} (${lock.mode})` : 'no grant names it'
      }; nothing was changed`,
      {
        hint: 'protect raises a pack, snapshot or index object only to what a grant record gives it: write the grant first (backup and lock extend do)',
      },
    );
  }
}

/**
 * A policy link must continue the chain and, once the policy is locked, only tighten it — unless it
 * carries out a policy change the approver quorum approved. The vault checks this itself, so an admin
 * token with the owner key cannot loosen a locked policy either.
 */
export async function checkPolicyUpload(
  view: RepositoryView,
  name: string,
  bytes: Buffer,
  nowMs: number,
): Promise<void> {
  const record = decodeSignedRecord('policy', bytes, name);
  const owner = view.authority.ownerKeyFor(record.signerKeyId);
  if (!owner || !hasValidSignature('policy', record, owner))
    throw new AmberError('SIGNATURE_INVALID', `${name} is not signed by the repository owner`);
  const link = parseJsonPayload<PolicyRecord>(record, name);
  if (!POLICIES.isValid(link)) throw new AmberError('OBJECT_CORRUPT', `${name} is not a well-formed policy record`);
  const { policy } = await loadRetentionState(view);
  if (link.previous !== policy.head) {
    throw new AmberError(
      'POLICY_LOCKED',
      `${name} does not continue the policy chain (it follows ${link.previous ?? 'nothing'}, the policy is ${policy.head ?? 'the default'})`,
      {
        hint: 'read the policy again and write the change on top of it',
      },
    );
  }
  let approved = false;
  if (typeof link.approval === 'string') {
    approved = (await approvedRequests(view, policy)).some(
      ({ id, request }) =>
        id === link.approval &&
        request.kind === 'policy-change' &&
        request.parameters.previous === link.previous &&
        canonicalJson(request.parameters.settings) === canonicalJson(link.settings),
    );
    if (!approved)
      throw new AmberError(
        'APPROVAL_REQUIRED',
        `${name} names request ${String(link.approval).slice(0, 12)}, which is not an approved change to exactly these settings`,
      );
  }
  checkPolicyChange(policy, link.settings, nowMs, approved);
  if (isLocked(policy, nowMs) && canonicalJson(link.lock) !== canonicalJson(policy.lock)) {
    throw new AmberError(
      'POLICY_LOCKED',
      `the policy lock took effect on ${policy.lock!.coolingOffUntil}; ${name} would change or remove it`,
    );
  }
}
