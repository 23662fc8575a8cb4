// A bucket snapshot back into a bucket: every object under the target's prefix with its headers
// and user metadata, each checked against the SHA-256 its backup recorded first. An object that
// exists already is not overwritten (the same bytes: present; other bytes: a conflict, named): a
// HEAD says so first, and the PUT itself is conditional (If-None-Match: *), so an object another
// writer puts in between is not overwritten either. With the versions of a --versions backup,
// each key's history is written oldest first (versions PUT, delete markers as DELETE), so a
// versioned target gets the same sequence under new version ids. An object whose headers cannot
// be sent is named and left out; the others are restored, and the restore then fails saying so.
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  type PutObjectCommandInput,
  type S3Client,
} from '@aws-sdk/client-s3';
import { AmberError } from '../../core/errors.ts';
import { getObject } from './bucket-dump.ts';
import {
  type BucketAccess,
  type BucketTarget,
  bucketClient,
  bucketError,
  type StoredBucket,
  type StoredObject,
  type StoredVersion,
} from './s3-bucket.ts';

export interface BucketRestoreResult {
  /** Keys restored. */
  objects: number;
  /** Objects (and older versions) written. */
  put: number;
  /** Delete markers written (as deletes), with --versions. */
  deleted: number;
  /** Already there with the same bytes. */
  present: number;
  /** There with other bytes: left as they are. */
  conflicts: string[];
  bytes: number;
  /** Keys not written because the server or the SDK cannot take their headers, each with the reason. */
  failed: { key: string; reason: string }[];
}

type Entry = StoredObject | StoredVersion;
type Event = { entry: Entry; deleteMarker: boolean };

/** Each key, in key order, with its events oldest first: its older versions and delete markers, then the current object. */
function eventsByKey(stored: StoredBucket): [string, Event[]][] {
  const history = new Map<string, StoredVersion[]>();
  for (const version of stored.history ?? []) {
    const list = history.get(version.key);
    if (list) list.push(version);
    else history.set(version.key, [version]);
  }
  const current = new Map(stored.objects.map((object) => [object.key, object]));
  const keys = [...new Set([...history.keys(), ...current.keys()])].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return keys.map((key) => {
    // The history is newest first: reversed, oldest first.
    const older = [...(history.get(key) ?? [])].reverse().map((v) => ({ entry: v, deleteMarker: v.deleteMarker }));
    const now = current.get(key);
    return [key, now ? [...older, { entry: now, deleteMarker: false }] : older];
  });
}

export async function restoreBucket(options: {
  target: BucketTarget;
  access: BucketAccess;
  stored: StoredBucket;
  /** An object's (or version's) bytes from the repository. */
  read(file: string): Promise<Buffer>;
  signal?: AbortSignal;
}): Promise<BucketRestoreResult> {
  const { target, stored } = options;
  const client = bucketClient(target, options.access);
  sendHeadersAsUtf8(client);
  const result: BucketRestoreResult = {
    objects: 0,
    put: 0,
    deleted: 0,
    present: 0,
    conflicts: [],
    bytes: 0,
    failed: [],
  };
  const bytesOf = async (entry: Entry) => {
    const bytes = await options.read(entry.file!);
    if (createHash('sha256').update(bytes).digest('hex') !== entry.sha256)
      throw new AmberError(
        'OBJECT_CORRUPT',
        `${entry.key} of the snapshot does not have the hash its backup recorded`,
        {
          hint: 'run amber verify --read-data; restore from another snapshot',
        },
      );
    return bytes;
  };
  try {
    for (const [key, events] of eventsByKey(stored)) {
      if (options.signal?.aborted) throw new AmberError('INTERRUPTED', 'the restore was interrupted');
      const to = target.prefix + key.slice(stored.prefix.length);
      // The folder marker of the snapshot's prefix itself (PREFIX/) into a bucket's root, which has none.
      if (to === '') continue;
      result.objects += 1;
      await restoreKey(client, target, to, events, bytesOf, result);
    }
  } finally {
    client.destroy();
  }
  if (result.failed.length)
    throw new AmberError(
      'RESTORE_INCOMPLETE',
      `${result.failed.length} of ${result.objects} object(s) could not be restored into ${target.display}: ${result.failed
        .slice(0, 5)
        .map((f) => `${f.key} (${f.reason})`)
        .join('; ')}${result.failed.length > 5 ? '; …' : ''}`,
      {
        hint: `the others were restored (${result.put} written, ${result.present} there already, ${result.conflicts.length} conflicts); the snapshot holds these objects as files: amber restore SNAPSHOT --target DIR`,
        details: { ...result },
      },
    );
  return result;
}

