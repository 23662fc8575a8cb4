// The only place that reads the system clock. Everything else takes a Clock, so tests can move
// time and retention decisions can later go through the guarded clock.
import { performance } from 'node:perf_hooks';
import { isoDate } from './units.ts';

export interface Clock {
  /** Wall-clock time in milliseconds since the epoch. */
  nowMs(): number;
  /** Monotonic milliseconds since an arbitrary origin; never goes backwards within a process. */
  monotonicMs(): number;
}

export const systemClock: Clock = {
  nowMs: () => Date.now(),
  monotonicMs: () => performance.now(),
};

export function nowIso(clock: Clock): string {
  return isoDate(clock.nowMs());
}
