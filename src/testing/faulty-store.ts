// A Store wrapper for tests that fails on purpose, so callers' handling of full disks and flaky
// storage can be tested without a real full disk.
import { AmberError } from '../core/errors.ts';
import type { ByteRange, PutOptions, Store } from '../storage/store.ts';

export interface StoreFaults {
  /** A put that would take the bytes stored through this wrapper past this total fails with STORAGE_FULL. */
  fullAfterBytes?: number;
  /** get of a name for which this returns true fails with STORAGE_TRANSIENT. */
  failGet?: (name: string) => boolean;
  /** put of a name for which this returns true fails with STORAGE_TRANSIENT, storing nothing. */
  failPutNames?: (name: string) => boolean;
}

export function createFaultyStore(inner: Store, faults: StoreFaults): Store {
  let storedBytes = 0;

  function transient(action: string, name: string): AmberError {
    return new AmberError(
      'STORAGE_TRANSIENT',
      `Injected failure: could not ${action} object '${name}' in ${inner.location}`,
      {
        hint: 'This failure was injected by a test.',
      },
    );
  }

  async function put(name: string, bytes: Uint8Array, options?: PutOptions): Promise<void> {
    if (faults.failPutNames?.(name)) throw transient('write', name);
    const limit = faults.fullAfterBytes ?? Infinity;
    if (storedBytes + bytes.length > limit) {
      throw new AmberError(
        'STORAGE_FULL',
        `Injected failure: no space left to write object '${name}' in ${inner.location}`,
        {
          hint: 'This failure was injected by a test.',
          details: { name, sizeBytes: bytes.length, storedBytes, fullAfterBytes: limit },
        },
      );
    }
    // Reserved before awaiting, so concurrent puts cannot together overshoot the limit.
    storedBytes += bytes.length;
    try {
      await inner.put(name, bytes, options);
    } catch (error) {
      storedBytes -= bytes.length;
      throw error;
    }
  }

  async function get(name: string, range?: ByteRange): Promise<Uint8Array> {
    if (faults.failGet?.(name)) throw transient('read', name);
    return inner.get(name, range);
  }

  return {
    location: inner.location,
    put,
    get,
    stat: (name) => inner.stat(name),
    list: (prefix) => inner.list(prefix),
    exists: () => inner.exists(),
    enforcement: () => inner.enforcement(),
    // Retention is never faulted: the wrapper only makes puts and gets fail.
    protect: (names, retention) => inner.protect(names, retention),
    protection: (names) => inner.protection(names),
    deleteExpired: (name) => inner.deleteExpired(name),
  };
}
