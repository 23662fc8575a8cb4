// The S3 store: objects in a bucket with versioning and Object Lock (AWS S3, Ceph RGW, MinIO).
// Object Lock makes retention the storage's own promise: a version under COMPLIANCE cannot be
// deleted or shortened by anyone, the bucket's administrator included, until its date.
//
// A versioned bucket never refuses a second PUT of a key: it keeps both versions, and a plain GET
// returns the newest. So this store treats the *oldest* version of a key as the object and reads
// everything by version id: a later PUT (a racing writer, or an attacker with the backup's
// credentials) cannot change what is read, and verify reports such versions and any delete markers
// (`strayVersions`). Each key's oldest version is resolved once per process by listing its versions.
import { createHash } from 'node:crypto';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetBucketVersioningCommand,
  GetObjectCommand,
  GetObjectLockConfigurationCommand,
  HeadObjectCommand,
  ListObjectVersionsCommand,
  PutObjectCommand,
  PutObjectLegalHoldCommand,
  PutObjectRetentionCommand,
  S3Client,
  type ListObjectVersionsCommandOutput,
  type ObjectLockRetentionMode,
} from '@aws-sdk/client-s3';
import { AmberError, isAmberError } from '../../core/errors.ts';
import type { Clock } from '../../core/clock.ts';
import { isoDate } from '../../core/units.ts';
import {
  asBuffer,
  checkObjectName,
  isValidObjectName,
  type ByteRange,
  type Enforcement,
  type ObjectInfo,
  type ObjectProtection,
  type ObjectRetention,
  type PutOptions,
  type RetentionMode,
  type Store,
  type StrayVersion,
} from '../store.ts';
import { formatS3Location, type S3Location } from './s3-location.ts';
import { s3CodeOf, statusOf, translateS3Error } from './s3-errors.ts';

export interface S3StoreOptions {
  clock: Clock;
  /** Explicit credentials (tests); otherwise the SDK's standard chain: environment, profile, instance role. */
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** A profile of the shared AWS configuration files, instead of the default chain's. */
  profile?: string;
  /** Defaults to AWS_REGION, then us-east-1. */
  region?: string;
  /** Requests in flight at once (sockets), and objects worked on at once by protect and protection. */
  concurrency?: number;
  /** Attempts per request, with the SDK's exponential backoff and jitter between them. */
  maxAttempts?: number;
  /** Versions per listing page (S3's maximum, 1000, by default; tests make pages small). */
  listPageSize?: number;
}

export interface BucketLockState {
  versioning: boolean;
  objectLock: boolean;
  /** The bucket's default retention, applied by S3 to versions written without explicit lock headers. */
  defaultRetention?: { mode: RetentionMode; days: number };
}

export interface S3Store extends Store {
  readonly bucket: string;
  /** Versioning and Object Lock as the bucket reports them. */
  bucketLockState(): Promise<BucketLockState>;
  /** Creates the bucket with Object Lock (and so versioning) enabled. */
  createBucket(): Promise<void>;
  strayVersions(prefix: string): AsyncIterable<StrayVersion>;
  removeDeleteMarkers(prefix: string): Promise<number>;
  setLegalHold(names: string[], on: boolean): Promise<void>;
  lowerGovernanceRetention(names: string[], untilMs: number): Promise<number>;
  /** Requests sent so far (each retry counts: each is billed), by S3 operation. */
  requestCounts(): Record<string, number>;
}

/** A key's versions that hold bytes, oldest first; delete markers apart. */
interface KeyVersions {
  versions: { versionId: string; sizeBytes: number; writtenMs?: number; etag?: string }[];
  deleteMarkers: string[];
}

interface Pin {
  versionId: string;
  sizeBytes: number;
  writtenMs?: number;
  /** Retention this process set or read on the version: a lower bound (only a bypass lowers it), so
   *  protect skips objects it already covers instead of asking S3 again each backup. */
  held?: { untilMs: number; mode: RetentionMode };
}

/** Pins kept per process: enough for a large repository's packs, bounded whatever its size. */
const MAX_PINS = 200_000;

