// The guarded clock: the one time source for retention and expiry decisions, built so that moving the
// system clock cannot expire anything early.
//
// Within one boot (Linux boot_id), wall time is trusted while it agrees with an anchor plus the time
// since boot. The anchor and the highest trusted time (lastTrusted) live in local state MAC'd with a
// key the caller derives, so an edit without the key is detected. When trust is lost (reboot, a jump
// either way, altered state), deletions use min(wall, lastTrusted) until an operator runs
// `amber clock confirm`; new retain-until dates are computed from the highest time seen, so moving the
// clock back never shortens a new lock. Backups carry on either way: only deletions wait.
//
// Why the time since boot is CLOCK_BOOTTIME (/proc/uptime) and not CLOCK_MONOTONIC (hrtime): both are
// shared by every process of a boot and neither moves when the wall clock is set, but MONOTONIC stops
// during suspend, so every laptop sleep would read as a forward jump.
//
// Why the anchor is never moved automatically: NTP slewing changes the rate of the wall clock and of
// the time since boot alike, so they disagree only after a step. Re-anchoring on every trusted run
// would let an attacker step the clock by just under the tolerance before each run and walk it
// forward without limit. Instead the tolerance grows with the time since the anchor (MAX_DRIFT_PPM),
// which absorbs the small corrective steps of a long uptime. Residual risk: within one boot an attacker
// can gain at most toleranceMs + 100 ppm of the uptime since the anchor (2 minutes + about 8.6 s a day,
// under an hour after a year), whatever the number of runs.
//
// Without local state (first use on a host, or the state file removed) there is nothing to compare
// with, and an empty cache directory is the easiest forgery there is: so a missing state trusts the
// wall clock only when it agrees with a clock this host cannot set (the vault's or the S3 server's,
// passed as `reference`), or when the caller anchors it on purpose (`firstUse: 'anchor'`: `amber init`
// on a new repository, a new vault). Otherwise nothing expires and no state is saved until an operator
// confirms the time (through the quorum's request where the repository has one). Times read from the
// repository cannot help: they are written by whoever can write the repository, so they may raise
// retentionBaseMs but never the deletion time.
//
// Known limits, each of which fails towards keeping data:
// - Without a readable boot id (not Linux) no run can show it shares the anchor's boot, so deletions
//   are trusted only on first use and in the process that ran confirm().
// - An older copy of the state file (same key) restores a lower lastTrusted, which only delays expiry.
import { readFileSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { dirname } from 'node:path';
import { AmberError } from '../core/errors.ts';
import { systemClock } from '../core/clock.ts';
import { isoDate, formatDurationMs } from '../core/units.ts';
import { hmacSha256 } from '../crypto/index.ts';

export interface TimeSources {
  /** Wall-clock milliseconds since the epoch. */
  wallMs(): number;
  /** Milliseconds since boot, shared by all processes of one boot, unaffected by setting the wall clock. */
  sinceBootMs(): number;
  /** An id that changes at every boot; '' when the platform has none (then no run can prove it shares a boot). */
  bootId(): string;
}

export const systemTimeSources: TimeSources = {
  wallMs: () => systemClock.nowMs(),
  sinceBootMs: () => {
    try {
      const seconds = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
      if (Number.isFinite(seconds)) return Math.round(seconds * 1000);
    } catch {
      // Not Linux: the boot id is unreadable too, so this value never decides trust on its own.
    }
    return Number(process.hrtime.bigint() / 1_000_000n);
  },
  bootId: () => {
    try {
      return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    } catch {
      return '';
    }
  },
};

export interface ClockAnchor {
  bootId: string;
  wallMs: number;
  sinceBootMs: number;
  /** ISO form of wallMs. */
  at: string;
  /** Who confirmed this time; absent for the anchor taken on first use. */
  confirmedBy?: string;
}

export interface ClockStatus {
  /** Wall time is trusted for deletions right now. */
  trusted: boolean;
  reason: string;
  wallMs: number;
  /** Highest time this host has trusted; 0 when the local state cannot be believed. */
  lastTrustedMs: number;
  deletionNowMs: number;
  anchor?: ClockAnchor;
}

export interface GuardedClock {
  /**
   * Time for deciding that retention has ended or a grace period passed; never ahead of a time this
   * host trusted. Trusted: the wall time. Not trusted: min(lowest wall time seen, lastTrusted), or 0
   * (nothing expires) when the local state is missing or cannot be believed. Never rises while
   * untrusted, so one run decides with one stable time.
   */
  deletionNowMs(): number;
  /** Time from which new retain-until dates are computed: max(wall, lastTrusted, observed); never falls. */
  retentionBaseMs(): number;
  /**
   * Records a time read from storage (snapshot or record times). It raises retentionBaseMs only, capped
   * at wall + 10 years; it never raises deletionNowMs or lastTrusted. Non-finite values are ignored.
   */
  observe(ms: number): void;
  status(): ClockStatus;
  /**
   * An operator confirms the current wall time: it becomes the anchor and lastTrusted, and the
   * confirmation is recorded (who, when, what was wrong before). Throws when the state cannot be saved.
   */
  confirm(actor: string): Promise<ClockStatus>;
}

/** A time read from a clock this host cannot set, such as the Date header of the vault or the S3 server. */
export interface ReferenceTime {
  /** What it is, for messages: "the vault's clock (https://vault:8443)". */
  source: string;
  wallMs: number;
}

export interface GuardedClockOptions {
  /** Local JSON file, e.g. <cache dir>/<repository id>/clock.json; mode 0600, replaced atomically. */
  statePath: string;
  /** 32-byte key for the HMAC-SHA-256 over the state. */
  macKey: Buffer;
  sources?: TimeSources;
  /** Allowed disagreement between wall time and anchor + time since boot; default 2 minutes. */
  toleranceMs?: number;
  /**
   * Without local state: 'anchor' trusts and saves the wall time now (for a repository or vault being
   * created, with nothing to expire yet) unless a reference clock disagrees; 'wait' (the default)
   * trusts nothing until confirmed or vouched for by the reference.
   */
  firstUse?: 'anchor' | 'wait';
  /**
   * Asked only when there is no local state, or when it shows a reboot: a wall time that agrees with
   * this (within the tolerance) is trusted and anchored, since the host cannot set that clock.
   */
  reference?: () => Promise<ReferenceTime | undefined>;
}

/** How fast the allowed disagreement grows with the time since the anchor: 100 ppm is 8.64 s a day. */
const MAX_DRIFT_PPM = 100;
const DEFAULT_TOLERANCE_MS = 2 * 60_000;
const OBSERVE_CAP_MS = 10 * 365.25 * 86_400_000;
const HISTORY_LENGTH = 10;
const MAC_CONTEXT = 'amber guarded clock state v1\n';
const UNTRUSTED_HINT = '; deletions wait until the time is confirmed with `amber clock confirm`';

interface Confirmation {
  actor: string;
  at: string;
  wallMs: number;
  /** The status reason just before the confirmation: what the operator overrode. */
  before: string;
}

interface ClockState {
  version: 1;
  anchor: ClockAnchor;
  lastTrustedMs: number;
  history: Confirmation[];
}

type LoadedState = { kind: 'ok'; state: ClockState } | { kind: 'missing' } | { kind: 'bad'; reason: string };

export async function openGuardedClock(options: GuardedClockOptions): Promise<GuardedClock> {
  if (options.macKey.length !== 32) throw new Error('openGuardedClock needs a 32-byte macKey');
  const { statePath, macKey } = options;
  const sources = options.sources ?? systemTimeSources;
  const toleranceMs = options.toleranceMs ?? DEFAULT_TOLERANCE_MS;

  let state: ClockState | undefined; // the believed, saved state; undefined when there is none
  let lastTrustedMs = 0;
  let untrustedReason: string | undefined; // once set, stays set until confirm(): stable decisions
  let lowestWallMs = Infinity; // lowest wall time seen while untrusted
  let highestSeenMs = 0; // for retentionBaseMs
  let trustedReason = '';
  let anchoredHere = false; // this process set the anchor, so it shares the anchor's boot by definition

  function evaluate(): { wallMs: number; trusted: boolean } {
    const wallMs = sources.wallMs();
    if (untrustedReason === undefined && state !== undefined) {
      const verdict = checkAnchor(state.anchor, sources, { wallMs, toleranceMs, anchoredHere });
      if (verdict.trusted) {
        trustedReason = verdict.reason;
        lastTrustedMs = Math.max(lastTrustedMs, wallMs);
      } else {
        untrustedReason = verdict.reason + UNTRUSTED_HINT;
      }
    }
    const trusted = untrustedReason === undefined;
    if (!trusted) lowestWallMs = Math.min(lowestWallMs, wallMs);
    highestSeenMs = Math.max(highestSeenMs, wallMs, lastTrustedMs);
    return { wallMs, trusted };
  }

  function status(): ClockStatus {
    const { wallMs, trusted } = evaluate();
    return {
      trusted,
      reason: trusted ? trustedReason : untrustedReason!,
      wallMs,
      lastTrustedMs,
      deletionNowMs: trusted ? wallMs : Math.min(lowestWallMs, lastTrustedMs),
      ...(state === undefined ? {} : { anchor: { ...state.anchor } }),
    };
  }

  const loaded = await readState(statePath, macKey);
  if (loaded.kind === 'ok') {
    state = loaded.state;
    lastTrustedMs = state.lastTrustedMs;
    if (!evaluate().trusted) {
      // After a reboot or a jump, a clock the host cannot set may vouch for the wall time again.
      const checked = await checkReference(options.reference, sources, toleranceMs);
      if (checked.agrees) {
        const anchor = anchorNow(sources, checked.source);
        const next = { ...newState(anchor, state.history), lastTrustedMs: Math.max(lastTrustedMs, anchor.wallMs) };
        await writeState(statePath, macKey, next).then(
          () => {
            state = next;
            lastTrustedMs = next.lastTrustedMs;
            untrustedReason = undefined;
            lowestWallMs = Infinity;
            anchoredHere = true;
          },
          () => {},
        );
      }
    }
    // A trusted run saves the raised lastTrusted for the next boot; failing to is harmless (a lower
    // lastTrusted only delays expiry) and must not fail a backup.
    if (evaluate().trusted && lastTrustedMs > state.lastTrustedMs) {
      const raised = { ...state, lastTrustedMs };
      await writeState(statePath, macKey, raised).then(
        () => {
          state = raised;
        },
        () => {},
      );
    }
  } else if (loaded.kind === 'missing') {
    const checked = await checkReference(options.reference, sources, toleranceMs);
    // Anchoring on purpose still defers to a reference clock that says the wall time is wrong.
    if (checked.agrees || (options.firstUse === 'anchor' && checked.reason === '')) {
      const first = newState(anchorNow(sources, checked.agrees ? checked.source : undefined), []);
      try {
        await writeState(statePath, macKey, first);
        state = first;
        lastTrustedMs = first.lastTrustedMs;
        anchoredHere = true;
      } catch (error) {
        // Trust that is not saved would be first use again next run, so the check would never happen.
        untrustedReason =
          `first use on this host, but the clock state could not be saved at ${statePath} ` +
          `(${describe(error)}); nothing may expire${UNTRUSTED_HINT}`;
      }
    } else {
      // Nothing is saved: an anchor taken now would make a forged time trusted from the next run on.
      untrustedReason =
        `there is no clock state for this repository on this host (${statePath}: first use, or it was removed)` +
        `${checked.reason ? `, and ${checked.reason}` : ''}, so no time is known to be right; nothing may expire${UNTRUSTED_HINT}`;
    }
  } else {
    untrustedReason = `${loaded.reason}; nothing may expire${UNTRUSTED_HINT}`;
  }

  return {
    deletionNowMs: () => status().deletionNowMs,
    retentionBaseMs: () => {
      evaluate();
      return highestSeenMs;
    },
    observe: (ms) => {
      if (!Number.isFinite(ms)) return;
      highestSeenMs = Math.max(highestSeenMs, Math.min(ms, sources.wallMs() + OBSERVE_CAP_MS));
    },
    status,
    confirm: async (actor) => {
      if (actor.trim() === '') throw new Error('confirm needs the name of the operator who confirms the time');
      const before = status();
      const anchor = { ...anchorNow(sources), confirmedBy: actor };
      const confirmation = { actor, at: anchor.at, wallMs: anchor.wallMs, before: before.reason };
      const next = newState(anchor, [...(state?.history ?? []), confirmation].slice(-HISTORY_LENGTH));
      try {
        await writeState(statePath, macKey, next);
      } catch (error) {
        throw new AmberError(
          errnoOf(error) === 'ENOSPC' ? 'STORAGE_FULL' : 'STORAGE_ACCESS_DENIED',
          `The clock confirmation could not be saved at ${statePath}: ${describe(error)}`,
          { cause: error, hint: 'make the cache directory writable by this user, then confirm again' },
        );
      }
      state = next;
      lastTrustedMs = next.lastTrustedMs;
      untrustedReason = undefined;
      lowestWallMs = Infinity;
      anchoredHere = true;
      return status();
    },
  };
}

interface AnchorCheck {
  wallMs: number;
  toleranceMs: number;
  anchoredHere: boolean;
}

function checkAnchor(anchor: ClockAnchor, sources: TimeSources, { wallMs, toleranceMs, anchoredHere }: AnchorCheck) {
  const since = `the anchor set ${anchor.confirmedBy ? `by ${anchor.confirmedBy}` : 'on first use'} at ${anchor.at}`;
  const bootId = sources.bootId();
  if (!anchoredHere && (bootId === '' || anchor.bootId === '')) {
    return {
      trusted: false,
      reason: `the boot id cannot be read, so this run cannot show it shares the boot of ${since}`,
    };
  }
  if (!anchoredHere && bootId !== anchor.bootId) {
    return {
      trusted: false,
      reason: `the host rebooted since ${since} (boot ${anchor.bootId.slice(0, 8)}, now ${bootId.slice(0, 8)})`,
    };
  }
  const elapsedMs = sources.sinceBootMs() - anchor.sinceBootMs;
  if (elapsedMs < 0) {
    return {
      trusted: false,
      reason: `the time since boot went back by ${formatDurationMs(-elapsedMs)} since ${since}`,
    };
  }
  const offsetMs = wallMs - (anchor.wallMs + elapsedMs);
  const allowedMs = toleranceMs + (elapsedMs * MAX_DRIFT_PPM) / 1_000_000;
  if (Math.abs(offsetMs) > allowedMs) {
    const direction = offsetMs > 0 ? 'forward' : 'back';
    return {
      trusted: false,
      reason: `the wall clock jumped ${direction} ${formatDurationMs(Math.abs(offsetMs))} since ${since}`,
    };
  }
  const boot = bootId.slice(0, 8) || 'id unknown';
  return {
    trusted: true,
    reason: `wall time agrees with ${since} (boot ${boot}, off by ${formatDurationMs(Math.abs(offsetMs))})`,
  };
}

function anchorNow(sources: TimeSources, confirmedBy?: string): ClockAnchor {
  const wallMs = sources.wallMs();
  const anchor = { bootId: sources.bootId(), wallMs, sinceBootMs: sources.sinceBootMs(), at: isoDate(wallMs) };
  return confirmedBy === undefined ? anchor : { ...anchor, confirmedBy };
}

/** Whether the wall time agrees with the reference clock; a reference that cannot be read vouches for nothing. */
async function checkReference(reference: GuardedClockOptions['reference'], sources: TimeSources, toleranceMs: number) {
  let time: ReferenceTime | undefined;
  try {
    time = await reference?.();
  } catch {
    time = undefined;
  }
  if (time === undefined || !Number.isFinite(time.wallMs)) return { agrees: false, reason: '' };
  const offsetMs = sources.wallMs() - time.wallMs;
  const off = formatDurationMs(Math.abs(offsetMs));
  if (Math.abs(offsetMs) <= toleranceMs)
    return { agrees: true, source: time.source, reason: `wall time agrees with ${time.source} (off by ${off})` };
  return { agrees: false, reason: `the wall clock is ${off} ${offsetMs > 0 ? 'ahead of' : 'behind'} ${time.source}` };
}

function newState(anchor: ClockAnchor, history: Confirmation[]): ClockState {
  return { version: 1, anchor, lastTrustedMs: anchor.wallMs, history };
}

// The file is { state, mac }: the MAC covers a canonical (sorted-key) encoding of state behind a
// context string, so the file may be pretty-printed and the key cannot be confused with other uses.
function macOf(key: Buffer, state: unknown): Buffer {
  return hmacSha256(key, Buffer.from(MAC_CONTEXT + canonicalJson(state)));
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value)
      .filter(([, item]) => item !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([name, item]) => `${JSON.stringify(name)}:${canonicalJson(item)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

async function readState(path: string, key: Buffer): Promise<LoadedState> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if (errnoOf(error) === 'ENOENT' || errnoOf(error) === 'ENOTDIR') return { kind: 'missing' };
    return { kind: 'bad', reason: `the clock state at ${path} cannot be read (${describe(error)})` };
  }
  let file: { state?: unknown; mac?: unknown };
  try {
    file = JSON.parse(text);
  } catch {
    return { kind: 'bad', reason: `the clock state at ${path} is not valid JSON` };
  }
  const mac =
    typeof file?.mac === 'string' && /^[0-9a-f]{64}$/.test(file.mac) ? Buffer.from(file.mac, 'hex') : undefined;
  if (mac === undefined || !timingSafeEqual(mac, macOf(key, file.state))) {
    return { kind: 'bad', reason: `the clock state at ${path} was altered or written with another key (bad MAC)` };
  }
  if (!isClockState(file.state)) {
    return { kind: 'bad', reason: `the clock state at ${path} has an unknown version or shape` };
  }
  return { kind: 'ok', state: file.state };
}

function isClockState(value: unknown): value is ClockState {
  const state = value as ClockState;
  const finite = (n: unknown) => typeof n === 'number' && Number.isFinite(n);
  return (
    typeof state === 'object' &&
    state !== null &&
    state.version === 1 &&
    finite(state.lastTrustedMs) &&
    typeof state.anchor === 'object' &&
    state.anchor !== null &&
    typeof state.anchor.bootId === 'string' &&
    finite(state.anchor.wallMs) &&
    finite(state.anchor.sinceBootMs) &&
    typeof state.anchor.at === 'string' &&
    (state.anchor.confirmedBy === undefined || typeof state.anchor.confirmedBy === 'string') &&
    Array.isArray(state.history)
  );
}

// Temporary file, fsync, rename over the old state, fsync the directory: a crash leaves the old state
// or the new one, never a torn file (which would read as altered and stop all expiry).
async function writeState(path: string, key: Buffer, state: ClockState): Promise<void> {
  const text = `${JSON.stringify({ state, mac: macOf(key, state).toString('hex') }, null, 2)}\n`;
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const temp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    const handle = await open(temp, 'wx', 0o600);
    try {
      await handle.writeFile(text);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  const dirHandle = await open(dir, 'r');
  try {
    await dirHandle.sync();
  } catch {
    // Some filesystems cannot fsync a directory; the file itself is already synced.
  } finally {
    await dirHandle.close();
  }
}

function errnoOf(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

function describe(error: unknown): string {
  return errnoOf(error) ?? (error instanceof Error ? error.message : String(error));
}
