// An S3 bucket (or a prefix of one) as a source: every object's bytes with its metadata, content
// type and headers, read with the AWS SDK. The snapshot holds /s3/objects/<key> (the key's
// segments as directories) and /s3/bucket.json (every object: key, file, size, ETag, last
// modified, the headers and user metadata, and Amber's own SHA-256 of its bytes, since an ETag is
// not an MD5 for a multipart upload). Incremental: an object whose ETag, size and last-modified
// time are those the previous snapshot recorded is carried over unread.
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type GetObjectCommandOutput,
} from '@aws-sdk/client-s3';
import { AmberError } from '../../core/errors.ts';
import type { SourceFile, SourceRun } from '../source-url.ts';
import { fileOfFolder } from '../mail/imap.ts';
import { decodeUrlPart, withoutPassword } from '../database/tool.ts';

export interface BucketTarget {
  /** undefined: AWS, the SDK finds the bucket's regional endpoint. */
  endpoint: string | undefined;
  bucket: string;
  /** The objects under this prefix (with its trailing /), or '' for the whole bucket. */
  prefix: string;
  /** The access key id, when the URL names one (its secret is the source password). */
  accessKeyId: string | undefined;
  display: string;
}

export interface BucketAccess {
  /** The secret access key of the URL's access key id. */
  password?: string;
}

/**
 * s3src://BUCKET[/PREFIX] (AWS), s3src+https://[KEYID@]ENDPOINT/BUCKET[/PREFIX] or s3src+http://…
 * (any S3-compatible server, path-style). Without a key id the SDK's own chain (AWS_* variables,
 * a profile, an instance role) gives the credentials.
 */
export function parseBucketUrl(text: string): BucketTarget {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new AmberError('USAGE', `"${withoutPassword(text)}" is not a bucket URL`, {
      hint: 'write s3src://BUCKET[/PREFIX] (AWS) or s3src+https://ENDPOINT/BUCKET[/PREFIX]',
    });
  }
  const scheme = url.protocol.replace(/:$/, '');
  if (!/^s3src(\+https?)?$/.test(scheme))
    throw new AmberError('USAGE', `"${withoutPassword(text)}" is not a bucket URL`);
  if (url.password)
    throw new AmberError('USAGE', 'the bucket URL has a secret in it, which any user can read in `ps`', {
      hint: 'give the access key id in the URL and its secret in AMBER_SOURCE_PASSWORD or --source-password-file',
    });
  if (url.search || url.hash)
    throw new AmberError('USAGE', `the bucket URL ${withoutPassword(text)} has a query or fragment`);
  const accessKeyId = url.username ? decodeUrlPart(url.username, 'access key id', text) : undefined;
  const path = decodeURIComponent(url.pathname).replace(/^\//, '');
  const aws = scheme === 's3src';
  const [bucket, ...rest] = aws ? [decodeURIComponent(url.hostname), ...path.split('/')] : path.split('/');
  if (!bucket || !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket))
    throw new AmberError('USAGE', `the bucket URL ${withoutPassword(text)} names no valid bucket`, {
      hint: aws ? 'write s3src://BUCKET[/PREFIX]' : `write ${scheme}://${url.host}/BUCKET[/PREFIX]`,
    });
  const prefixPath = rest.filter((part) => part !== '').join('/');
  const prefix = prefixPath ? `${prefixPath}/` : '';
  const endpoint = aws ? undefined : `${scheme.slice('s3src+'.length)}://${url.host}`;
  const who = accessKeyId ? `${encodeURIComponent(accessKeyId)}@` : '';
  return {
    endpoint,
    bucket,
    prefix,
    accessKeyId,
    display: aws ? `s3src://${bucket}/${prefix}` : `${scheme}://${who}${url.host}/${bucket}/${prefix}`,
  };
}

/** One object as bucket.json keeps it. */
export interface StoredObject {
  key: string;
  /** Its file under /s3/objects. */
  file: string;
  size: number;
  etag: string | null;
  lastModified: string | null;
  sha256: string;
  contentType: string | null;
  contentEncoding: string | null;
  contentDisposition: string | null;
  contentLanguage: string | null;
  cacheControl: string | null;
  expires: string | null;
  metadata: Record<string, string>;
}