export function createS3Store(where: S3Location, options: S3StoreOptions): S3Store {
  const location = formatS3Location(where);
  const { bucket } = where;
  const concurrency = options.concurrency ?? 16;
  const agentOptions = { keepAlive: true, maxSockets: concurrency };
  const client = new S3Client({
    endpoint: where.endpoint,
    forcePathStyle: where.endpoint !== undefined,
    region: options.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
    credentials: options.credentials,
    profile: options.profile,
    maxAttempts: options.maxAttempts ?? 5,
    // Content-MD5 is sent explicitly where AWS requires a checksum; newer default checksums are not
    // understood by every S3-compatible server.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: {
      httpAgent: new HttpAgent(agentOptions),
      httpsAgent: new HttpsAgent(agentOptions),
      connectionTimeout: 10_000,
      requestTimeout: 300_000,
    },
  });
  const counts: Record<string, number> = {};
  client.middlewareStack.add(
    (next, context) => async (args) => {
      counts[context.commandName ?? 'Other'] = (counts[context.commandName ?? 'Other'] ?? 0) + 1;
      return next(args);
    },
    { step: 'deserialize', name: 'amberRequestCount' },
  );
  // The server's Date header, from the last answer that had one (errors too): the clock this host cannot set.
  let serverDate: number | undefined;
  const dateOf = (response: unknown) =>
    Date.parse(String((response as { headers?: Record<string, string> } | undefined)?.headers?.date ?? ''));
  client.middlewareStack.add(
    (next) => async (args) => {
      try {
        const result = await next(args);
        const ms = dateOf(result.response);
        if (Number.isFinite(ms)) serverDate = ms;
        return result;
      } catch (error) {
        const ms = dateOf((error as { $response?: unknown }).$response);
        if (Number.isFinite(ms)) serverDate = ms;
        throw error;
      }
    },
    { step: 'deserialize', name: 'amberServerDate' },
  );

  const keyOf = (name: string) => (where.prefix ? `${where.prefix}/${name}` : name);
  const rootPrefix = where.prefix ? `${where.prefix}/` : '';
  const pins = new Map<string, Pin>();

  function checkName(name: string): void {
    checkObjectName(name, location);
  }

  async function send<T>(what: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      throw translateS3Error(error, what, location);
    }
  }

  function pin(name: string, value: Pin): void {
    const known = pins.get(name);
    pins.delete(name);
    pins.set(name, known?.versionId === value.versionId && !value.held ? { ...value, held: known.held } : value);
    if (pins.size > MAX_PINS) pins.delete(pins.keys().next().value!);
  }

  /** One page of versions under a key prefix. */
  function listPage(
    prefix: string,
    keyMarker?: string,
    versionIdMarker?: string,
  ): Promise<ListObjectVersionsCommandOutput> {
    return send(prefix === rootPrefix ? 'list the repository' : `list ${prefix.slice(rootPrefix.length)}`, () =>
      client.send(
        new ListObjectVersionsCommand({
          Bucket: bucket,
          Prefix: prefix,
          KeyMarker: keyMarker,
          VersionIdMarker: versionIdMarker,
          MaxKeys: options.listPageSize ?? 1000,
        }),
      ),
    );
  }

  /**
   * Every key under `prefix` with its versions, in key order. S3 lists each key's versions newest
   * first, and a key's versions may continue on the next page, so a key is yielded once the listing
   * has moved past it.
   */
  async function* keysUnder(prefix: string, stopAfterKey?: string): AsyncGenerator<[string, KeyVersions]> {
    let keyMarker: string | undefined;
    let versionIdMarker: string | undefined;
    let current: [string, KeyVersions] | undefined;
    for (;;) {
      const page = await listPage(prefix, keyMarker, versionIdMarker);
      const entries = [
        ...(page.Versions ?? []).map((v) => ({
          key: v.Key!,
          versionId: v.VersionId ?? 'null',
          marker: false,
          sizeBytes: v.Size ?? 0,
          writtenMs: v.LastModified?.getTime(),
          etag: v.ETag,
        })),
        ...(page.DeleteMarkers ?? []).map((m) => ({
          key: m.Key!,
          versionId: m.VersionId ?? 'null',
          marker: true,
          sizeBytes: 0,
          writtenMs: m.LastModified?.getTime(),
          etag: undefined,
        })),
      ];
      // The two lists arrive apart; a stable sort by key keeps each key's versions in the server's order.
      entries.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
      for (const entry of entries) {
        if (current && current[0] !== entry.key) {
          yield current;
          current = undefined;
        }
        if (stopAfterKey !== undefined && entry.key > stopAfterKey) return;
        current ??= [entry.key, { versions: [], deleteMarkers: [] }];
        if (entry.marker) current[1].deleteMarkers.push(entry.versionId);
        else
          current[1].versions.unshift({
            versionId: entry.versionId,
            sizeBytes: entry.sizeBytes,
            writtenMs: entry.writtenMs,
            etag: entry.etag,
          });
      }
      if (!page.IsTruncated) break;
      keyMarker = page.NextKeyMarker;
      versionIdMarker = page.NextVersionIdMarker;
    }
    if (current) yield current;
  }

  async function versionsOf(name: string): Promise<KeyVersions> {
    const key = keyOf(name);
    for await (const [found, versions] of keysUnder(key, key)) if (found === key) return versions;
    return { versions: [], deleteMarkers: [] };
  }

  async function pinOf(name: string): Promise<Pin> {
    checkName(name);
    const known = pins.get(name);
    if (known) return known;
    const [oldest] = (await versionsOf(name)).versions;
    if (!oldest) throw new AmberError('OBJECT_NOT_FOUND', `Object '${name}' does not exist in ${location}`);
    const value = { versionId: oldest.versionId, sizeBytes: oldest.sizeBytes, writtenMs: oldest.writtenMs };
    pin(name, value);
    return value;
  }

  async function put(name: string, bytes: Uint8Array, putOptions: PutOptions = {}): Promise<void> {
    checkName(name);
    const exists = () => new AmberError('OBJECT_EXISTS', `Object '${name}' already exists in ${location}`);
    if ((await versionsOf(name)).versions.length > 0) throw exists();
    const lock =
      putOptions.retainUntilMs !== undefined && putOptions.mode && putOptions.retainUntilMs > options.clock.nowMs()
        ? {
            ObjectLockMode: s3Mode(putOptions.mode),
            ObjectLockRetainUntilDate: new Date(ceilSecond(putOptions.retainUntilMs)),
          }
        : {};
    // The caller's memory, not a copy: it keeps it unchanged until put resolves, retries included.
    const body = asBuffer(bytes);
    const md5 = createHash('md5').update(body).digest();
    let written: { VersionId?: string; $metadata: { attempts?: number } };
    try {
      written = await send(`write ${name}`, () =>
        client.send(
          new PutObjectCommand({
            Bucket: bucket,
            Key: keyOf(name),
            Body: body,
            ContentLength: body.length,
            ContentMD5: md5.toString('base64'),
            // Create-only where the server honours it (AWS); others keep both versions, and the oldest wins below.
            IfNoneMatch: '*',
            ...lock,
          }),
        ),
      );
    } catch (error) {
      written = {
        $metadata: {
          attempts: (error as { cause?: { $metadata?: { attempts?: number } } }).cause?.$metadata?.attempts,
        },
      };
      if (!isAmberError(error, 'OBJECT_EXISTS')) throw error;
    }
    const [oldest] = (await versionsOf(name)).versions;
    if (oldest && oldest.versionId !== written.VersionId) {
      // The SDK retried a PUT whose answer was lost, and the first attempt landed: the same bytes are
      // this put done (a single-part upload's ETag is the MD5 of its bytes).
      const ownEarlierAttempt =
        (written.$metadata.attempts ?? 1) > 1 && oldest.etag?.replace(/"/g, '') === md5.toString('hex');
      if (!ownEarlierAttempt) throw exists();
    }
    if (oldest) {
      const held =
        'ObjectLockMode' in lock && oldest.versionId === written.VersionId
          ? { untilMs: lock.ObjectLockRetainUntilDate!.getTime(), mode: putOptions.mode! }
          : undefined;
      pin(name, { versionId: oldest.versionId, sizeBytes: oldest.sizeBytes, writtenMs: oldest.writtenMs, held });
    }
  }

  async function get(name: string, range?: ByteRange, into?: Uint8Array): Promise<Uint8Array> {
    const { versionId, sizeBytes } = await pinOf(name);
    if (range && range.offset + range.length > sizeBytes) {
      throw new AmberError(
        'OBJECT_CORRUPT',
        `a read of bytes ${range.offset}+${range.length} is past the end of '${name}' (${sizeBytes} bytes) in ${location}`,
      );
    }
    const length = range ? range.length : sizeBytes;
    if (length === 0) return new Uint8Array(0);
    const response = await send(`read ${name}`, () =>
      client.send(
        new GetObjectCommand({
          Bucket: bucket,
          Key: keyOf(name),
          VersionId: versionId,
          Range: range ? `bytes=${range.offset}-${range.offset + range.length - 1}` : undefined,
        }),
      ),
    );
    const target = into && into.byteLength >= length ? into.subarray(0, length) : Buffer.allocUnsafe(length);
    let at = 0;
    try {
      for await (const chunk of response.Body as AsyncIterable<Uint8Array>) {
        if (at + chunk.length > length)
          throw new AmberError('OBJECT_CORRUPT', `'${name}' in ${location} is longer than its listing says`);
        target.set(chunk, at);
        at += chunk.length;
      }
    } catch (error) {
      throw translateS3Error(error, `read ${name}`, location);
    }
    if (at !== length)
      throw new AmberError(
        'STORAGE_TRANSIENT',
        `the read of '${name}' from ${location} ended after ${at} of ${length} bytes`,
      );
    return target;
  }

  async function stat(name: string): Promise<ObjectInfo> {
    const { sizeBytes, writtenMs } = await pinOf(name);
    return { name, sizeBytes, writtenMs };
  }

  async function* list(prefix: string): AsyncIterable<ObjectInfo> {
    for await (const [key, { versions }] of keysUnder(rootPrefix + prefix)) {
      const name = key.slice(rootPrefix.length);
      const [oldest] = versions;
      if (!oldest || !isValidObjectName(name)) continue;
      pin(name, { versionId: oldest.versionId, sizeBytes: oldest.sizeBytes, writtenMs: oldest.writtenMs });
      yield { name, sizeBytes: oldest.sizeBytes, writtenMs: oldest.writtenMs };
    }
  }

  async function exists(): Promise<boolean> {
    const page = await listPage(rootPrefix);
    return (page.Versions ?? []).length > 0;
  }

  async function serverTimeMs(): Promise<number | undefined> {
    serverDate = undefined;
    await client.send(new GetBucketVersioningCommand({ Bucket: bucket })).catch(() => undefined);
    return serverDate;
  }

  async function head(name: string, versionId: string) {
    const response = await send(`read the retention of ${name}`, () =>
      client.send(new HeadObjectCommand({ Bucket: bucket, Key: keyOf(name), VersionId: versionId })),
    );
    return {
      untilMs: response.ObjectLockRetainUntilDate?.getTime(),
      mode: response.ObjectLockMode ? amberMode(response.ObjectLockMode) : undefined,
      legalHold: response.ObjectLockLegalHoldStatus === 'ON',
    };
  }

  async function protect(names: string[], retention: ObjectRetention): Promise<void> {
    names.forEach(checkName);
    // Every name is found before anything changes: a missing one protects none.
    const found = await mapLimited(names, concurrency, pinOf);
    const wanted = ceilSecond(retention.untilMs);
    // An expired date is no retention at all, and S3 refuses to set one.
    if (wanted <= options.clock.nowMs()) return;
    const covered = (held: { untilMs?: number; mode?: RetentionMode } | undefined) =>
      held !== undefined &&
      (held.untilMs ?? 0) >= wanted &&
      (held.mode === 'compliance' || retention.mode === 'governance');
    await mapLimited(names, concurrency, async (name, i) => {
      const { versionId } = found[i];
      if (covered(found[i].held)) return;
      const held = await head(name, versionId);
      const remember = (untilMs: number, mode: RetentionMode) => pin(name, { ...found[i], held: { untilMs, mode } });
      if (held.untilMs !== undefined && held.mode) remember(held.untilMs, held.mode);
      if (covered(held)) return;
      const compliance = held.mode === 'compliance' && (held.untilMs ?? 0) > options.clock.nowMs();
      const untilMs = Math.max(wanted, held.untilMs ?? 0);
      const mode = compliance ? 'compliance' : retention.mode;
      const apply = (to: RetentionMode) =>
        client.send(
          new PutObjectRetentionCommand({
            Bucket: bucket,
            Key: keyOf(name),
            VersionId: versionId,
            Retention: { Mode: s3Mode(to), RetainUntilDate: new Date(untilMs) },
          }),
        );
      try {
        await apply(mode);
        remember(untilMs, mode);
      } catch (error) {
        // Governance to compliance needs the bypass permission, which backup credentials must not
        // have: keep governance with the later date; `lock status` reports the weaker mode.
        if (!(statusOf(error) === 403 && held.mode === 'governance' && mode === 'compliance'))
          throw translateS3Error(error, `extend the retention of ${name}`, location);
        await send(`extend the retention of ${name}`, () => apply('governance'));
        remember(untilMs, 'governance');
      }
    });
  }

  async function protection(names: string[]): Promise<ObjectProtection[]> {
    names.forEach(checkName);
    const nowMs = options.clock.nowMs();
    return mapLimited(names, concurrency, async (name) => {
      const { versionId } = await pinOf(name);
      const held = await head(name, versionId);
      const retained = held.untilMs !== undefined && held.untilMs > nowMs;
      return {
        name,
        untilMs: held.untilMs,
        mode: held.mode,
        legalHold: held.legalHold,
        locked: retained || held.legalHold,
      };
    });
  }

  async function deleteExpired(name: string): Promise<void> {
    checkName(name);
    const { versions, deleteMarkers } = await versionsOf(name);
    if (versions.length === 0)
      throw new AmberError('OBJECT_NOT_FOUND', `Object '${name}' does not exist in ${location}`);
    const nowMs = options.clock.nowMs();
    const retained = (why: string) =>
      new AmberError('RETENTION_ACTIVE', `'${name}' in ${location} is still retained: ${why}`);
    for (const { versionId } of versions) {
      const held = await head(name, versionId);
      if (held.legalHold) throw retained('a legal hold is on');
      if (held.untilMs !== undefined && held.untilMs > nowMs)
        throw retained(`its ${held.mode} retention runs until ${isoDate(held.untilMs)}`);
    }
    pins.delete(name);
    // Newest first, so that the oldest, the object itself, goes last; then the markers.
    for (const versionId of [...versions.map((v) => v.versionId).reverse(), ...deleteMarkers]) {
      try {
        await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: keyOf(name), VersionId: versionId }));
      } catch (error) {
        // The server's word is final: a refusal means the object is still retained, whatever our clock said.
        if (statusOf(error) === 403 || s3CodeOf(error) === 'AccessDenied')
          throw retained('the S3 server refused to delete it');
        throw translateS3Error(error, `delete ${name}`, location);
      }
    }
  }

  async function* strayVersions(prefix: string): AsyncIterable<StrayVersion> {
    for await (const [key, { versions, deleteMarkers }] of keysUnder(rootPrefix + prefix)) {
      const name = key.slice(rootPrefix.length);
      const [oldest, ...later] = versions;
      for (const version of later) {
        yield {
          name,
          versionId: version.versionId,
          kind: 'later-version',
          sameBytes: oldest.etag !== undefined && version.etag === oldest.etag,
        };
      }
      for (const versionId of deleteMarkers) yield { name, versionId, kind: 'delete-marker', sameBytes: false };
    }
  }

  async function removeDeleteMarkers(prefix: string): Promise<number> {
    let removed = 0;
    for await (const stray of strayVersions(prefix)) {
      if (stray.kind !== 'delete-marker') continue;
      await send(`remove a delete marker of ${stray.name}`, () =>
        client.send(new DeleteObjectCommand({ Bucket: bucket, Key: keyOf(stray.name), VersionId: stray.versionId })),
      );
      removed += 1;
    }
    return removed;
  }

  async function setLegalHold(names: string[], on: boolean): Promise<void> {
    const found = await mapLimited(names, concurrency, pinOf);
    await mapLimited(names, concurrency, (name, i) =>
      send(`${on ? 'place' : 'lift'} a legal hold on ${name}`, () =>
        client.send(
          new PutObjectLegalHoldCommand({
            Bucket: bucket,
            Key: keyOf(name),
            VersionId: found[i].versionId,
            LegalHold: { Status: on ? 'ON' : 'OFF' },
          }),
        ),
      ),
    );
  }

  async function lowerGovernanceRetention(names: string[], untilMs: number): Promise<number> {
    const found = await mapLimited(names, concurrency, pinOf);
    // S3 refuses a date in the past: the earliest it takes is the next second.
    const target = Math.max(ceilSecond(untilMs), ceilSecond(options.clock.nowMs() + 1000));
    const lowered = await mapLimited(names, concurrency, async (name, i) => {
      const held = await head(name, found[i].versionId);
      if (held.mode !== 'governance' || held.untilMs === undefined || held.untilMs <= target) return 0;
      await send(`lower the governance retention of ${name}`, () =>
        client.send(
          new PutObjectRetentionCommand({
            Bucket: bucket,
            Key: keyOf(name),
            VersionId: found[i].versionId,
            BypassGovernanceRetention: true,
            Retention: { Mode: 'GOVERNANCE', RetainUntilDate: new Date(target) },
          }),
        ),
      );
      pin(name, { ...found[i], held: { untilMs: target, mode: 'governance' } });
      return 1;
    });
    return lowered.reduce((sum: number, n) => sum + n, 0);
  }

  async function bucketLockState(): Promise<BucketLockState> {
    const versioning = await send('read the bucket versioning', () =>
      client.send(new GetBucketVersioningCommand({ Bucket: bucket })),
    );
    let configuration;
    try {
      configuration = (await client.send(new GetObjectLockConfigurationCommand({ Bucket: bucket })))
        .ObjectLockConfiguration;
    } catch (error) {
      if (s3CodeOf(error) !== 'ObjectLockConfigurationNotFoundError' && statusOf(error) !== 404)
        throw translateS3Error(error, 'read the bucket Object Lock configuration', location);
    }
    const rule = configuration?.Rule?.DefaultRetention;
    const days = rule ? (rule.Days ?? 0) + (rule.Years ?? 0) * 365 : 0;
    return {
      versioning: versioning.Status === 'Enabled',
      objectLock: configuration?.ObjectLockEnabled === 'Enabled',
      defaultRetention: rule?.Mode && days > 0 ? { mode: amberMode(rule.Mode), days } : undefined,
    };
  }

  async function createBucket(): Promise<void> {
    const region = await client.config.region();
    await send('create the bucket', () =>
      client.send(
        new CreateBucketCommand({
          Bucket: bucket,
          ObjectLockEnabledForBucket: true,
          CreateBucketConfiguration:
            region !== 'us-east-1' && where.endpoint === undefined
              ? { LocationConstraint: region as never }
              : undefined,
        }),
      ),
    );
  }

  function enforcement(): Enforcement {
    return {
      enforcer: 'storage',
      holdsAgainst: [
        'backup clients and their credentials (without s3:BypassGovernanceRetention)',
        'root on the backed-up hosts',
        "the bucket's administrators, for objects in compliance mode",
      ],
      notes:
        'S3 Object Lock: a version in compliance mode cannot be deleted or its date shortened by anyone until it passes; ' +
        'governance mode yields to whoever holds s3:BypassGovernanceRetention, so keep that permission for the unlock executor alone. ' +
        'Legal holds keep a version whatever its date.',
    };
  }

  return {
    location,
    bucket,
    readAheadBytes: 2 * 1024 * 1024,
    parallelWrites: 3,
    put,
    get,
    stat,
    list,
    exists,
    enforcement,
    protect,
    protection,
    deleteExpired,
    strayVersions,
    removeDeleteMarkers,
    setLegalHold,
    lowerGovernanceRetention,
    bucketLockState,
    createBucket,
    serverTimeMs,
    requestCounts: () => ({ ...counts }),
  };
}

const s3Mode = (mode: RetentionMode): ObjectLockRetentionMode => (mode === 'compliance' ? 'COMPLIANCE' : 'GOVERNANCE');
const amberMode = (mode: string): RetentionMode => (mode === 'COMPLIANCE' ? 'compliance' : 'governance');
/** S3 keeps retain-until dates to the second: round up, so a date is never kept shorter than asked. */
const ceilSecond = (ms: number) => Math.ceil(ms / 1000) * 1000;

/** fn over items with at most `limit` in flight; results in the items' order. */
async function mapLimited<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
