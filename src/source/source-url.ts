// Sources named by a URL instead of a path (postgresql://…, mysql://…; later imap://, caldav://):
// each produces files into an ordinary snapshot tree (so dedup, locks, holds, copies, verify and
// drills work unchanged), describes itself for the snapshot's `source` record, and knows its way
// back into a live target.
import { readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { AmberError } from '../core/errors.ts';
import { describeMysql, dumpMysql, parseMysqlUrl } from './database/mysql.ts';
import { describePostgres, dumpPostgres, parsePostgresUrl, type PostgresAccess } from './database/postgresql.ts';
import { dumpImap, parseImapUrl } from './mail/imap.ts';
import { parseDavUrl } from './dav/dav-client.ts';
import { dumpDav } from './dav/dav.ts';
import { parseBucketUrl } from './bucket/s3-bucket.ts';
import { dumpBucket } from './bucket/bucket-dump.ts';

/**
 * One file of a source's output, streamed: `finished` rejects when the tool that wrote it failed.
 * `name` may hold directories (`INBOX/12.eml`): the files of one directory come one after another.
 */
export interface StreamedFile {
  name: string;
  stream: Readable;
  finished: Promise<void>;
  /** The next backup of this source reads the file back (SourcePrevious.read): a write-only key keeps a local copy. */
  keep?: boolean;
}

/** The previous snapshot's file of the same name (or of `from`), carried over unread (the source saw it unchanged). */
export interface CarriedFile {
  name: string;
  carried: true;
  /** Its name in the previous snapshot, when it moved (an object version that is no longer the current one). */
  from?: string;
}

export type SourceFile = StreamedFile | CarriedFile;

/**
 * What a source is given while it is read. The previous snapshot is the latest of the same source
 * from this host; what it holds is a hint to be checked against the live source, never the truth:
 * it may be old, or written by another key.
 */
export interface SourceRun {
  /** A file the previous snapshot holds (a name as in SourceFile), read whole; undefined when it has none, it is larger than maxBytes, or this key cannot read it. */
  read(name: string, maxBytes: number): Promise<Buffer | undefined>;
  /** Whether the previous snapshot's file can be carried over (it exists and this backup may reuse its data). */
  canCarry(name: string): Promise<boolean>;
  /** Something left out (a message over the size limit, a folder deleted while read): a warning, and the snapshot is marked partial. */
  skipped(name: string, reason: AmberError): void;
}

/** What the user chose about a source (backup --folder, --max-message-size, --versions). */
export interface SourceOptions {
  folders?: string[];
  maxMessageBytes?: number;
  /** A bucket: every version of every object too. */
  versions?: boolean;
  /** A mailbox: the backup ends when the server makes no progress this long. */
  stallMs?: number;
}

/** A source's credentials, from the environment or files (never a command line). */
export interface SourceAccess extends PostgresAccess {
  /** An OAuth2 access token (XOAUTH2), from --source-token-file. */
  token?: string;
}

/**
 * A source's credentials: the first line of its password file (else AMBER_SOURCE_PASSWORD) and of
 * its token file. `unreadable` words the error for the caller (an option, a policy key).
 */
export function readSourceAccess(
  files: { passwordFile?: string; tokenFile?: string },
  unreadable: (which: 'password' | 'token', file: string, cause: Error) => AmberError,
): SourceAccess {
  const firstLine = (which: 'password' | 'token', file: string) => {
    try {
      return readFileSync(file, 'utf8').split('\n')[0].replace(/\r$/, '');
    } catch (cause) {
      throw unreadable(which, file, cause as Error);
    }
  };
  return {
    password: files.passwordFile ? firstLine('password', files.passwordFile) : process.env.AMBER_SOURCE_PASSWORD,
    ...(files.tokenFile ? { token: firstLine('token', files.tokenFile) } : {}),
  };
}

export interface OpenedSource {
  kind: string;
  /** The URL without a password: what the snapshot records and messages show. */
  display: string;
  /** The top directory of its files in the snapshot tree, e.g. "postgresql". */
  dir: string;
  /** What the snapshot records as `source`; a source that learns more while read (a cursor) replaces it as it ends. */
  record: Record<string, unknown>;
  /** Its files; an incremental source (IMAP) carries over what `previous` shows unchanged. */
  files(run: SourceRun): AsyncIterable<SourceFile>;
}

export const isSourceUrl = (text: string): boolean => /^[a-z][a-z0-9+.-]*:\/\//i.test(text);

export async function openSource(
  text: string,
  access: SourceAccess,
  options: SourceOptions = {},
): Promise<OpenedSource> {
  const scheme = text.slice(0, text.indexOf(':')).toLowerCase();
  if (scheme === 'postgresql' || scheme === 'postgres') {
    const target = parsePostgresUrl(text);
    const description = await describePostgres(target, access);
    return {
      kind: 'postgresql',
      display: target.display,
      dir: 'postgresql',
      record: { ...description, whole: target.database === undefined },
      files: () => dumpPostgres(target, access, description),
    };
  }
  if (scheme === 'mysql' || scheme === 'mariadb') {
    const target = parseMysqlUrl(text);
    const description = await describeMysql(target, access);
    return {
      kind: 'mysql',
      display: target.display,
      dir: 'mysql',
      record: { ...description, whole: target.database === undefined },
      files: () => dumpMysql(target, access, description),
    };
  }
  if (scheme === 'imap' || scheme === 'imaps') {
    // One login, in files(): a refused one fails the backup there, before any snapshot is written.
    const target = parseImapUrl(text);
    const opened: OpenedSource = {
      kind: 'imap',
      display: target.display,
      dir: 'imap',
      record: { kind: 'imap', url: target.display },
      files: (run) =>
        dumpImap(target, access, run, options, (record) => {
          opened.record = record;
        }),
    };
    return opened;
  }
  if (DAV_SCHEMES.has(scheme)) {
    const target = parseDavUrl(text);
    const opened: OpenedSource = {
      kind: target.kind,
      display: target.display,
      dir: target.kind,
      record: { kind: target.kind, url: target.display },
      files: (run) =>
        dumpDav(target, access, run, (record) => {
          opened.record = record;
        }),
    };
    return opened;
  }
  if (BUCKET_SCHEMES.has(scheme)) {
    const target = parseBucketUrl(text);
    const opened: OpenedSource = {
      kind: 's3',
      display: target.display,
      dir: 's3',
      record: { kind: 's3', url: target.display },
      files: (run) =>
        dumpBucket(target, access, run, { versions: options.versions }, (record) => {
          opened.record = record;
        }),
    };
    return opened;
  }
  throw new AmberError('USAGE', `Amber does not back up ${scheme}:// sources (yet)`, {
    hint: 'sources by URL: postgresql://USER@HOST:PORT/DATABASE, mysql://USER@HOST:PORT/DATABASE, imaps://USER@HOST/, caldav://USER@HOST/PATH/, carddav://USER@HOST/PATH/, s3src://BUCKET/PREFIX; anything else by its path',
  });
}

const BUCKET_SCHEMES = new Set(['s3src', 's3src+http', 's3src+https']);

const DAV_SCHEMES = new Set(['caldav', 'carddav', 'caldav+http', 'carddav+http']);

/** The URL as a snapshot records it (no password), without contacting the source. */
export function displayOfSourceUrl(text: string): string {
  const scheme = text.slice(0, text.indexOf(':')).toLowerCase();
  if (scheme === 'postgresql' || scheme === 'postgres') return parsePostgresUrl(text).display;
  if (scheme === 'mysql' || scheme === 'mariadb') return parseMysqlUrl(text).display;
  if (scheme === 'imap' || scheme === 'imaps') return parseImapUrl(text).display;
  if (DAV_SCHEMES.has(scheme)) return parseDavUrl(text).display;
  if (BUCKET_SCHEMES.has(scheme)) return parseBucketUrl(text).display;
  throw new AmberError('USAGE', `Amber does not back up ${scheme}:// sources (yet)`);
}
