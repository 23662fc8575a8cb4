// A source's snapshot restored into a live target rather than a directory: the dump's files read
// from the repository (every blob checked as any restore checks it) and fed to the source's own
// restore, as `amber restore SNAPSHOT --to postgresql://…/NEWDB` does.
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { AmberError, isAmberError } from '../core/errors.ts';
import { loadIndex } from '../repo/index-loader.ts';
import { createBlobReader, type BlobReader } from '../repo/blob-reader.ts';
import type { Repository } from '../repo/repository.ts';
import type { TreeNode } from '../repo/tree.ts';
import { folderMatcher as wanted, type ImapAccess, parseImapUrl } from '../source/mail/imap.ts';
import { type ImapRestoreResult, restoreImap } from '../source/mail/imap-restore.ts';
import { readMailbox } from './mailbox-snapshot.ts';
import { readCollections } from './dav-snapshot.ts';
import { type DavAccess, parseDavUrl } from '../source/dav/dav-client.ts';
import { type DavRestoreResult, restoreDav } from '../source/dav/dav-restore.ts';
import { parseMysqlUrl, restoreMysql } from '../source/database/mysql.ts';
import { parsePostgresUrl, restorePostgres } from '../source/database/postgresql.ts';
import { fileOfDatabase } from '../source/database/tool.ts';
import type { SnapshotEntry } from './snapshots.ts';
import { readFileNode, resolvePath } from './tree-walk.ts';
import { type BucketAccess, checkStoredBucket, parseBucketUrl } from '../source/bucket/s3-bucket.ts';
import { type BucketRestoreResult, restoreBucket } from '../source/bucket/bucket-restore.ts';

export interface DatabaseRestoreResult {
  kind: 'postgresql' | 'mysql';
  database: string;
  to: string;
  bytes: number;
  serverVersion: string;
  rolesSkipped: number;
}

export interface ObjectsRestoreResult extends BucketRestoreResult {
  kind: 's3';
  to: string;
}

export interface CollectionRestoreResult extends DavRestoreResult {
  kind: 'caldav' | 'carddav';
  to: string;
}

export interface MailRestoreResult extends ImapRestoreResult {
  kind: 'imap';
  to: string;
}

export type SourceRestoreResult =
  | DatabaseRestoreResult
  | MailRestoreResult
  | CollectionRestoreResult
  | ObjectsRestoreResult;

interface DatabaseRecord {
  kind: 'postgresql' | 'mysql';
  url: string;
  serverVersion?: string;
  serverVersionNum?: number;
  databases: string[];
  whole?: boolean;
  roles?: string[];
  definers?: [string, string][];
}

