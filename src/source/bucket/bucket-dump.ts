// Reading a bucket into a snapshot: the listing (ListObjectsV2, or ListObjectVersions with
// --versions), then every object's bytes in key order, then /s3/bucket.json. Incremental: an
// object whose ETag, size and last-modified time are those the previous snapshot recorded, or a
// version whose id it recorded (a version never changes), is carried over unread. An object
// replaced between the listing and its GET is left out with a warning (the snapshot is partial),
// the rest of the bucket still lands.
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  GetObjectCommand,
  type GetObjectCommandOutput,
  ListObjectsV2Command,
  ListObjectVersionsCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { AmberError } from '../../core/errors.ts';
import type { SourceFile, SourceRun } from '../source-url.ts';
import {
  type BucketAccess,
  type BucketPurpose,
  type BucketTarget,
  bucketClient,
  bucketError,
  checkStoredBucket,
  filesOfKeys,
  fileOfVersion,
  type StoredBucket,
  type StoredObject,
  type StoredVersion,
} from './s3-bucket.ts';

export interface BucketOptions {
  /** Every version of every object, and the delete markers, besides the current objects. */
  versions?: boolean;
}

/** One entry of the listing: an object, or (with versions) a version or a delete marker. */
interface Listed {
  key: string;
  versionId: string | undefined;
  latest: boolean;
  deleteMarker: boolean;
  size: number;
  etag: string | null;
  lastModified: string | null;
}

const byKey = (a: { key: string }, b: { key: string }) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);

/** The current objects under the prefix, in key order (the listing is paged). */
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
        throw bucketError(target, error, 'listing', 'backup');
      });
    for (const o of page.Contents ?? [])
      if (o.Key !== undefined)
        objects.push({
          key: o.Key,
          versionId: undefined,
          latest: true,
          deleteMarker: false,
          size: o.Size ?? 0,
          etag: o.ETag ?? null,
          lastModified: o.LastModified ? o.LastModified.toISOString() : null,
        });
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return objects.sort(byKey);
}

/** Every version and delete marker under the prefix: in key order, each key's newest first. */
async function listVersions(client: S3Client, target: BucketTarget): Promise<Listed[]> {
  const entries: Listed[] = [];
  let keyMarker: string | undefined;
  let versionMarker: string | undefined;
  for (;;) {
    const page = await client
      .send(
        new ListObjectVersionsCommand({
          Bucket: target.bucket,
          Prefix: target.prefix || undefined,
          KeyMarker: keyMarker,
          VersionIdMarker: versionMarker,
        }),
      )
      .catch((error: unknown) => {
        throw bucketError(target, error, 'listing the versions of', 'backup');
      });
    const at = (d: Date | undefined) => (d ? d.toISOString() : null);
    for (const v of page.Versions ?? [])
      if (v.Key !== undefined && v.VersionId)
        entries.push({
          key: v.Key,
          versionId: v.VersionId,
          latest: v.IsLatest === true,
          deleteMarker: false,
          size: v.Size ?? 0,
          etag: v.ETag ?? null,
          lastModified: at(v.LastModified),
        });
    for (const m of page.DeleteMarkers ?? [])
      if (m.Key !== undefined && m.VersionId)
        entries.push({
          key: m.Key,
          versionId: m.VersionId,
          latest: m.IsLatest === true,
          deleteMarker: true,
          size: 0,
          etag: null,
          lastModified: at(m.LastModified),
        });
    if (!page.IsTruncated) break;
    keyMarker = page.NextKeyMarker;
    versionMarker = page.NextVersionIdMarker;
  }
  // The SDK gives versions and delete markers apart: merge them newest first per key (the latest first).
  return entries.sort(
    (a, b) =>
      byKey(a, b) ||
      Number(b.latest) - Number(a.latest) ||
      (a.lastModified! < b.lastModified! ? 1 : a.lastModified! > b.lastModified! ? -1 : 0),
  );
}

