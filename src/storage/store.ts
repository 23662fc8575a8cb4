// The storage contract every backend implements. It knows nothing of the repository format:
// names are opaque slash-separated strings, bytes are opaque.
import { AmberError } from '../core/errors.ts';
//
// Guarantees every backend gives (the conformance suite in src/testing checks them):
// - put is create-only: it never replaces an existing object, and a failed or interrupted put never
//   leaves a partial object visible under its final name. A put of an existing name fails with
//   OBJECT_EXISTS, whatever the bytes.
// - read after write: once put resolves, get/stat/list see the object.
// - get and stat of a missing name fail with OBJECT_NOT_FOUND; list of an empty prefix yields nothing.
// - errors from the underlying system are translated at the boundary into a closed set of codes:
//   OBJECT_NOT_FOUND, OBJECT_EXISTS, STORAGE_FULL, STORAGE_ACCESS_DENIED, STORAGE_TRANSIENT,
//   INVALID_OBJECT_NAME, RETENTION_ACTIVE.

export type RetentionMode = 'governance' | 'compliance';

export interface PutOptions {
  /** Retention to hold the object under until this time (epoch ms); omitted means none yet. */
  retainUntilMs?: number;
  mode?: RetentionMode;
}

export interface ObjectRetention {
  untilMs: number;
  mode: RetentionMode;
}

/** What a store itself holds for one object, read from the store (never from a cache). */
export interface ObjectProtection {
  name: string;
  /** The retain-until date the store enforces (S3 Object Lock, the vault); absent where the store
   *  keeps no dates itself (fs: dates live in the repository's signed grant records). */
  untilMs?: number;
  mode?: RetentionMode;
  legalHold?: boolean;
  /** Whether the store refuses, right now, to change or remove the object whoever asks short of
   *  its administrator (fs: the Linux immutable attribute). */
  locked: boolean;
}

export interface ByteRange {
  offset: number;
  length: number;
}

export interface ObjectInfo {
  name: string;
  sizeBytes: number;
  /** When the store received the object, by the store's own clock (fs: the file's mtime, which the
   *  immutable attribute freezes); forget compares it with the time a snapshot claims. */
  writtenMs?: number;
}

/** Who enforces retention for a store, and against whom it holds. */
export interface Enforcement {
  enforcer: 'storage' | 'server' | 'client';
  holdsAgainst: string[];
  notes: string;
}

/** A version a versioned store keeps beside an object (S3): nothing Amber does makes one on purpose. */
export interface StrayVersion {
  name: string;
  versionId: string;
  /** A version written after the object's first (a racing writer, or an attempt to replace it), or a delete marker. */
  kind: 'later-version' | 'delete-marker';
  /** Whether a later version holds the same bytes as the object (a harmless concurrent write). */
  sameBytes: boolean;
}

export interface Store {
  /** Human-readable location, for messages (a path or URL, never a secret). */
  readonly location: string;
  /** Where a request costs far more than its bytes (remote stores): small reads, data included, are
   *  worth widening to windows of this many bytes. Absent for local stores (trees are still read
   *  through windows there). */
  readonly readAheadBytes?: number;
  /** Pack writes worth having in flight at once (default 1): remote stores hide their latency with
   *  several, each costing a pack of memory. */
  readonly parallelWrites?: number;

  put(name: string, bytes: Uint8Array, options?: PutOptions): Promise<void>;
  /**
   * The object's bytes, or `range` of them. With `into` large enough, they are read into it and a
   * view of it is returned (callers recycle memory); a backend may ignore it and return new memory.
   */
  get(name: string, range?: ByteRange, into?: Uint8Array): Promise<Uint8Array>;
  stat(name: string): Promise<ObjectInfo>;
  /** Objects whose names start with prefix, in no particular order. */
  list(prefix: string): AsyncIterable<ObjectInfo>;
  /** Whether the store's root exists and holds anything at all. */
  exists(): Promise<boolean>;
  enforcement(): Enforcement;
  /**
   * Raises the retention of existing objects; never lowers a date or weakens a mode. A store may keep
   * dates to its own precision, rounded up (S3: whole seconds). Stores that
   * keep dates natively apply them here (and at put); the fs store makes each object immutable and
   * its directory append-only where the process may, in batched calls. Missing names fail with
   * OBJECT_NOT_FOUND.
   */
  protect(names: string[], retention: ObjectRetention): Promise<void>;
  /** What the store holds for each name, in order. Missing names fail with OBJECT_NOT_FOUND. */
  protection(names: string[]): Promise<ObjectProtection[]>;
  /**
   * Removes an object whose retention has ended. A store that keeps dates refuses with
   * RETENTION_ACTIVE while one has not passed (by its own clock) or a hold is on; the fs store,
   * whose dates are the repository's grant records, lifts its attributes and removes the object:
   * the caller (prune) has checked the grants. Missing names fail with OBJECT_NOT_FOUND.
   */
  deleteExpired(name: string): Promise<void>;

  /**
   * Stores run by a server (the vault, S3): the server's clock now, from its Date header, or
   * undefined when it cannot be read. A host's guarded clock checks its own wall time against it.
   */
  serverTimeMs?(): Promise<number | undefined>;

  // Versioned stores (S3) only.
  /** Versions beside the objects under prefix, and delete markers: verify reports them. */
  strayVersions?(prefix: string): AsyncIterable<StrayVersion>;
  /** Removes the delete markers under prefix (they hide nothing Amber reads, but confuse other tools); returns how many. */
  removeDeleteMarkers?(prefix: string): Promise<number>;
  /** Places or lifts the store's own legal hold on each object (S3 legal holds). */
  setLegalHold?(names: string[], on: boolean): Promise<void>;
  /**
   * Lowers governance-mode dates above untilMs to it (never compliance): only after an approver
   * quorum lifted or shortened a lock, with credentials allowed to bypass governance. Returns how
   * many objects changed.
   */
  lowerGovernanceRetention?(names: string[], untilMs: number): Promise<number>;
}

/** Object names: lowercase letters, digits, '-', '_', '.' in segments joined by '/'; no '..'. */
const SEGMENT = /^[a-z0-9_][a-z0-9_.-]{0,127}$/;

export function isValidObjectName(name: string): boolean {
  if (name.length === 0 || name.length > 512) return false;
  return name.split('/').every((segment) => SEGMENT.test(segment) && !segment.includes('..'));
}

/**
 * Throws INVALID_OBJECT_NAME unless name is a valid object name for the store at location (every
 * backend and the vault check names with this, so the code and message are the same everywhere).
 * `reserved` is a top-level directory the store keeps for itself (fs and vault: `tmp`).
 */
export function checkObjectName(name: string, location: string, reserved?: string): void {
  const isReserved = reserved !== undefined && (name === reserved || name.startsWith(`${reserved}/`));
  if (!isValidObjectName(name) || isReserved) {
    throw new AmberError(
      'INVALID_OBJECT_NAME',
      `Object name ${JSON.stringify(name.slice(0, 80))}${name.length > 80 ? '…' : ''} is not valid for ${location}`,
      {
        hint: isReserved
          ? `'${reserved}/' holds the store's temporary files and cannot hold objects.`
          : 'Object names are lowercase segments of a-z, 0-9, _, . and - joined by /.',
      },
    );
  }
}

/** A Buffer over the same memory (Buffer.from(uint8Array) would copy: tens of MiB for a pack). */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
