// What the agent remembers of each job between runs and restarts: one small JSON file a job in the
// state directory, written atomically (temporary file, fsync, rename), plus a lock file while the
// job runs, so that `amber run` and the agent never run one job twice at once. `amber status`
// reads the same files. Nothing secret is kept here: times, snapshot ids, error codes and messages.
import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { writeFileAtomic } from '../core/atomic-file.ts';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { AmberError } from '../core/errors.ts';
import type { Tier } from './gfs-tiers.ts';

export interface JobState {
  /** When the agent first knew the job: the age of a job that never succeeded counts from here. */
  sinceMs?: number;
  /** When the last run started (success or not). */
  lastStartMs?: number;
  lastSuccess?: {
    startMs: number;
    endMs: number;
    snapshot?: string;
    partial?: boolean;
    bytesAdded?: number;
    tier?: Tier;
    /** Copies: snapshots copied by that run. */
    copied?: number;
  };
  lastFailure?: { startMs: number; endMs: number; code: string; message: string };
  /** Failures since the last success: the retry backoff grows with it. */
  consecutiveFailures: number;
  /** The period of each tier's last keeper snapshot (gfs-tiers.ts). */
  kept: Partial<Record<Tier, string>>;
  /** When the agent means to run the job next (for `amber status`). */
  nextRunMs?: number;
  /** The objective is missed now: rpo.missed was sent, rpo.recovered not yet. */
  rpoMissed?: boolean;
  /** Copies: the lag bound is exceeded now (copy.lag sent). */
  lagExceeded?: boolean;
  /** Copies: the largest lag of any source at the last check, in seconds. */
  lagSeconds?: number;
  /** Checks: the approval requests pending at the last check (each announced once). */
  seenRequests?: string[];
  /** Drills: the last drill's record id, its achieved RTO and whether it passed. */
  lastDrill?: { id: string; rtoSeconds: number; passed: boolean };
  /** Drills: no drill passed within its interval and grace (drill.overdue sent, not yet one that passed). */
  drillOverdue?: boolean;
  totals: { runs: number; bytesAdded: number; failures: Record<string, number> };
}

export const emptyJobState = (): JobState => ({
  consecutiveFailures: 0,
  kept: {},
  totals: { runs: 0, bytesAdded: 0, failures: {} },
});

/** The default state directory: /var/lib/amber/agent for root, ~/.local/state/amber/agent otherwise. */
export function defaultStateDir(): string {
  if (process.env.AMBER_AGENT_STATE_DIR) return process.env.AMBER_AGENT_STATE_DIR;
  if (process.getuid?.() === 0) return '/var/lib/amber/agent';
  return join(process.env.XDG_STATE_HOME ?? join(homedir(), '.local', 'state'), 'amber', 'agent');
}

/** A job's file name: its kind and name, with anything but letters, digits, - and _ hex-escaped. */
const fileOf = (dir: string, job: string, suffix: string) =>
  join(dir, `${job.replace(/[^A-Za-z0-9_-]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`)}${suffix}`);

export function readJobState(dir: string, job: string): JobState {
  let text: string;
  try {
    text = readFileSync(fileOf(dir, job, '.json'), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return emptyJobState();
    throw new AmberError('USAGE', `cannot read the agent's state ${fileOf(dir, job, '.json')}`, { cause: error });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // A damaged state file costs a catch-up run, nothing more: the repository is the record.
    return emptyJobState();
  }
  return sane(parsed);
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
/** A time `new Date` can show (`amber status` prints them): within ±8.64e15 ms of 1970. */
const isTime = (value: unknown): value is number => Number.isFinite(value) && Math.abs(value as number) <= 8.64e15;
const isCount = (value: unknown): value is number => Number.isInteger(value) && (value as number) >= 0;

/**
 * The state as written, less what has the wrong type (a damaged or hand-edited file): such a field
 * is dropped, as if never recorded, so it can neither crash `amber status` nor read as a recovery
 * point. A lastSuccess or lastFailure without valid times goes whole.
 */