const PREVIOUS_BUCKET_BYTES = 512 * 1024 * 1024;
const IN_FLIGHT = 8;
/** Objects at most this large are read whole while others are fetched; larger ones stream alone. */
const SMALL_OBJECT = 8 * 1024 * 1024;

/** Every object under the prefix (and with versions every older version), then /s3/bucket.json. */
export async function* dumpBucket(
  target: BucketTarget,
  access: BucketAccess,
  run: SourceRun,
  options: BucketOptions,
  done: (record: Record<string, unknown>) => void,
): AsyncGenerator<SourceFile> {
  const client = bucketClient(target, access);
  try {
    const listed = options.versions ? await listVersions(client, target) : await listObjects(client, target);
    const files = filesOfKeys([...new Set(listed.map((o) => o.key))], target.prefix);
    const previous = await previousBucket(run, target);
    const before = new Map(previous?.objects.map((o) => [o.key, o]));
    // Versions never change: one the previous snapshot holds (current then, or older) is carried from its file.
    const knownVersions = new Map<string, { file: string; stored: StoredObject | StoredVersion }>();
    for (const o of [...(previous?.objects ?? []), ...(previous?.history ?? [])])
      if (o.versionId && o.file) knownVersions.set(`${o.key}\0${o.versionId}`, { file: o.file, stored: o });
    const stored: StoredBucket = {
      version: 1,
      bucket: target.bucket,
      prefix: target.prefix,
      objects: [],
      ...(options.versions ? { history: [] } : {}),
    };
    const totals = { objects: 0, versions: 0, fetched: 0, carried: 0, bytes: 0 };

    // In key order (files of one directory come together), a few small objects in flight at once.
    let pending: Promise<Fetched>[] = [];
    let place: (entry: StoredObject) => void = () => {};
    const drain = async function* (): AsyncGenerator<SourceFile> {
      for (const got of await Promise.all(pending)) {
        if (!got) continue; // deleted since the listing: not in this snapshot
        if ('changed' in got) {
          run.skipped(got.file, got.changed);
          continue;
        }
        place(got.entry);
        totals.fetched += 1;
        totals.bytes += got.bytes.length;
        yield { name: got.entry.file, stream: Readable.from([got.bytes]), finished: Promise.resolve() };
      }
      pending = [];
    };
    const read = async function* (object: Listed, file: string): AsyncGenerator<SourceFile> {
      const was = object.versionId ? knownVersions.get(`${object.key}\0${object.versionId}`) : undefined;
      const same = was ?? sameAsBefore(before.get(object.key), object, file);
      if (same && (await run.canCarry(same.file))) {
        yield* drain();
        const { deleteMarker: _, ...kept } = same.stored as StoredVersion;
        place({ ...(kept as StoredObject), file, ...(object.versionId ? { versionId: object.versionId } : {}) });
        totals.carried += 1;
        yield { name: file, carried: true, ...(same.file !== file ? { from: same.file } : {}) };
        return;
      }
      if (object.size > SMALL_OBJECT) {
        yield* drain();
        const answer = await getObject(client, target, object.key, object.versionId, 'backup');
        if (!answer?.Body) return;
        const changed = changedSinceListing(target, object, answer);
        if (changed) {
          (answer.Body as Readable).destroy();
          run.skipped(file, changed);
          return;
        }
        const got = streamObject(target, object, answer);
        yield { name: file, stream: got.stream, finished: got.finished };
        await got.finished; // the engine waited for it before asking for the next file
        totals.fetched += 1;
        totals.bytes += object.size;
        place(storedOf(object, file, answer, got.sha256()));
        return;
      }
      const fetching = readObject(client, target, object, file);
      // Awaited in drain; until then a failure must not count as unhandled (it would end the process).
      fetching.catch(() => {});
      pending.push(fetching);
      if (pending.length >= IN_FLIGHT) yield* drain();
    };

    place = (entry) => stored.objects.push(entry);
    for (const object of listed.filter((o) => o.latest && !o.deleteMarker))
      yield* read(object, `objects/${files.get(object.key)!}`);
    yield* drain();
    if (stored.history) {
      const history = stored.history;
      place = (entry) => history.push({ ...entry, deleteMarker: false, versionId: entry.versionId! });
      for (const object of listed.filter((o) => !o.latest || o.deleteMarker)) {
        if (object.deleteMarker) {
          yield* drain();
          history.push(deleteMarkerOf(object));
          continue;
        }
        yield* read(object, fileOfVersion(files.get(object.key)!, object.versionId!));
      }
      yield* drain();
      // Per key newest first, as listed (a drain may have placed a batch after a delete marker).
      const order = new Map(listed.map((o, n) => [`${o.key}\0${o.versionId}`, n]));
      history.sort((a, b) => order.get(`${a.key}\0${a.versionId}`)! - order.get(`${b.key}\0${b.versionId}`)!);
    }
    totals.objects = stored.objects.length;
    totals.versions = stored.history?.length ?? 0;
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

/** The previous snapshot's object when the listing shows it unchanged (same ETag, size and time) at the same file. */
function sameAsBefore(was: StoredObject | undefined, object: Listed, file: string) {
  if (!was || was.file !== file || was.size !== object.size || was.etag !== object.etag) return undefined;
  if (was.lastModified !== object.lastModified) return undefined;
  return { file, stored: was };
}

function deleteMarkerOf(object: Listed): StoredVersion {
  return {
    key: object.key,
    versionId: object.versionId!,
    deleteMarker: true,
    file: null,
    size: 0,
    etag: null,
    lastModified: object.lastModified,
    sha256: null,
    contentType: null,
    contentEncoding: null,
    contentDisposition: null,
    contentLanguage: null,
    cacheControl: null,
    expires: null,
    metadata: {},
  };
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

/** A small object read whole; or what shows it is not the object listed; undefined when it is gone. */
type Fetched = { entry: StoredObject; bytes: Buffer } | { file: string; changed: AmberError } | undefined;

function storedOf(object: Listed, file: string, answer: GetObjectCommandOutput, sha256: string): StoredObject {
  return {
    key: object.key,
    ...(object.versionId ? { versionId: object.versionId } : {}),
    file,
    size: object.size,
    // As the listing gave them: the next backup compares its listing with these (GET's own
    // Last-Modified header has whole seconds only).
    etag: object.etag,
    lastModified: object.lastModified,
    sha256,
    ...headersOf(answer),
  };
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * A header value as the SDK gives it (Node reads header bytes as Latin-1, one character a byte) as
 * the text its bytes spell in UTF-8, which S3 clients send (RGW and MinIO keep the bytes as they
 * are; AWS answers RFC 2047 words, plain ASCII, kept as they are); undefined when they are not UTF-8.
 */
function utf8Text(raw: string): string | undefined {
  if (!/[\u0080-\uffff]/.test(raw)) return raw;
  try {
    return strictUtf8.decode(Buffer.from(raw, 'latin1'));
  } catch {
    return undefined;
  }
}

/** The headers and user metadata a GET answered, as bucket.json keeps them (StoredObject.notUtf8). */
function headersOf(answer: GetObjectCommandOutput) {
  const notUtf8: string[] = [];
  const text = (name: string, raw: string | undefined): string | null => {
    if (raw === undefined) return null;
    const decoded = utf8Text(raw);
    if (decoded === undefined) notUtf8.push(name);
    return decoded ?? raw;
  };
  const headers = {
    contentType: text('content-type', answer.ContentType),
    contentEncoding: text('content-encoding', answer.ContentEncoding),
    contentDisposition: text('content-disposition', answer.ContentDisposition),
    contentLanguage: text('content-language', answer.ContentLanguage),
    cacheControl: text('cache-control', answer.CacheControl),
    // The text as sent: the SDK's Expires is a date parsed from it, and makes one up for "0".
    expires: text('expires', answer.ExpiresString),
    metadata: Object.fromEntries(
      Object.entries(answer.Metadata ?? {}).map(([name, value]) => [name, text(`x-amz-meta-${name}`, value)!]),
    ),
  };
  return notUtf8.length ? { ...headers, notUtf8 } : headers;
}

export async function getObject(
  client: S3Client,
  target: BucketTarget,
  key: string,
  versionId: string | undefined,
  purpose: BucketPurpose,
) {
  try {
    return await client.send(new GetObjectCommand({ Bucket: target.bucket, Key: key, VersionId: versionId }));
  } catch (error) {
    if ((error as { name?: string }).name === 'NoSuchKey' || (error as { name?: string }).name === 'NoSuchVersion')
      return undefined;
    throw bucketError(target, error, `reading ${key} of`, purpose);
  }
}

const bareEtag = (etag: string) => etag.replace(/^W\//, '').replaceAll('"', '');

/**
 * Why the GET's answer is not the object the listing showed (another size or ETag: it was
 * replaced in between), or undefined. Its record would pair the listing's ETag with other bytes,
 * so it is left out: the next backup lists and reads it again.
 */
function changedSinceListing(
  target: BucketTarget,
  object: Listed,
  answer: GetObjectCommandOutput,
  size = answer.ContentLength,
): AmberError | undefined {
  const otherSize = size !== undefined && size !== object.size;
  const otherEtag =
    object.etag !== null && answer.ETag !== undefined && bareEtag(answer.ETag) !== bareEtag(object.etag);
  if (!otherSize && !otherEtag) return undefined;
  return new AmberError(
    'SOURCE_CHANGED',
    `${object.key} of ${target.display} changed between the listing and its read (${otherSize ? `${size} bytes, not ${object.size}` : `ETag ${answer.ETag}, not ${object.etag}`}): it is not in this snapshot`,
    { hint: 'an earlier snapshot holds it as it was, if it was there then; the next backup reads it' },
  );
}

async function readObject(client: S3Client, target: BucketTarget, object: Listed, file: string): Promise<Fetched> {
  const answer = await getObject(client, target, object.key, object.versionId, 'backup');
  if (!answer?.Body) return undefined;
  const early = changedSinceListing(target, object, answer);
  if (early) {
    (answer.Body as Readable).destroy();
    return { file, changed: early };
  }
  const bytes = Buffer.from(
    await answer.Body.transformToByteArray().catch((error: unknown) => {
      throw bucketError(target, error, `reading ${object.key} of`, 'backup');
    }),
  );
  const changed = changedSinceListing(target, object, answer, bytes.length);
  if (changed) return { file, changed };
  const sha = createHash('sha256').update(bytes).digest('hex');
  return { entry: storedOf(object, file, answer, sha), bytes };
}

/**
 * A large object's body streamed into the snapshot, hashed as it passes. Fewer bytes than the
 * listing (and the GET) said fail the stream with SOURCE_CHANGED, so the engine stops the backup
 * with that error: by then the file is half written, too late to leave it out.
 */
function streamObject(target: BucketTarget, object: Listed, answer: GetObjectCommandOutput) {
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
        throw bucketError(target, error, `reading ${object.key} of`, 'backup');
      }
      if (size !== object.size)
        throw new AmberError(
          'SOURCE_CHANGED',
          `${object.key} of ${target.display} changed while it was read (${size} bytes, not ${object.size})`,
          { hint: 'run the backup again' },
        );
    })(),
  );
  const finished = new Promise<void>((resolve, reject) => {
    stream.on('end', () => resolve());
    stream.on('error', reject);
  });
  return { stream, finished, sha256: () => hash.digest('hex') };
}