/**
 * One key's events into the target: nothing when it exists already (present or a conflict), else
 * its history oldest first. The first PUT, and one after a delete, is conditional: an object
 * another writer put meanwhile makes it fail (412), and that object is then compared as one that
 * was there. The PUTs after one of the restore's own are not (docs/bucket.md).
 */
async function restoreKey(
  client: S3Client,
  target: BucketTarget,
  to: string,
  events: Event[],
  bytesOf: (entry: Entry) => Promise<Buffer>,
  result: BucketRestoreResult,
): Promise<void> {
  const last = events.at(-1)!;
  const unsendable = events.map((event) => !event.deleteMarker && whyUnsendable(event.entry)).find(Boolean);
  if (unsendable) {
    result.failed.push({ key: to, reason: unsendable });
    return;
  }
  if (await exists(client, target, to)) return settleExisting(client, target, to, last, result);
  let absent = true;
  for (const [n, event] of events.entries()) {
    if (event.deleteMarker) {
      // A delete marker with nothing before it deletes nothing: a versioned target needs none.
      if (n === 0) continue;
      await client.send(new DeleteObjectCommand({ Bucket: target.bucket, Key: to })).catch((error: unknown) => {
        throw bucketError(target, error, `deleting ${to} of`, 'restore');
      });
      result.deleted += 1;
      absent = true;
      continue;
    }
    const bytes = await bytesOf(event.entry);
    const put = await putObject(client, target, to, event.entry, bytes, absent);
    if (put === 'exists') return settleExisting(client, target, to, last, result);
    if (put !== 'written') {
      result.failed.push({ key: to, reason: put.refused });
      return;
    }
    absent = false;
    result.put += 1;
    result.bytes += bytes.length;
  }
}

/** An object of the target found where the restore would write: the snapshot's final state (present), or a conflict. */
async function settleExisting(
  client: S3Client,
  target: BucketTarget,
  to: string,
  last: Event,
  result: BucketRestoreResult,
): Promise<void> {
  if (!last.deleteMarker && (await holds(client, target, to, last.entry))) result.present += 1;
  else result.conflicts.push(to);
}

/** Whether the target's object has the entry's bytes: its size, then its SHA-256 as it streams by (never held whole). */
async function holds(client: S3Client, target: BucketTarget, key: string, entry: Entry): Promise<boolean> {
  const answer = await getObject(client, target, key, undefined, 'restore');
  if (!answer?.Body) return false;
  const body = answer.Body as Readable;
  if (answer.ContentLength !== undefined && answer.ContentLength !== entry.size) {
    body.destroy();
    return false;
  }
  const hash = createHash('sha256');
  try {
    for await (const chunk of body) hash.update(chunk as Buffer);
  } catch (error) {
    throw bucketError(target, error, `reading ${key} of`, 'restore');
  }
  return hash.digest('hex') === entry.sha256;
}

/**
 * One PUT: `exists` when it was conditional and the target has the key now (412), `refused`
 * (with why) when the server refused this object's headers, which ends only this key.
 */
