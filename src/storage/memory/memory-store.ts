// A Store held in a Map, for unit tests. It keeps the same contract as the real backends, so a test
// that passes against it is not relying on behaviour the fs or s3 stores would refuse. It keeps
// retention dates the way S3 Object Lock does (by its own clock, injectable so tests can move time),
// but nothing outside the process is bound by them: enforcement stays 'client'.
import assert from 'node:assert/strict';
import { systemClock } from '../../core/clock.ts';
import type { Clock } from '../../core/clock.ts';
import { AmberError } from '../../core/errors.ts';
import { isoDate } from '../../core/units.ts';
import { checkObjectName } from '../store.ts';
import type {
  ByteRange,
  Enforcement,
  ObjectInfo,
  ObjectProtection,
  ObjectRetention,
  PutOptions,
  RetentionMode,
  Store,
} from '../store.ts';

export interface MemoryStoreOptions {
  /** The store's own clock: when objects were written and whether a retention date has passed. */
  clock?: Clock;
}

interface StoredObject {
  bytes: Uint8Array;
  writtenMs: number;
  retention?: ObjectRetention;
  legalHold: boolean;
}

/** Compliance cannot be weakened to governance; governance may be raised to compliance. */
function strongerMode(current: RetentionMode | undefined, asked: RetentionMode): RetentionMode {
  return current === 'compliance' ? 'compliance' : asked;
}

/** The retention after raising `current` to `asked`: dates only move later, modes only get stronger. */
function raised(current: ObjectRetention | undefined, asked: ObjectRetention): ObjectRetention {
  return {
    untilMs: Math.max(current?.untilMs ?? -Infinity, asked.untilMs),
    mode: strongerMode(current?.mode, asked.mode),
  };
}

function checkRetention(retention: ObjectRetention): void {
  assert.ok(Number.isFinite(retention.untilMs), 'retention.untilMs must be a finite number of epoch ms');
  assert.ok(
    retention.mode === 'governance' || retention.mode === 'compliance',
    'retention.mode must be governance or compliance',
  );
}

export function createMemoryStore(location = 'memory:', options: MemoryStoreOptions = {}): Store {
  const clock = options.clock ?? systemClock;
  const objects = new Map<string, StoredObject>();

  function checkName(name: string): void {
    checkObjectName(name, location);
  }

  function lookup(name: string): StoredObject {
    checkName(name);
    const stored = objects.get(name);
    if (stored === undefined) {
      throw new AmberError('OBJECT_NOT_FOUND', `Object '${name}' does not exist in ${location}`);
    }
    return stored;
  }

  function infoOf(name: string, stored: StoredObject): ObjectInfo {
    return { name, sizeBytes: stored.bytes.length, writtenMs: stored.writtenMs };
  }

  return {
    location,

    async put(name: string, bytes: Uint8Array, putOptions: PutOptions = {}): Promise<void> {
      checkName(name);
      if (objects.has(name)) {
        throw new AmberError('OBJECT_EXISTS', `Object '${name}' already exists in ${location}`, {
          hint: 'Objects are never overwritten; write under a new name.',
        });
      }
      let retention: ObjectRetention | undefined;
      if (putOptions.retainUntilMs !== undefined) {
        retention = { untilMs: putOptions.retainUntilMs, mode: putOptions.mode ?? 'governance' };
        checkRetention(retention);
      }
      // Copy so that a caller reusing its buffer cannot change what was stored. (Not bytes.slice():
      // on a Buffer that is a view, not a copy.)
      objects.set(name, { bytes: new Uint8Array(bytes), writtenMs: clock.nowMs(), retention, legalHold: false });
    },

    async get(name: string, range?: ByteRange, into?: Uint8Array): Promise<Uint8Array> {
      const { bytes } = lookup(name);
      const copy = (part: Uint8Array) => {
        if (!into || into.length < part.length) return part.slice();
        into.set(part);
        return into.subarray(0, part.length);
      };
      if (range === undefined) return copy(bytes);
      assert.ok(Number.isSafeInteger(range.offset) && range.offset >= 0, 'range.offset must be a non-negative integer');
      assert.ok(Number.isSafeInteger(range.length) && range.length >= 0, 'range.length must be a non-negative integer');
      if (range.offset + range.length > bytes.length) {
        throw new AmberError(
          'OBJECT_CORRUPT',
          `Object '${name}' in ${location} holds ${bytes.length} bytes, fewer than the ${range.length} asked for at offset ${range.offset}`,
        );
      }
      return copy(bytes.subarray(range.offset, range.offset + range.length));
    },

    async stat(name: string): Promise<ObjectInfo> {
      return infoOf(name, lookup(name));
    },

    async *list(prefix: string): AsyncIterable<ObjectInfo> {
      // Snapshot the entries so puts made while the caller iterates do not disturb the walk.
      for (const [name, stored] of [...objects]) {
        if (name.startsWith(prefix)) yield infoOf(name, stored);
      }
    },

    async exists(): Promise<boolean> {
      return objects.size > 0;
    },

    enforcement(): Enforcement {
      return {
        enforcer: 'client',
        holdsAgainst: [],
        notes: 'In-memory store for tests; nothing is retained beyond the process.',
      };
    },

    async protect(names: string[], retention: ObjectRetention): Promise<void> {
      checkRetention(retention);
      // All names are checked before any is changed, so a missing one leaves every object as it was.
      const found = names.map((name) => lookup(name));
      for (const stored of found) stored.retention = raised(stored.retention, retention);
    },

    async protection(names: string[]): Promise<ObjectProtection[]> {
      const nowMs = clock.nowMs();
      return names.map((name) => {
        const { retention, legalHold } = lookup(name);
        // No API sets a hold on this store yet; the field appears only when one is on.
        const hold = legalHold ? { legalHold } : {};
        if (retention === undefined) return { name, ...hold, locked: legalHold };
        return {
          name,
          untilMs: retention.untilMs,
          mode: retention.mode,
          ...hold,
          locked: legalHold || retention.untilMs > nowMs,
        };
      });
    },

    async deleteExpired(name: string): Promise<void> {
      const { retention, legalHold } = lookup(name);
      if (legalHold) {
        throw new AmberError('RETENTION_ACTIVE', `Object '${name}' in ${location} is under legal hold`, {
          hint: 'Release the legal hold before removing the object.',
          details: { name, location },
        });
      }
      if (retention !== undefined && retention.untilMs > clock.nowMs()) {
        const until = isoDate(retention.untilMs);
        throw new AmberError(
          'RETENTION_ACTIVE',
          `Object '${name}' in ${location} is retained until ${until} (${retention.mode} mode)`,
          {
            hint: `It can be removed after ${until}; run the removal again then.`,
            details: { name, location, untilMs: retention.untilMs, mode: retention.mode },
          },
        );
      }
      objects.delete(name);
    },
  };
}