export async function restoreDatabase(options: {
  repo: Repository;
  snapshot: SnapshotEntry;
  to: string;
  access: { password?: string };
  /** Which database of a whole-server snapshot; default its only one. */
  database?: string;
  overwrite?: boolean;
  /**
   * Into a throwaway server (a drill's): the roles or DEFINER accounts the snapshot recorded are
   * created first, as a dump of one database names them without creating them.
   */
  throwaway?: boolean;
  signal?: AbortSignal;
}): Promise<DatabaseRestoreResult> {
  const record = options.snapshot.snapshot.source as DatabaseRecord | undefined;
  const short = options.snapshot.id.slice(0, 8);
  if (!record || typeof record !== 'object')
    throw new AmberError('USAGE', `snapshot ${short} is a backup of files, not of a database`, {
      hint: 'restore it with --target DIR',
    });
  if (record.kind !== 'postgresql' && record.kind !== 'mysql')
    throw new AmberError('USAGE', `snapshot ${short} is a ${String(record.kind)} backup, which --to cannot restore`);
  const scheme = options.to.slice(0, options.to.indexOf(':')).toLowerCase();
  const wanted = record.kind === 'postgresql' ? ['postgresql', 'postgres'] : ['mysql', 'mariadb'];
  if (!wanted.includes(scheme))
    throw new AmberError('USAGE', `snapshot ${short} is a ${record.kind} backup: --to takes a ${wanted[0]}:// URL`);
  const databases = Array.isArray(record.databases) ? record.databases.map(String) : [];
  const from = options.database ?? (databases.length === 1 ? databases[0] : undefined);
  if (!from || !databases.includes(from))
    throw new AmberError(
      'USAGE',
      options.database
        ? `snapshot ${short} has no database ${options.database} (it has ${databases.join(', ') || 'none'})`
        : `snapshot ${short} holds ${databases.length} databases: say which with --database NAME (${databases.join(', ')})`,
    );
  const { index } = await loadIndex(options.repo);
  const reader = createBlobReader(options.repo, index);
  const root = options.snapshot.snapshot.tree;
  const dir = record.kind === 'postgresql' ? 'postgresql' : 'mysql';
  const dump = await resolvePath(reader, root, `/${dir}/${fileOfDatabase(from)}`);
  const globalsFile = record.kind === 'postgresql' ? 'globals.sql' : 'users.sql';
  const globals = record.whole
    ? await resolvePath(reader, root, `/${dir}/${globalsFile}`).catch(() => undefined)
    : undefined;
  let bytes = 0;
  const feed = async (sink: Writable) => {
    bytes = await feedFile(reader, dump, sink);
  };
  const feedGlobals = globals ? async (sink: Writable) => void (await feedFile(reader, globals, sink)) : undefined;
  if (record.kind === 'postgresql') {
    const target = parsePostgresUrl(options.to);
    const into = target.database ?? from;
    const result = await restorePostgres({
      target,
      access: options.access,
      database: into,
      dumpVersionNum: Number(record.serverVersionNum) || 0,
      overwrite: options.overwrite === true,
      feed,
      globals: feedGlobals,
      signal: options.signal,
      strict: options.throwaway,
      ensureRoles: options.throwaway && Array.isArray(record.roles) ? record.roles.map(String) : undefined,
    });
    return { kind: 'postgresql', database: into, to: target.display, bytes, ...result };
  }
  const target = parseMysqlUrl(options.to);
  const into = target.database ?? from;
  const result = await restoreMysql({
    target,
    access: options.access,
    database: into,
    dumpVersion: String(record.serverVersion ?? '0'),
    overwrite: options.overwrite === true,
    feed,
    globals: feedGlobals,
    signal: options.signal,
    strict: options.throwaway,
    ensureAccounts:
      options.throwaway && Array.isArray(record.definers)
        ? record.definers.filter((a) => Array.isArray(a) && a.length === 2).map(([u, h]) => [String(u), String(h)])
        : undefined,
  });
  return { kind: 'mysql', database: into, to: target.display, bytes, ...result };
}

/** A source's snapshot into a live target of its kind: a database server, or a mail account. */
export async function restoreToSource(
  options: Parameters<typeof restoreDatabase>[0] & { folders?: string[]; into?: string },
): Promise<SourceRestoreResult> {
  const record = options.snapshot.snapshot.source as { kind?: unknown } | undefined;
  if (record?.kind === 'imap') return restoreMail(options);
  if (record?.kind === 'caldav' || record?.kind === 'carddav') return restoreCollections(options, record.kind);
  if (record?.kind === 's3') return restoreObjects(options);
  return restoreDatabase(options);
}

/** A bucket snapshot (/s3/bucket.json and its objects) into a bucket. */
async function restoreObjects(options: {
  repo: Repository;
  snapshot: SnapshotEntry;
  to: string;
  access: BucketAccess;
  signal?: AbortSignal;
}): Promise<ObjectsRestoreResult> {
  const short = options.snapshot.id.slice(0, 8);
  if (!/^s3src(\+https?)?:\/\//i.test(options.to))
    throw new AmberError(
      'USAGE',
      `snapshot ${short} is a bucket backup: --to takes an s3src:// URL (or --target DIR for files)`,
    );
  const target = parseBucketUrl(options.to);
  const { index } = await loadIndex(options.repo);
  const reader = createBlobReader(options.repo, index);
  const tree = options.snapshot.snapshot.tree;
  const where = `/s3/bucket.json of snapshot ${short}`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(
      (await readFileNode(reader, await resolvePath(reader, tree, '/s3/bucket.json'))).toString('utf8'),
    );
  } catch (error) {
    if (isAmberError(error)) throw error;
    throw new AmberError('OBJECT_CORRUPT', `${where} is not JSON: ${(error as Error).message}`);
  }
  const stored = checkStoredBucket(parsed, where);
  const result = await restoreBucket({
    target,
    access: options.access,
    stored,
    read: async (file) => readFileNode(reader, await resolvePath(reader, tree, `/s3/${file}`)),
    signal: options.signal,
  });
  return { kind: 's3', to: target.display, ...result };
}

