// An S3 bucket (or a prefix of one) as a source: the URL, the client, the errors a user can act on,
// and the record a snapshot keeps. The snapshot holds /s3/objects/<key path> (filesOfKeys: the
// key's segments as directories), with --versions /s3/versions/<key path>/<version id> for every
// older version, and /s3/bucket.json (every object and version: key, file, size, ETag, last
// modified, the headers and user metadata, and Amber's own SHA-256 of its bytes, since an ETag is
// not an MD5 for a multipart upload). Reading is bucket-dump.ts, writing back bucket-restore.ts.
import { S3Client } from '@aws-sdk/client-s3';
import { AmberError } from '../../core/errors.ts';
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
  /** Its version id, when the backup read versions (--versions). */
  versionId?: string;
  /** Its file in the snapshot, under /s3 (objects/… or versions/…). */
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
  /** The header's text as the server sent it (an Expires that is no date, "0", stays "0"). */
  expires: string | null;
  metadata: Record<string, string>;
  /**
   * The headers (lower-case names, x-amz-meta-NAME for user metadata) whose bytes are not UTF-8:
   * their value above holds one character per byte (Latin-1). Absent when every header is UTF-8,
   * as every S3 client sends them (the other headers hold the text their UTF-8 bytes spell).
   */
  notUtf8?: string[];
}

/** An older version of a key (--versions), or a delete marker (which has no file or bytes). */
export interface StoredVersion extends Omit<StoredObject, 'file' | 'sha256' | 'versionId'> {
  versionId: string;
  deleteMarker: boolean;
  file: string | null;
  sha256: string | null;
}

export interface StoredBucket {
  version: 1;
  bucket: string;
  prefix: string;
  /** The current objects. */
  objects: StoredObject[];
  /** With --versions: every older version and delete marker, per key newest first. */
  history?: StoredVersion[];
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

/** What a request was part of: the hints say what is left of it and what to do. */
export type BucketPurpose = 'backup' | 'restore';

const AFTERMATH: Record<BucketPurpose, string> = {
  backup: 'nothing of this run was written as a snapshot',
  restore: 'the objects written before it stay; run the restore again to finish (it leaves what is there alone)',
};

/** An SDK failure as the error a user can act on, naming the bucket. */
export function bucketError(target: BucketTarget, error: unknown, doing: string, purpose: BucketPurpose): AmberError {
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
      hint:
        purpose === 'backup'
          ? 'the credentials need s3:ListBucket and s3:GetObject on the bucket (docs/bucket.md)'
          : 'the credentials need s3:PutObject, s3:GetObject and s3:ListBucket on the target bucket (docs/bucket.md)',
    });
  if (e.name === 'NoSuchBucket' || status === 404)
    return new AmberError('SOURCE_NOT_FOUND', `there is no bucket ${target.bucket} at ${target.display}`, {
      hint:
        purpose === 'backup'
          ? 'check the bucket name and the endpoint'
          : 'check the bucket name and the endpoint; a restore writes into a bucket that exists, it makes none',
    });
  if (
    /ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ETIMEDOUT|ECONNRESET|EPIPE|socket hang up/i.test(
      `${e.code} ${e.name} ${e.message}`,
    )
  )
    return new AmberError(
      'SOURCE_UNREACHABLE',
      `the S3 server of ${target.display} could not be reached: ${e.message ?? e.code}`,
      { hint: `check that it answers there; ${AFTERMATH[purpose]}` },
    );
  return new AmberError('SOURCE_FAILED', `${what} failed: ${e.name ?? ''} ${e.message ?? String(error)}`.trim(), {
    hint: `read the server’s message; ${AFTERMATH[purpose]}`,
  });
}

/**
 * A segment of a key (between two `/`) as a name in the snapshot: escaped as a folder name is
 * (`%XX` for `%`, `/` and control characters; `.` and `..` as `%2e`), and the empty segment (of
 * `a//b`, `/x`, `p/`) as `%`, which no escaped segment is.
 */
const nameOfSegment = (segment: string): string => (segment === '' ? '%' : fileOfFolder(segment));