async function putObject(
  client: S3Client,
  target: BucketTarget,
  to: string,
  entry: Entry,
  bytes: Buffer,
  ifAbsent: boolean,
): Promise<'written' | 'exists' | { refused: string }> {
  const input: PutObjectCommandInput = {
    Bucket: target.bucket,
    Key: to,
    // A Buffer, never a string: Node then writes the headers as Latin-1, one byte a character (sendHeadersAsUtf8).
    Body: bytes,
    ContentLength: bytes.length,
    ContentType: entry.contentType ?? undefined,
    ContentEncoding: entry.contentEncoding ?? undefined,
    ContentDisposition: entry.contentDisposition ?? undefined,
    ContentLanguage: entry.contentLanguage ?? undefined,
    CacheControl: entry.cacheControl ?? undefined,
    Metadata: entry.metadata,
    ...(ifAbsent ? { IfNoneMatch: '*' } : {}),
  };
  const command = new PutObjectCommand(input);
  // Expires as its text, which need not be a date ("0"): the SDK's Expires takes a Date only.
  const expires = entry.expires;
  if (expires !== null)
    command.middlewareStack.add(
      (next) => async (args) => {
        (args.request as { headers: Record<string, string> }).headers.expires = expires;
        return next(args);
      },
      { step: 'build', name: 'amberExpiresText' },
    );
  try {
    await client.send(command);
    return 'written';
  } catch (error) {
    const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
    if (ifAbsent && (e.name === 'PreconditionFailed' || e.$metadata?.httpStatusCode === 412)) return 'exists';
    // RGW (16.2) refuses the signature of a non-ASCII Content-Disposition; another header the same:
    // the credentials are fine (the other objects went in), this object's headers are not.
    if (e.name === 'SignatureDoesNotMatch' && hasNonAscii(entry))
      return { refused: 'the server refused the signature of its non-ASCII header values' };
    if (e.$metadata?.httpStatusCode === 400 && /Metadata|Header|Argument/i.test(e.name ?? ''))
      return { refused: `the server refused its headers: ${e.name}` };
    throw bucketError(target, error, `writing ${to} into`, 'restore');
  }
}

/** The text values of an entry's headers and user metadata, with their header names. */
function headerValues(entry: Entry): [string, string][] {
  const fields: [string, string | null][] = [
    ['content-type', entry.contentType],
    ['content-encoding', entry.contentEncoding],
    ['content-disposition', entry.contentDisposition],
    ['content-language', entry.contentLanguage],
    ['cache-control', entry.cacheControl],
    ['expires', entry.expires],
    ...Object.entries(entry.metadata).map(([name, value]): [string, string] => [`x-amz-meta-${name}`, value]),
  ];
  return fields.filter((field): field is [string, string] => field[1] !== null);
}

const hasNonAscii = (entry: Entry) => headerValues(entry).some(([, value]) => /[\u0080-\uffff]/.test(value));

/**
 * Why an entry's headers cannot go into a request, or undefined. SigV4 signs the UTF-8 of each
 * value, so bytes that are not UTF-8 (notUtf8) cannot be signed; a control character (other than
 * a tab) cannot be in a header at all.
 */
function whyUnsendable(entry: Entry): string | undefined {
  if (entry.notUtf8?.length)
    return `its header ${entry.notUtf8.join(', ')} holds bytes that are not UTF-8, which an S3 request cannot sign`;
  for (const [name, value] of headerValues(entry))
    if (hasControlCharacter(value) || !value.isWellFormed())
      return `its header ${name} holds a character no HTTP header can carry`;
  return undefined;
}

/** A control character other than a tab, which Node refuses in a header. */
function hasControlCharacter(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if ((code < 0x20 && code !== 0x09) || code === 0x7f) return true;
  }
  return false;
}

/**
 * After signing, each non-ASCII header value becomes the Latin-1 string of its UTF-8 bytes. The
 * signature covers the value's UTF-8; Node writes header strings as Latin-1 (when the body is not
 * a string), which for the value itself would send other bytes than were signed (or fail), and
 * the server would refuse the signature as if the credentials were wrong. The request here is the
 * signer's copy: a retry signs the original again.
 */
function sendHeadersAsUtf8(client: S3Client): void {
  client.middlewareStack.add(
    (next) => async (args) => {
      const headers = (args.request as { headers?: Record<string, string> }).headers ?? {};
      for (const [name, value] of Object.entries(headers))
        if (typeof value === 'string' && /[\u0080-\uffff]/.test(value))
          headers[name] = Buffer.from(value, 'utf8').toString('latin1');
      return next(args);
    },
    { step: 'deserialize', name: 'amberUtf8HeaderBytes' },
  );
}

async function exists(client: S3Client, target: BucketTarget, key: string): Promise<boolean> {
  return client.send(new HeadObjectCommand({ Bucket: target.bucket, Key: key })).then(
    () => true,
    (error: { name?: string; $metadata?: { httpStatusCode?: number } }) => {
      if (error.name === 'NotFound' || error.$metadata?.httpStatusCode === 404) return false;
      throw bucketError(target, error, `looking at ${key} of`, 'restore');
    },
  );
}