function sane(parsed: unknown): JobState {
  const state = emptyJobState();
  if (!isObject(parsed)) return state;
  const raw = parsed as Partial<Record<keyof JobState, unknown>>;
  if (isTime(raw.sinceMs)) state.sinceMs = raw.sinceMs;
  if (isTime(raw.lastStartMs)) state.lastStartMs = raw.lastStartMs;
  if (isTime(raw.nextRunMs)) state.nextRunMs = raw.nextRunMs;
  if (isObject(raw.lastSuccess) && isTime(raw.lastSuccess.startMs) && isTime(raw.lastSuccess.endMs))
    state.lastSuccess = raw.lastSuccess as JobState['lastSuccess'];
  if (
    isObject(raw.lastFailure) &&
    isTime(raw.lastFailure.startMs) &&
    isTime(raw.lastFailure.endMs) &&
    typeof raw.lastFailure.code === 'string'
  )
    state.lastFailure = {
      ...(raw.lastFailure as JobState['lastFailure'] & object),
      message: String(raw.lastFailure.message ?? ''),
    };
  if (isCount(raw.consecutiveFailures)) state.consecutiveFailures = raw.consecutiveFailures;
  if (isObject(raw.kept))
    for (const [tier, period] of Object.entries(raw.kept))
      if (typeof period === 'string') state.kept[tier as Tier] = period;
  if (typeof raw.rpoMissed === 'boolean') state.rpoMissed = raw.rpoMissed;
  if (typeof raw.lagExceeded === 'boolean') state.lagExceeded = raw.lagExceeded;
  if (Number.isFinite(raw.lagSeconds)) state.lagSeconds = raw.lagSeconds as number;
  if (typeof raw.drillOverdue === 'boolean') state.drillOverdue = raw.drillOverdue;
  if (
    isObject(raw.lastDrill) &&
    typeof raw.lastDrill.id === 'string' &&
    Number.isFinite(raw.lastDrill.rtoSeconds) &&
    typeof raw.lastDrill.passed === 'boolean'
  )
    state.lastDrill = raw.lastDrill as JobState['lastDrill'];
  if (Array.isArray(raw.seenRequests)) state.seenRequests = raw.seenRequests.filter((id) => typeof id === 'string');
  if (isObject(raw.totals)) {
    if (isCount(raw.totals.runs)) state.totals.runs = raw.totals.runs;
    if (isCount(raw.totals.bytesAdded)) state.totals.bytesAdded = raw.totals.bytesAdded;
    if (isObject(raw.totals.failures))
      for (const [code, count] of Object.entries(raw.totals.failures))
        if (isCount(count)) state.totals.failures[code] = count;
  }
  return state;
}

export function writeJobState(dir: string, job: string, state: JobState): void {
  writeFileAtomic(fileOf(dir, job, '.json'), `${JSON.stringify(state, null, 2)}\n`);
}

/**
 * Takes the job's run lock, or says who holds it. A lock whose process is gone (killed mid-run) is
 * taken over: the repository is valid after any interruption, and the run it left is caught up.
 * The lock names its process by pid and, where /proc tells, by boot and start time: after a reboot
 * (or a long time) the pid of a killed agent is some other process's, and a bare pid would keep the
 * job from ever running again.
 */
export function lockJob(dir: string, job: string): { release(): void; interrupted: boolean } | { heldBy: number } {
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const path = fileOf(dir, job, '.lock');
  let interrupted = false;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o644);
      writeSync(fd, `${process.pid}\n${processIdentity(process.pid) ?? ''}\n`);
      closeSync(fd);
      return {
        interrupted,
        release: () => {
          try {
            unlinkSync(path);
          } catch {}
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const [pidLine = '', identity = ''] = readFileSync(path, 'utf8').split('\n');
      const holder = Number(pidLine.trim());
      if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && isAlive(holder)) {
        const actual = processIdentity(holder);
        // Without /proc (or for a process we may not look at) the pid is all there is to go by.
        if (actual === undefined || actual === identity.trim()) return { heldBy: holder };
      }
      unlinkSync(path);
      interrupted = true;
    }
  }
  throw new AmberError('USAGE', `cannot take the run lock ${path}`);
}

/** `BOOT-ID:START-TICKS` of a process (Linux), undefined where /proc does not say. */
export function processIdentity(pid: number): string | undefined {
  try {
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    const start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    return start ? `${boot}:${start}` : undefined;
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
