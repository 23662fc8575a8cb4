// Option values shared by several commands: lock modes, durations, dates and counts, each refused
// with a message that names the option.
import { Option } from 'commander';
import { AmberError, isAmberError } from '../core/errors.ts';
import { addDurationMs, parseDateMs, parseDurationMs, parseSizeBytes } from '../core/units.ts';
import type { RetentionMode } from '../storage/store.ts';

export const LOCK_MODES: readonly RetentionMode[] = ['governance', 'compliance'];

export function lockModeOption(description: string): Option {
  return new Option('--lock-mode <mode>', description).choices(LOCK_MODES);
}

function naming<T>(flag: string, parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (!isAmberError(error)) throw error;
    throw new AmberError(error.code, `${flag}: ${error.message}`, { hint: error.hint, cause: error });
  }
}

/** `90d`, `1y2w`, `36h` → milliseconds. */
export function durationFlag(flag: string, text: string): number {
  return naming(flag, () => parseDurationMs(text));
}

/** A retention counted from `nowMs`, in milliseconds: y and mo as calendar years and months (7y from 2026-12-01 ends on 2033-12-01). */
export function retainFlag(flag: string, text: string, nowMs: number): number {
  return naming(flag, () => addDurationMs(nowMs, text) - nowMs);
}

/** A duration, or `none` for no bound (null). */
export function boundFlag(flag: string, text: string): number | null {
  return text.trim() === 'none' ? null : durationFlag(flag, text);
}

/** An ISO date or `+DURATION` counted from `nowMs`. */
export function dateFlag(flag: string, text: string, nowMs: number): number {
  return naming(flag, () => parseDateMs(text, nowMs));
}

/** `50M`, `1G`, `4096` → bytes. */
export function sizeFlag(flag: string, text: string): number {
  return naming(flag, () => parseSizeBytes(text));
}

/** A whole number of snapshots, zero or more. */
export function countFlag(flag: string, text: string): number {
  const value = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(value)) {
    throw new AmberError('USAGE', `${flag} "${text}" must be a whole number, e.g. ${flag} 7`);
  }
  return value;
}
