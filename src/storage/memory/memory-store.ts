// A Store held in a Map, for unit tests. It keeps the same contract as the real backends, so a test
// that passes against it is not relying on behaviour the fs or s3 stores would refuse.
import assert from 'node:assert/strict';
import { AmberError } from '../../core/errors.ts';
import { isValidObjectName } from '../store.ts';
import type { ByteRange, Enforcement, ObjectInfo, Store } from '../store.ts';

export function createMemoryStore(location = 'memory:'): Store {
  const objects = new Map<string, Uint8Array>();

  function checkName(name: string): void {
    if (!isValidObjectName(name)) {
      throw new AmberError('INVALID_OBJECT_NAME', `Object name ${JSON.stringify(name)} is not valid for ${location}`, {
        hint: 'Object names are lowercase segments of a-z, 0-9, _, . and - joined by /.',
      });
    }
  }

  function lookup(name: string): Uint8Array {
    checkName(name);
    const bytes = objects.get(name);
    if (bytes === undefined) {
      throw new AmberError('OBJECT_NOT_FOUND', `Object '${name}' does not exist in ${location}`);
    }
    return bytes;
  }

  return {
    location,

    async put(name: string, bytes: Uint8Array): Promise<void> {
      checkName(name);
      if (objects.has(name)) {
        throw new AmberError('OBJECT_EXISTS', `Object '${name}' already exists in ${location}`, {
          hint: 'Objects are never overwritten; write under a new name.',
        });
      }
      // Copy so that a caller reusing its buffer cannot change what was stored. (Not bytes.slice():
      // on a Buffer that is a view, not a copy.)
      objects.set(name, new Uint8Array(bytes));
    },

    async get(name: string, range?: ByteRange, into?: Uint8Array): Promise<Uint8Array> {
      const bytes = lookup(name);
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
      return { name, sizeBytes: lookup(name).length };
    },

    async *list(prefix: string): AsyncIterable<ObjectInfo> {
      // Snapshot the entries so puts made while the caller iterates do not disturb the walk.
      for (const [name, bytes] of [...objects]) {
        if (name.startsWith(prefix)) yield { name, sizeBytes: bytes.length };
      }
    },

    async exists(): Promise<boolean> {
      return objects.size > 0;
    },

    enforcement(): Enforcement {
      return { enforcer: 'client', holdsAgainst: [], notes: 'In-memory store for tests; nothing is retained beyond the process.' };
    },
  };
}