/** A calendar or address-book snapshot into a CalDAV or CardDAV account. */
async function restoreCollections(
  options: { repo: Repository; snapshot: SnapshotEntry; to: string; access: DavAccess; signal?: AbortSignal },
  kind: 'caldav' | 'carddav',
): Promise<CollectionRestoreResult> {
  const short = options.snapshot.id.slice(0, 8);
  const target = parseDavUrl(options.to);
  if (target.kind !== kind)
    throw new AmberError(
      'USAGE',
      `snapshot ${short} is a ${kind} backup: --to takes a ${kind}:// URL (or ${kind}+http://)`,
    );
  const { index } = await loadIndex(options.repo);
  const reader = createBlobReader(options.repo, index);
  const collections = await readCollections(reader, options.snapshot.snapshot.tree, kind, short);
  const result = await restoreDav({ target, access: options.access, collections, signal: options.signal });
  return { kind, to: target.display, ...result };
}

/** A mailbox snapshot (/imap/FOLDER/folder.json and UID.eml) into an IMAP account. */
async function restoreMail(options: {
  repo: Repository;
  snapshot: SnapshotEntry;
  to: string;
  access: ImapAccess;
  folders?: string[];
  into?: string;
  signal?: AbortSignal;
}): Promise<MailRestoreResult> {
  const short = options.snapshot.id.slice(0, 8);
  const scheme = options.to.slice(0, options.to.indexOf(':')).toLowerCase();
  if (scheme !== 'imap' && scheme !== 'imaps')
    throw new AmberError('USAGE', `snapshot ${short} is a mailbox backup: --to takes an imaps:// or imap:// URL`);
  const target = parseImapUrl(options.to);
  const { index } = await loadIndex(options.repo);
  const reader = createBlobReader(options.repo, index);
  const all = await readMailbox(reader, options.snapshot.snapshot.tree, short);
  const folders = all.filter((folder) => wanted(options.folders)(folder.stored.name, folder.stored.delimiter));
  // Each pattern must name a folder: a typo restores nothing and says so.
  const missing = (options.folders ?? []).filter(
    (pattern) => !all.some((folder) => wanted([pattern])(folder.stored.name, folder.stored.delimiter)),
  );
  if (missing.length)
    throw new AmberError('USAGE', `snapshot ${short} has no folder ${missing.join(', ')}`, {
      hint: `list its folders with amber ls ${short}; patterns use IMAP wildcards (* any characters, % within one level)`,
    });
  const result = await restoreImap({
    target,
    access: options.access,
    folders,
    into: options.into,
    signal: options.signal,
  });
  return { kind: 'imap', to: target.display, ...result };
}

/** A file's content from the repository into a pipe, in order, waiting while the pipe is full. */
async function feedFile(reader: BlobReader, node: TreeNode, sink: Writable): Promise<number> {
  let bytes = 0;
  for (const id of node.content ?? []) {
    const blob = await reader.readBlob(Buffer.from(id, 'hex'));
    bytes += blob.length;
    if (sink.destroyed || sink.writableEnded) break; // the tool stopped reading: its own error says why
    if (!sink.write(blob)) {
      // Whichever comes first; the other waits are withdrawn (they would pile up, one per full pipe).
      const done = new AbortController();
      const { signal } = done;
      await Promise.race([
        once(sink, 'drain', { signal }),
        once(sink, 'close', { signal }),
        once(sink, 'error', { signal }),
      ]).catch(() => {});
      done.abort();
    }
  }
  return bytes;
}
