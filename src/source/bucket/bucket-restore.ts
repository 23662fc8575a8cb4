// A bucket snapshot back into a bucket: every object under the target's prefix with its headers
// and user metadata, each checked against the SHA-256 its backup recorded first. An object that
// exists already is not overwritten (the same bytes: present; other bytes: a conflict, named).
// With the versions of a --versions backup, each key's history is written oldest first (versions
// PUT, delete markers as DELETE), so a versioned target gets the same sequence under new version ids.
import { createHash } from 'node:crypto';
import { DeleteObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
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
}

type Event = { entry: StoredObject | StoredVersion; deleteMarker: boolean };

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
  const result: BucketRestoreResult = { objects: 0, put: 0, deleted: 0, present: 0, conflicts: [], bytes: 0 };
  const bytesOf = async (entry: StoredObject | StoredVersion) => {
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
      result.objects += 1;
      const last = events.at(-1)!;
      if (await exists(client, target, to)) {
        // There already: the same bytes as the final state, or a conflict; its history is not replayed.
        const now = await getObject(client, target, to);
        const current = now?.Body ? Buffer.from(await now.Body.transformToByteArray()) : undefined;
        if (!last.deleteMarker && current?.equals(await bytesOf(last.entry))) result.present += 1;
        else result.conflicts.push(to);
        continue;
      }
      for (const [n, event] of events.entries()) {
        if (event.deleteMarker) {
          // A delete marker with nothing before it deletes nothing: a versioned target needs none.
          if (n === 0) continue;
          await client.send(new DeleteObjectCommand({ Bucket: target.bucket, Key: to })).catch((error: unknown) => {
            throw bucketError(target, error, `deleting ${to} of`);
          });
          result.deleted += 1;
          continue;
        }
        const entry = event.entry;
        const bytes = await bytesOf(entry);
        await client
          .send(
            new PutObjectCommand({
              Bucket: target.bucket,
              Key: to,
              Body: bytes,
              ContentLength: bytes.length,
              ContentType: entry.contentType ?? undefined,
              ContentEncoding: entry.contentEncoding ?? undefined,
              ContentDisposition: entry.contentDisposition ?? undefined,
              ContentLanguage: entry.contentLanguage ?? undefined,
              CacheControl: entry.cacheControl ?? undefined,
              Expires: entry.expires ? new Date(entry.expires) : undefined,
              Metadata: entry.metadata,
            }),
          )
          .catch((error: unknown) => {
            throw bucketError(target, error, `writing ${to} into`);
          });
        result.put += 1;
        result.bytes += bytes.length;
      }
    }
  } finally {
    client.destroy();
  }
  return result;
}

async function exists(client: ReturnType<typeof bucketClient>, target: BucketTarget, key: string): Promise<boolean> {
  return client.send(new HeadObjectCommand({ Bucket: target.bucket, Key: key })).then(
    () => true,
    (error: { name?: string; $metadata?: { httpStatusCode?: number } }) => {
      if (error.name === 'NotFound' || error.$metadata?.httpStatusCode === 404) return false;
      throw bucketError(target, error, `looking at ${key} of`);
    },
  );
}
