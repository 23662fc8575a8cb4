// Sources named by a URL instead of a path (postgresql://…, mysql://…; later imap://, caldav://):
// each produces files into an ordinary snapshot tree (so dedup, locks, holds, copies, verify and
// drills work unchanged), describes itself for the snapshot's `source` record, and knows its way
// back into a live target.
import type { Readable } from 'node:stream';
import { AmberError } from '../core/errors.ts';
import { describeMysql, dumpMysql, parseMysqlUrl } from './database/mysql.ts';
import { describePostgres, dumpPostgres, parsePostgresUrl, type PostgresAccess } from './database/postgresql.ts';
import { dumpImap, parseImapUrl } from './mail/imap.ts';

/**
 * One file of a source's output, streamed: `finished` rejects when the tool that wrote it failed.
 * `name` may hold directories (`INBOX/12.eml`): the files of one directory come one after another.
 */
export interface SourceFile {
  name: string;
  stream: Readable;
  finished: Promise<void>;
}

export interface OpenedSource {
  kind: string;
  /** The URL without a password: what the snapshot records and messages show. */
  display: string;
  /** The top directory of its files in the snapshot tree, e.g. "postgresql". */
  dir: string;
  /** What the snapshot records as `source`; a source that learns more while read (a cursor) replaces it as it ends. */
  record: Record<string, unknown>;
  files(): AsyncIterable<SourceFile>;
}

export const isSourceUrl = (text: string): boolean => /^[a-z][a-z0-9+.-]*:\/\//i.test(text);

export async function openSource(text: string, access: PostgresAccess): Promise<OpenedSource> {
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
      files: () =>
        dumpImap(target, access, (record) => {
          opened.record = record;
        }),
    };
    return opened;
  }
  throw new AmberError('USAGE', `Amber does not back up ${scheme}:// sources (yet)`, {
    hint: 'sources by URL: postgresql://USER@HOST:PORT/DATABASE, mysql://USER@HOST:PORT/DATABASE, imaps://USER@HOST/; anything else by its path',
  });
}

/** The URL as a snapshot records it (no password), without contacting the source. */
export function displayOfSourceUrl(text: string): string {
  const scheme = text.slice(0, text.indexOf(':')).toLowerCase();
  if (scheme === 'postgresql' || scheme === 'postgres') return parsePostgresUrl(text).display;
  if (scheme === 'mysql' || scheme === 'mariadb') return parseMysqlUrl(text).display;
  if (scheme === 'imap' || scheme === 'imaps') return parseImapUrl(text).display;
  throw new AmberError('USAGE', `Amber does not back up ${scheme}:// sources (yet)`);
}