/**
 * The path of each key below /s3/objects: its segments after the prefix, each as nameOfSegment
 * gives it, the last one the file and the others directories. A file whose name is also a
 * directory beside it (the key `a` beside `a/b`, `p/` beside `p//x`) gets a `%` appended: `a%`,
 * `%%`. So the folder marker `a/` is the file `%` in `a`, `a//b` is `a/%/b`, `/x` is `%/x`.
 *
 * Why no two keys meet, and every name is one a snapshot tree takes: an escaped segment is never
 * empty, `.` or `..`, holds no `/` or NUL, has `%` only before two hex digits (so never ends in
 * `%`), and decodes back to its segment; `%` stands for the empty segment alone. So a name ends in
 * `%` only when it is `%`, or when it is a file given the extra `%`, and then it is `%%` or ends in
 * a lone `%`: each file name decodes to one segment and whether it was given the `%`. Two keys of
 * the same number of segments thus differ in a directory or in their file's name; keys of
 * different numbers of segments have paths of different lengths; and no file shares its name with
 * a directory beside it: a file that would is given the `%`, and a directory name never ends in a
 * `%` after another character and is never `%%`. The same path is the key's directory below
 * /s3/versions (its version files in it, named as segments are): no key's path is a directory of
 * another key's, by the last point.
 */
export function filesOfKeys(keys: readonly string[], prefix: string): Map<string, string> {
  const dirs = new Set<string>();
  const parts = keys.map((key) => key.slice(prefix.length).split('/').map(nameOfSegment));
  for (const names of parts) for (let i = 1; i < names.length; i++) dirs.add(names.slice(0, i).join('/'));
  const files = new Map<string, string>();
  keys.forEach((key, n) => {
    const names = [...parts[n]];
    const last = names.pop()!;
    const dir = names.join('/');
    const path = dir ? `${dir}/${last}` : last;
    files.set(key, dirs.has(path) ? `${path}%` : path);
  });
  return files;
}

/** The file of one version of a key below /s3/versions: the key's path as a directory, the version id escaped. */
export const fileOfVersion = (keyPath: string, versionId: string): string =>
  `versions/${keyPath}/${fileOfFolder(versionId)}`;

/** The names notUtf8 may list: the headers a record keeps. */
const HEADER_NAME =
  /^(content-type|content-encoding|content-disposition|content-language|cache-control|expires|x-amz-meta-[a-z0-9!#$%&'*+.^_`|~-]+)$/i;

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
  const header = (v: unknown) => v === null || (typeof v === 'string' && !/[\r\n\0]/.test(v));
  const files = new Set<string>();
  const checkEntry = (o: StoredObject | StoredVersion, top: 'objects/' | 'versions/', hasData: boolean) => {
    if (!o || typeof o.key !== 'string' || o.key === '' || /\0/.test(o.key)) bad('lists an object without a key');
    if (!o.key.startsWith(bucket.prefix)) bad(`lists ${o.key}, which is not under its prefix ${bucket.prefix}`);
    if (hasData) {
      if (
        typeof o.file !== 'string' ||
        !o.file.startsWith(top) ||
        o.file.split('/').some((p) => p === '..' || p === '.' || p === '') ||
        files.has(o.file)
      )
        bad(`gives ${o.key} a file outside ${top} or one of another object`);
      files.add(o.file!);
      if (typeof o.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(o.sha256)) bad(`gives ${o.key} no hash`);
    }
    if (!Number.isSafeInteger(o.size) || o.size < 0) bad(`gives ${o.key} no size`);
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
    if (
      o.notUtf8 !== undefined &&
      !(Array.isArray(o.notUtf8) && o.notUtf8.every((name) => typeof name === 'string' && HEADER_NAME.test(name)))
    )
      bad(`gives ${o.key} a list of headers that are not UTF-8 that names no headers`);
  };
  const keys = new Set<string>();
  for (const o of bucket.objects) {
    checkEntry(o, 'objects/', true);
    if (keys.has(o.key)) bad(`lists ${o.key} twice`);
    keys.add(o.key);
  }
  if (bucket.history !== undefined) {
    if (!Array.isArray(bucket.history)) bad('has a history that is not a list');
    for (const v of bucket.history) {
      if (!v || typeof v.versionId !== 'string' || v.versionId === '' || typeof v.deleteMarker !== 'boolean')
        bad('lists a version without a version id');
      checkEntry(v, 'versions/', !v.deleteMarker);
    }
  }
  return bucket;
}