export interface StoredBucket {
  version: 1;
  bucket: string;
  prefix: string;
  objects: StoredObject[];
}

export function bucketClient(target: BucketTarget, access: BucketAccess): S3Client {
  if (target.accessKeyId && access.password === undefined)
    throw new AmberError('USAGE', `no secret for the access key ${target.accessKeyId} of ${target.display}`, {
      hint: 'set AMBER_SOURCE_PASSWORD or pass --source-password-file FILE',
    });
  return new S3Client({
    endpoint: target.endpoint,
    forcePathStyle: target.endpoint !== undefined,
    region: process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
    ...(target.accessKeyId
      ? { credentials: { accessKeyId: target.accessKeyId, secretAccessKey: access.password! } }
      : {}),
    maxAttempts: 3,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** An SDK failure as the error a user can act on, naming the bucket. */
export function bucketError(target: BucketTarget, error: unknown, doing: string): AmberError {
  if (error instanceof AmberError) return error;
  const e = error as { name?: string; code?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode;
  const what = `${doing} ${target.display}`;
  if (e.name === 'InvalidAccessKeyId' || e.name === 'SignatureDoesNotMatch' || e.name === 'CredentialsProviderError')
    return new AmberError('SOURCE_AUTH_FAILED', `the S3 server refused the credentials for ${what}: ${e.name}`, {
      hint: 'check the access key id in the URL (or AWS_ACCESS_KEY_ID) and its secret (AMBER_SOURCE_PASSWORD or --source-password-file)',
    });
  if (status === 403 || e.name === 'AccessDenied')
    return new AmberError('SOURCE_AUTH_FAILED', `the S3 server denied ${what}: ${e.message ?? e.name}`, {
      hint: 'the credentials need s3:ListBucket and s3:GetObject on the bucket (docs/bucket.md)',
    });
  if (e.name === 'NoSuchBucket' || status === 404)
    return new AmberError('SOURCE_NOT_FOUND', `there is no bucket ${target.bucket} at ${target.display}`, {
      hint: 'check the bucket name and the endpoint',
    });
  if (
    /ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ETIMEDOUT|ECONNRESET|EPIPE|socket hang up/i.test(
      `${e.code} ${e.name} ${e.message}`,
    )
  )
    return new AmberError(
      'SOURCE_UNREACHABLE',
      `the S3 server of ${target.display} could not be reached: ${e.message ?? e.code}`,
      {
        hint: 'check that it answers there; nothing of this run was written as a snapshot',
      },
    );
  return new AmberError('SOURCE_FAILED', `${what} failed: ${e.name ?? ''} ${e.message ?? String(error)}`.trim(), {
    hint: 'read the server’s message; nothing of this run was written as a snapshot',
  });
}

interface Listed {
  key: string;
  size: number;
  etag: string | null;
  lastModified: string | null;
}

/** Every object under the prefix, in key order (the listing is paged; only keys and sizes are held). */
async function listObjects(client: S3Client, target: BucketTarget): Promise<Listed[]> {
  const objects: Listed[] = [];
  let token: string | undefined;
  do {
    const page = await client
      .send(
        new ListObjectsV2Command({
          Bucket: target.bucket,
          Prefix: target.prefix || undefined,
          ContinuationToken: token,
        }),
      )
      .catch((error: unknown) => {
        throw bucketError(target, error, 'listing');
      });
    for (const o of page.Contents ?? [])
      if (o.Key !== undefined)
        objects.push({
          key: o.Key,
          size: o.Size ?? 0,
          etag: o.ETag ?? null,
          lastModified: o.LastModified ? o.LastModified.toISOString() : null,
        });
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return objects.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/**
 * The file of each key under /s3/objects: its segments (after the prefix) as directories, each
 * escaped as a folder name is (%XX). A key ending in / (a "folder" marker) is the file `%` in its
 * directory, and a key that is also a directory of other keys (`a` beside `a/b`) is the file `a%`:
 * an escaped segment never ends in a lone %, so neither can meet a real key.
 */
export function filesOfKeys(keys: readonly string[], prefix: string): Map<string, string> {
  const dirs = new Set<string>();
  const parts = keys.map((key) => key.slice(prefix.length).split('/').map(fileOfFolder));
  for (const segments of parts) for (let i = 1; i < segments.length; i++) dirs.add(segments.slice(0, i).join('/'));
  const files = new Map<string, string>();
  keys.forEach((key, n) => {
    const segments = [...parts[n]];
    const last = segments.pop()!;
    const dir = segments.join('/');
    const leaf = last === '' ? '%' : dirs.has(dir ? `${dir}/${last}` : last) ? `${last}%` : last;
    files.set(key, `objects/${dir ? `${dir}/` : ''}${leaf}`);
  });
  return files;
}

const PREVIOUS_BUCKET_BYTES = 512 * 1024 * 1024;
const IN_FLIGHT = 8;
/** Objects at most this large are read whole while others are fetched; larger ones stream alone. */
const SMALL_OBJECT = 8 * 1024 * 1024;

/** Every object under the prefix, then /s3/bucket.json. `done` receives the record of what was read. */
export async function* dumpBucket(
  target: BucketTarget,
  access: BucketAccess,
  run: SourceRun,
  done: (record: Record<string, unknown>) => void,
): AsyncGenerator<SourceFile> {
  const client = bucketClient(target, access);
  try {
    const listed = await listObjects(client, target);
    const files = filesOfKeys(
      listed.map((o) => o.key),
      target.prefix,
    );
    const previous = await previousBucket(run, target);
    const before = new Map(previous?.objects.map((o) => [o.key, o]));
    const stored: StoredBucket = { version: 1, bucket: target.bucket, prefix: target.prefix, objects: [] };
    const totals = { objects: 0, fetched: 0, carried: 0, bytes: 0 };
    // In key order (files of one directory come together), a few small objects in flight at once.
    let pending: Promise<{ object: StoredObject; bytes: Buffer } | undefined>[] = [];
    const drain = async function* () {
      for (const got of await Promise.all(pending)) {
        if (!got) continue; // deleted since the listing: not in this snapshot
        stored.objects.push(got.object);
        totals.fetched += 1;
        totals.bytes += got.bytes.length;
        yield { name: got.object.file, stream: Readable.from([got.bytes]), finished: Promise.resolve() } as SourceFile;
      }
      pending = [];
    };
    for (const object of listed) {
      const file = files.get(object.key)!;
      const was = before.get(object.key);
      const same =
        was !== undefined &&
        was.file === file &&
        was.size === object.size &&
        was.etag === object.etag &&
        was.lastModified === object.lastModified;
      if (same && (await run.canCarry(file))) {
        yield* drain();
        stored.objects.push(was);
        totals.carried += 1;
        yield { name: file, carried: true };
        continue;
      }
      if (object.size > SMALL_OBJECT) {
        yield* drain();
        const got = await streamObject(client, target, object, file);
        if (!got) continue;
        totals.fetched += 1;
        totals.bytes += object.size;
        yield { name: file, stream: got.stream, finished: got.finished };
        stored.objects.push(await got.object);
        continue;
      }
      pending.push(readObject(client, target, object, file));
      if (pending.length >= IN_FLIGHT) yield* drain();
    }
    yield* drain();
    totals.objects = stored.objects.length;
    yield {
      name: 'bucket.json',
      stream: Readable.from([Buffer.from(`${JSON.stringify(stored, null, 1)}\n`)]),
      finished: Promise.resolve(),
      keep: true,
    };
    done({ kind: 's3', url: target.display, bucket: target.bucket, prefix: target.prefix, ...totals });
  } finally {
    client.destroy();
  }
}

async function previousBucket(run: SourceRun, target: BucketTarget): Promise<StoredBucket | undefined> {
  const bytes = await run.read('bucket.json', PREVIOUS_BUCKET_BYTES);
  if (!bytes) return undefined;
  try {
    const previous = checkStoredBucket(JSON.parse(bytes.toString('utf8')), 'the previous bucket.json');
    return previous.bucket === target.bucket && previous.prefix === target.prefix ? previous : undefined;
  } catch {
    return undefined; // unsound: every object is read
  }
}

function storedOf(
  object: Listed,
  file: string,
  answer: GetObjectCommandOutput,
  sha256: string,
  size: number,
): StoredObject {
  return {
    key: object.key,
    file,
    size,
    // As the listing gave them: the next backup compares its listing with these (GET's own
    // Last-Modified header has whole seconds only).
    etag: object.etag,
    lastModified: object.lastModified,
    sha256,
    contentType: answer.ContentType ?? null,
    contentEncoding: answer.ContentEncoding ?? null,
    contentDisposition: answer.ContentDisposition ?? null,
    contentLanguage: answer.ContentLanguage ?? null,
    cacheControl: answer.CacheControl ?? null,
    expires: answer.ExpiresString ?? (answer.Expires ? answer.Expires.toUTCString() : null),
    metadata: { ...(answer.Metadata ?? {}) },
  };
}

async function getObject(client: S3Client, target: BucketTarget, key: string) {
  try {
    return await client.send(new GetObjectCommand({ Bucket: target.bucket, Key: key }));
  } catch (error) {
    if ((error as { name?: string }).name === 'NoSuchKey') return undefined;
    throw bucketError(target, error, `reading ${key} of`);
  }
}

async function readObject(client: S3Client, target: BucketTarget, object: Listed, file: string) {
  const answer = await getObject(client, target, object.key);
  if (!answer?.Body) return undefined;
  const bytes = Buffer.from(
    await answer.Body.transformToByteArray().catch((error: unknown) => {
      throw bucketError(target, error, `reading ${object.key} of`);
    }),
  );
  const sha = createHash('sha256').update(bytes).digest('hex');
  return { object: storedOf(object, file, answer, sha, bytes.length), bytes };
}

/** A large object streamed into the snapshot; its record (with the hash of what was read) once the stream ends. */
async function streamObject(client: S3Client, target: BucketTarget, object: Listed, file: string) {
  const answer = await getObject(client, target, object.key);
  if (!answer?.Body) return undefined;
  const body = answer.Body as Readable;
  const hash = createHash('sha256');
  let size = 0;
  const stream = Readable.from(
    (async function* () {
      try {
        for await (const chunk of body) {
          hash.update(chunk as Buffer);
          size += (chunk as Buffer).length;
          yield chunk as Buffer;
        }
      } catch (error) {
        throw bucketError(target, error, `reading ${object.key} of`);
      }
    })(),
  );
  let settle!: () => void;
  let fail!: (error: unknown) => void;
  const finished = new Promise<void>((resolve, reject) => {
    settle = resolve;
    fail = reject;
  });
  stream.on('end', () => settle());
  stream.on('error', (error) => fail(error));
  return {
    stream,
    finished,
    object: finished.then(() => {
      if (size !== object.size)
        throw new AmberError('SOURCE_CHANGED', `${object.key} of ${target.display} changed while it was read`, {
          hint: 'run the backup again',
        });
      return storedOf(object, file, answer, hash.digest('hex'), size);
    }),
  };
}

/** A bucket.json read back from a snapshot, checked: its keys and headers go into requests on a restore. */
export function checkStoredBucket(value: unknown, where: string): StoredBucket {
  const bad = (what: string): never => {
    throw new AmberError('OBJECT_CORRUPT', `${where} ${what}`, {
      hint: 'the snapshot was not written by Amber’s bucket source as it is; restore from another snapshot and run amber verify',
    });
  };
  const b = value as Partial<StoredBucket> | null;
  if (!b || typeof b !== 'object' || b.version !== 1 || typeof b.bucket !== 'string' || typeof b.prefix !== 'string')
    bad('is not a bucket record of version 1');
  const bucket = b as StoredBucket;
  if (!Array.isArray(bucket.objects)) bad('has no object list');
  const keys = new Set<string>();
  const header = (v: unknown) => v === null || (typeof v === 'string' && !/[\r\n\0]/.test(v));
  for (const o of bucket.objects) {
    if (!o || typeof o.key !== 'string' || o.key === '' || keys.has(o.key) || /\0/.test(o.key))
      bad('lists an object without a unique key');
    keys.add(o.key);
    if (
      typeof o.file !== 'string' ||
      !o.file.startsWith('objects/') ||
      o.file.split('/').some((p) => p === '..' || p === '.' || p === '')
    )
      bad(`gives ${o.key} a file outside objects/`);
    if (!Number.isSafeInteger(o.size) || o.size < 0 || typeof o.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(o.sha256))
      bad(`gives ${o.key} no size or hash`);
    for (const field of [
      'contentType',
      'contentEncoding',
      'contentDisposition',
      'contentLanguage',
      'cacheControl',
      'expires',
    ] as const)
      if (!header(o[field])) bad(`gives ${o.key} a ${field} that is not a header value`);
    if (
      !o.metadata ||
      typeof o.metadata !== 'object' ||
      !Object.entries(o.metadata).every(([k, v]) => /^[a-z0-9!#$%&'*+.^_`|~-]+$/i.test(k) && header(v))
    )
      bad(`gives ${o.key} user metadata that are not headers`);
  }
  return bucket;
}

export interface BucketRestoreResult {
  objects: number;
  put: number;
  /** Already there with the same bytes. */
  present: number;
  /** There with other bytes: left as they are. */
  conflicts: string[];
  bytes: number;
}

/** Every object back into a bucket (under the target's prefix), with its headers and metadata; nothing there is overwritten. */
export async function restoreBucket(options: {
  target: BucketTarget;
  access: BucketAccess;
  stored: StoredBucket;
  read(object: StoredObject): Promise<Buffer>;
  signal?: AbortSignal;
}): Promise<BucketRestoreResult> {
  const { target, stored } = options;
  const client = bucketClient(target, options.access);
  const result: BucketRestoreResult = { objects: 0, put: 0, present: 0, conflicts: [], bytes: 0 };
  try {
    for (const object of stored.objects) {
      if (options.signal?.aborted) throw new AmberError('INTERRUPTED', 'the restore was interrupted');
      const key = target.prefix + object.key.slice(stored.prefix.length);
      result.objects += 1;
      const bytes = await options.read(object);
      if (createHash('sha256').update(bytes).digest('hex') !== object.sha256)
        throw new AmberError(
          'OBJECT_CORRUPT',
          `${object.key} of the snapshot does not have the hash its backup recorded`,
        );
      const there = await client.send(new HeadObjectCommand({ Bucket: target.bucket, Key: key })).then(
        () => true,
        (error: { name?: string; $metadata?: { httpStatusCode?: number } }) => {
          if (error.name === 'NotFound' || error.$metadata?.httpStatusCode === 404) return false;
          throw bucketError(target, error, `looking at ${key} of`);
        },
      );
      if (there) {
        const now = await getObject(client, target, key);
        const current = now?.Body ? Buffer.from(await now.Body.transformToByteArray()) : undefined;
        if (current?.equals(bytes)) result.present += 1;
        else result.conflicts.push(key);
        continue;
      }
      await client
        .send(
          new PutObjectCommand({
            Bucket: target.bucket,
            Key: key,
            Body: bytes,
            ContentLength: bytes.length,
            ContentType: object.contentType ?? undefined,
            ContentEncoding: object.contentEncoding ?? undefined,
            ContentDisposition: object.contentDisposition ?? undefined,
            ContentLanguage: object.contentLanguage ?? undefined,
            CacheControl: object.cacheControl ?? undefined,
            Expires: object.expires ? new Date(object.expires) : undefined,
            Metadata: object.metadata,
          }),
        )
        .catch((error: unknown) => {
          throw bucketError(target, error, `writing ${key} into`);
        });
      result.put += 1;
      result.bytes += bytes.length;
    }
  } finally {
    client.destroy();
  }
  return result;
}
