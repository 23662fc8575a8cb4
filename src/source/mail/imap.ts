// IMAP mailboxes as a source: every folder's messages, each as its exact RFC 822 bytes (so the same
// message in two folders, or on two days, is stored once), with the folder's hierarchy, special use
// and UIDVALIDITY, and each message's flags, keywords and internal date, read with imapflow. The
// snapshot holds /imap/<folder>/folder.json (the folder and its messages' metadata) and
// /imap/<folder>/<uid>.eml. The way back into an account is restoreImap (imap-restore.ts).
import { Readable } from 'node:stream';
import { ImapFlow, type ListResponse } from 'imapflow';
import { AmberError } from '../../core/errors.ts';
import type { SourceFile, SourceRun } from '../source-url.ts';
import { decodeUrlPart, hostOf, withoutPassword } from '../database/tool.ts';

export interface ImapTarget {
  /** imaps: TLS from the start; imap: STARTTLS (required unless the host is this machine). */
  secure: boolean;
  host: string;
  port: number;
  user: string;
  display: string;
}

export interface ImapAccess {
  password?: string;
  /** An OAuth2 access token: the login is XOAUTH2 (or OAUTHBEARER) instead of a password. */
  token?: string;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/** imap://USER@HOST[:PORT]/ or imaps://…; a password in it is refused (it would show in `ps`). */
export function parseImapUrl(text: string): ImapTarget {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new AmberError('USAGE', `"${withoutPassword(text)}" is not an IMAP URL`, {
      hint: 'write imaps://USER@HOST/ (TLS) or imap://USER@HOST/ (STARTTLS)',
    });
  }
  const scheme = url.protocol.replace(/:$/, '');
  if (scheme !== 'imap' && scheme !== 'imaps')
    throw new AmberError('USAGE', `"${withoutPassword(text)}" is not an IMAP URL`);
  if (url.password)
    throw new AmberError('USAGE', 'the IMAP URL has a password in it, which any user can read in `ps`', {
      hint: 'leave it out of the URL; set AMBER_SOURCE_PASSWORD or pass --source-password-file',
    });
  if (url.search || url.hash || (url.pathname !== '/' && url.pathname !== ''))
    throw new AmberError('USAGE', `the IMAP URL ${scheme}://${url.host}${url.pathname} names more than an account`, {
      hint: `write ${scheme}://USER@HOST[:PORT]/ : the whole account is backed up`,
    });
  const user = url.username ? decodeUrlPart(url.username, 'user name', text) : '';
  if (!user)
    throw new AmberError('USAGE', `the IMAP URL ${withoutPassword(text)} names no user`, {
      hint: `write ${scheme}://USER@${url.host}/ (a user name with @ in it as %40)`,
    });
  const host = hostOf(url.hostname, text);
  if (!host) throw new AmberError('USAGE', `the IMAP URL "${withoutPassword(text)}" names no host`);
  return {
    secure: scheme === 'imaps',
    host,
    port: url.port ? Number(url.port) : scheme === 'imaps' ? 993 : 143,
    user,
    display: `${scheme}://${encodeURIComponent(user)}@${url.host}/`,
  };
}

/** A logged-in connection; a refused login, an unreachable server or a refused cleartext login each said clearly. */
export async function connectImap(target: ImapTarget, access: ImapAccess): Promise<ImapFlow> {
  if (access.password === undefined && access.token === undefined)
    throw new AmberError('USAGE', `no password for ${target.display}`, {
      hint: 'set AMBER_SOURCE_PASSWORD or pass --source-password-file FILE (or --source-token-file FILE for OAuth2)',
    });
  const client = new ImapFlow({
    host: target.host,
    port: target.port,
    secure: target.secure,
    // Over imap://, the password goes only inside STARTTLS, but to this machine itself.
    doSTARTTLS: target.secure ? undefined : LOOPBACK.has(target.host) ? undefined : true,
    auth:
      access.token !== undefined
        ? { user: target.user, accessToken: access.token }
        : { user: target.user, pass: access.password },
    logger: false,
    disableAutoIdle: true,
    connectionTimeout: 30_000,
    greetingTimeout: 30_000,
    socketTimeout: 5 * 60_000,
    clientInfo: { name: 'amber' },
  });
  // An error after connect (the server went away) surfaces on the command that was running.
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (error) {
    throw connectError(target, error, access);
  }
  return client;
}

function connectError(target: ImapTarget, error: unknown, access: ImapAccess = {}): AmberError {
  const e = error as { authenticationFailed?: boolean; code?: string; message?: string; responseText?: string };
  if (e.authenticationFailed || /AUTHENTICATIONFAILED|authentication failed/i.test(`${e.responseText} ${e.message}`))
    return new AmberError(
      'SOURCE_AUTH_FAILED',
      `the IMAP server ${target.display} refused the login of ${target.user}`,
      {
        hint:
          access.token !== undefined
            ? 'check the user in the URL and that the OAuth2 token (--source-token-file) is current and has the IMAP scope (https://mail.google.com/, IMAP.AccessAsUser.All)'
            : 'check the user in the URL and the password (AMBER_SOURCE_PASSWORD or --source-password-file); a provider may need an app password',
      },
    );
  if (e.code === 'NoConnection' || /EPIPE|socket .*closed|connection .*closed/i.test(`${e.code} ${e.message}`))
    return new AmberError(
      'SOURCE_UNREACHABLE',
      `the IMAP server ${target.display} closed the connection: ${e.message ?? e.code}`,
      {
        hint: 'nothing of this run was written as a snapshot (earlier ones are intact); run the backup again once the server is back',
      },
    );
  if (/ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ETIMEDOUT|ECONNRESET|timeout/i.test(`${e.code} ${e.message}`))
    return new AmberError(
      'SOURCE_UNREACHABLE',
      `the IMAP server ${target.display} could not be reached: ${e.message ?? e.code}`,
      {
        hint: `check that it listens there (openssl s_client -connect ${target.host}:${target.port}${target.secure ? '' : ' -starttls imap'})`,
      },
    );
  return new AmberError(
    'SOURCE_FAILED',
    `the IMAP server ${target.display} failed: ${e.responseText ?? e.message ?? String(error)}`,
    {
      hint: target.secure
        ? 'read the server’s message above'
        : 'over imap:// the server must offer STARTTLS (use imaps:// for TLS from the start)',
    },
  );
}

/** A folder's name as a file name in the snapshot: %XX for %, / and control characters. */
export function fileOfFolder(name: string): string {
  let out = '';
  for (const c of name) {
    const code = c.charCodeAt(0);
    out += c === '%' || c === '/' || code < 0x20 || code === 0x7f ? `%${code.toString(16).padStart(2, '0')}` : c;
  }
  return out === '.' || out === '..' ? out.replace(/\./g, '%2e') : out;
}

/** One message of a folder as folder.json keeps it. */
export interface StoredMessage {
  uid: number;
  flags: string[];
  internalDate: string;
  size: number;
  messageId: string | null;
  date: string | null;
  from: string | null;
  subject: string | null;
}

/** A folder as folder.json keeps it: its place in the hierarchy, its cursor, and its messages. */
export interface StoredFolder {
  version: 1;
  name: string;
  delimiter: string | null;
  /** The server's attributes of the folder (\HasChildren, \Noselect, …, and its special use). */
  attributes: string[];
  /** \Sent, \Trash, … as the server gave it (never guessed from the name). */
  specialUse: string | null;
  subscribed: boolean;
  uidValidity: string | null;
  uidNext: number | null;
  highestModseq: string | null;
  messages: StoredMessage[];
}

/** An IMAP flag or keyword: `\Name` or an atom (RFC 3501): no space, parenthesis, brace, quote, %, *, ] or control character. */
const FLAG = /^\\?[!#$&'+,\-./0-9:;<=>?@A-Z[^_`a-z|~\u0080-\uffff]+$/;

/**
 * A folder.json read back from a snapshot, checked field by field: it goes into IMAP commands on a
 * restore (a flag with a line break in it would be a command of its own), and a snapshot may have
 * been written by a write-only key on a host that is not trusted.
 */
export function checkStoredFolder(value: unknown, where: string): StoredFolder {
  const bad = (what: string): never => {
    throw new AmberError('OBJECT_CORRUPT', `${where} ${what}`, {
      hint: 'the snapshot was not written by Amber’s IMAP source as it is; restore from another snapshot and run amber verify',
    });
  };
  const f = value as Partial<StoredFolder> | null;
  if (!f || typeof f !== 'object' || f.version !== 1) bad('is not a folder record of version 1');
  const folder = f as StoredFolder;
  const text = (v: unknown) => typeof v === 'string' && !/[\0\r\n]/.test(v);
  if (!text(folder.name) || folder.name === '') bad('names no folder (or one with a line break in it)');
  if (folder.delimiter !== null && !(text(folder.delimiter) && folder.delimiter.length === 1))
    bad('has a bad delimiter');
  if (!Array.isArray(folder.attributes) || !folder.attributes.every((a) => typeof a === 'string' && FLAG.test(a)))
    bad('has folder attributes that are not IMAP atoms');
  if (!Array.isArray(folder.messages)) bad('has no message list');
  const uids = new Set<number>();
  for (const m of folder.messages) {
    if (!m || typeof m !== 'object' || !Number.isSafeInteger(m.uid) || m.uid < 1 || uids.has(m.uid))
      bad('lists a message without a unique UID');
    uids.add(m.uid);
    if (!Array.isArray(m.flags) || !m.flags.every((flag) => typeof flag === 'string' && FLAG.test(flag)))
      bad(`gives message ${m.uid} a flag that is not an IMAP flag`);
    if (typeof m.internalDate !== 'string' || Number.isNaN(Date.parse(m.internalDate)))
      bad(`gives message ${m.uid} no internal date`);
  }
  return folder;
}

const SPECIAL = new Set(['\\All', '\\Archive', '\\Drafts', '\\Flagged', '\\Junk', '\\Sent', '\\Trash', '\\Important']);
/** Bodies fetched in batches of at most this many bytes (or 200 messages): memory stays bounded. */
const BATCH_BYTES = 32 * 1024 * 1024;
/** A previous folder.json larger than this (about 250,000 messages) is not read: the folder is listed in full. */
const PREVIOUS_FOLDER_BYTES = 64 * 1024 * 1024;

const selectable = (folder: ListResponse) => !folder.flags.has('\\Noselect') && !folder.flags.has('\\NonExistent');

export interface ImapOptions {
  /** Folder patterns with IMAP's wildcards (`*` any characters, `%` any but the hierarchy delimiter); none: every folder. */
  folders?: string[];
  /** Messages larger than this are left out of the snapshot, each with a warning (the snapshot is marked partial). */
  maxMessageBytes?: number;
}

/** Whether a folder is one the patterns name (INBOX in any case, as IMAP has it). */
export function folderMatcher(
  patterns: readonly string[] | undefined,
): (name: string, delimiter: string | null) => boolean {
  if (!patterns?.length) return () => true;
  const literal = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const compiled = new Map<string, RegExp>();
  const regexFor = (delimiter: string | null) => {
    let regex = compiled.get(delimiter ?? '');
    if (!regex) {
      const within = delimiter ? `[^${literal(delimiter)}]*` : '.*';
      const alternatives = patterns.map((pattern) =>
        [...pattern].map((c) => (c === '*' ? '.*' : c === '%' ? within : literal(c))).join(''),
      );
      regex = new RegExp(`^(?:${alternatives.join('|')})$`, 'su');
      compiled.set(delimiter ?? '', regex);
    }
    return regex;
  };
  const inboxToo = patterns.some((pattern) => pattern.toUpperCase() === 'INBOX');
  return (name, delimiter) => regexFor(delimiter).test(name) || (inboxToo && name.toUpperCase() === 'INBOX');
}

/** "1:4,7,9:12" for a sorted list of UIDs. */
export function uidSet(uids: readonly number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < uids.length; ) {
    let j = i;
    while (j + 1 < uids.length && uids[j + 1] === uids[j] + 1) j++;
    parts.push(j > i ? `${uids[i]}:${uids[j]}` : String(uids[i]));
    i = j + 1;
  }
  return parts.join(',');
}

/** What one backup did with one folder, for the snapshot's `source` record. */
interface FolderSummary {
  name: string;
  uidValidity: string | null;
  uidNext: number | null;
  highestModseq: string | null;
  messages: number;
  /** Bodies read from the server (the rest were carried over from the previous snapshot). */
  fetched: number;
  /** Whether the folder was listed in full (no usable previous snapshot, or its UIDVALIDITY changed). */
  full: boolean;
}

/**
 * Every folder's messages and metadata, one folder at a time: each message's exact bytes as
 * FOLDER/UID.eml, then FOLDER/folder.json. Incremental: a folder whose UIDVALIDITY is the one the
 * previous snapshot recorded carries over the messages it still has (UID SEARCH, no FETCH) and
 * reads only new messages, and the flags of those changed since the recorded HIGHESTMODSEQ
 * (CONDSTORE; every message's flags without it). The previous folder.json is a hint checked
 * against the server: a UID the server has and it lacks is read, whatever its cursor claims.
 * `done` receives the record of what was read.
 */
export async function* dumpImap(
  target: ImapTarget,
  access: ImapAccess,
  run: SourceRun,
  options: ImapOptions,
  done: (record: Record<string, unknown>) => void,
): AsyncGenerator<SourceFile> {
  const client = await connectImap(target, access);
  const wanted = folderMatcher(options.folders);
  const summary: FolderSummary[] = [];
  const totals = { messages: 0, fetched: 0, carried: 0, omitted: 0, bytes: 0 };
  try {
    const folders = (await client.list()).filter((folder) => wanted(folder.path, folder.delimiter ?? null));
    if (options.folders?.length && folders.length === 0)
      throw new AmberError('USAGE', `no folder of ${target.display} matches ${options.folders.join(', ')}`, {
        hint: 'folder patterns use IMAP wildcards: * (any characters) and % (within one level), e.g. --folder INBOX --folder "Archive/*"',
      });
    for (const folder of folders) {
      const dir = fileOfFolder(folder.path);
      const stored: StoredFolder = {
        version: 1,
        name: folder.path,
        delimiter: folder.delimiter ?? null,
        attributes: [...folder.flags].sort(),
        specialUse: [...folder.flags].find((flag) => SPECIAL.has(flag)) ?? null,
        subscribed: folder.subscribed === true,
        uidValidity: null,
        uidNext: null,
        highestModseq: null,
        messages: [],
      };
      const line: FolderSummary = {
        name: folder.path,
        uidValidity: null,
        uidNext: null,
        highestModseq: null,
        messages: 0,
        fetched: 0,
        full: true,
      };
      if (selectable(folder)) {
        const lock = await openFolder(client, target, folder.path);
        if (!lock) {
          // Deleted between the listing and now: not in this snapshot (it is in earlier ones).
          run.skipped(
            `${dir}/`,
            new AmberError(
              'SOURCE_CHANGED',
              `the folder ${folder.path} of ${target.display} was deleted during the backup`,
            ),
          );
          continue;
        }
        try {
          const mailbox = client.mailbox as {
            uidValidity: bigint;
            uidNext: number;
            highestModseq?: bigint;
            exists: number;
          };
          stored.uidValidity = String(mailbox.uidValidity);
          stored.uidNext = mailbox.uidNext;
          stored.highestModseq = mailbox.highestModseq === undefined ? null : String(mailbox.highestModseq);
          const previous = await previousFolder(run, dir, folder.path);
          const same = previous !== undefined && previous.uidValidity === stored.uidValidity;
          line.full = !same;
          const { carried, fresh } =
            mailbox.exists === 0
              ? { carried: [], fresh: [] }
              : same
                ? await sinceSnapshot(client, run, dir, previous, stored.highestModseq)
                : { carried: [], fresh: await listMessages(client, '1:*') };
          const kept: StoredMessage[] = [];
          for (const message of fresh) {
            if (options.maxMessageBytes !== undefined && message.size > options.maxMessageBytes) {
              totals.omitted += 1;
              run.skipped(
                `${dir}/${message.uid}.eml`,
                new AmberError(
                  'SOURCE_TOO_LARGE',
                  `message ${message.uid} of ${folder.path} (${message.size} bytes, "${message.subject ?? ''}") is larger than the limit of ${options.maxMessageBytes} bytes and was left out`,
                ),
              );
            } else kept.push(message);
          }
          for (const message of carried) yield { name: `${dir}/${message.uid}.eml`, carried: true };
          totals.carried += carried.length;
          const gone = new Set<number>();
          for (const batch of batches(kept.sort((a, b) => a.uid - b.uid))) {
            const asked = new Set(batch.map((b) => b.uid));
            const seen = new Set<number>();
            for await (const m of client.fetch(uidSet([...asked]), { uid: true, source: true }, { uid: true })) {
              if (!m.source || seen.has(m.uid) || !asked.has(m.uid)) continue;
              seen.add(m.uid);
              line.fetched += 1;
              totals.bytes += m.source.length;
              yield { name: `${dir}/${m.uid}.eml`, stream: Readable.from([m.source]), finished: Promise.resolve() };
            }
            // Expunged between the listing and the fetch: not in this snapshot (it is in earlier ones).
            for (const b of batch) if (!seen.has(b.uid)) gone.add(b.uid);
          }
          stored.messages = [...carried, ...kept.filter((m) => !gone.has(m.uid))].sort((a, b) => a.uid - b.uid);
        } finally {
          lock.release();
        }
      }
      Object.assign(line, {
        uidValidity: stored.uidValidity,
        uidNext: stored.uidNext,
        highestModseq: stored.highestModseq,
        messages: stored.messages.length,
      });
      summary.push(line);
      totals.messages += stored.messages.length;
      totals.fetched += line.fetched;
      yield {
        name: `${dir}/folder.json`,
        stream: Readable.from([Buffer.from(`${JSON.stringify(stored, null, 1)}\n`)]),
        finished: Promise.resolve(),
        keep: true,
      };
    }
  } catch (error) {
    if (error instanceof AmberError) throw error;
    throw connectError(target, error);
  } finally {
    await client.logout().catch(() => client.close());
  }
  done({ kind: 'imap', url: target.display, folders: summary, ...totals });
}

/** The folder opened read-only; undefined when it no longer exists (deleted since the listing). */
async function openFolder(client: ImapFlow, target: ImapTarget, path: string) {
  try {
    return await client.getMailboxLock(path, { readOnly: true });
  } catch (error) {
    if (!client.usable) throw connectError(target, error);
    const still = await client.list().then(
      (folders) => folders.some((f) => f.path === path),
      () => true,
    );
    if (!still) return undefined;
    throw new AmberError(
      'SOURCE_FAILED',
      `the folder ${path} of ${target.display} could not be opened: ${(error as { responseText?: string }).responseText ?? (error as Error).message}`,
      { hint: 'check the account’s rights on the folder; nothing of this run was written as a snapshot' },
    );
  }
}

/** The previous snapshot's record of the folder, when there is one this key can read and it is sound. */
async function previousFolder(run: SourceRun, dir: string, name: string): Promise<StoredFolder | undefined> {
  const bytes = await run.read(`${dir}/folder.json`, PREVIOUS_FOLDER_BYTES);
  if (!bytes) return undefined;
  try {
    const folder = checkStoredFolder(JSON.parse(bytes.toString('utf8')), 'the previous folder.json');
    return folder.name === name ? folder : undefined;
  } catch {
    return undefined; // unsound: list the folder in full, as if there were no previous snapshot
  }
}

/** Metadata (UID, flags, internal date, size, envelope) of the messages in a UID range. */
async function listMessages(client: ImapFlow, range: string, byUid = false): Promise<StoredMessage[]> {
  const messages: StoredMessage[] = [];
  for await (const m of client.fetch(
    range,
    { uid: true, flags: true, internalDate: true, size: true, envelope: true },
    byUid ? { uid: true } : undefined,
  ))
    messages.push({
      uid: m.uid,
      flags: flagsOf(m.flags),
      internalDate: new Date(m.internalDate ?? 0).toISOString(),
      size: m.size ?? 0,
      messageId: m.envelope?.messageId ?? null,
      date: m.envelope?.date ? new Date(m.envelope.date).toISOString() : null,
      from: m.envelope?.from?.[0] ? addressOf(m.envelope.from[0]) : null,
      subject: m.envelope?.subject ?? null,
    });
  return messages.sort((a, b) => a.uid - b.uid);
}

const flagsOf = (flags: Set<string> | undefined) => [...(flags ?? [])].filter((f) => f !== '\\Recent').sort();

/**
 * A folder against its previous snapshot (same UIDVALIDITY): the messages still there and carried
 * over, with their flags brought up to date, and the metadata of the ones to read.
 */
async function sinceSnapshot(
  client: ImapFlow,
  run: SourceRun,
  dir: string,
  previous: StoredFolder,
  highestModseq: string | null,
): Promise<{ carried: StoredMessage[]; fresh: StoredMessage[] }> {
  const uids = ((await client.search({ all: true }, { uid: true })) || []).sort((a, b) => a - b);
  const before = new Map(previous.messages.map((m) => [m.uid, m]));
  const carried: StoredMessage[] = [];
  const fresh: number[] = [];
  for (const uid of uids) {
    const message = before.get(uid);
    if (message && (await run.canCarry(`${dir}/${uid}.eml`))) carried.push({ ...message });
    else fresh.push(uid);
  }
  if (carried.length > 0) {
    // CHANGEDSINCE only from a modseq the server has reached (a previous one ahead of it is not believed).
    const since =
      previous.highestModseq !== null &&
      highestModseq !== null &&
      BigInt(previous.highestModseq) <= BigInt(highestModseq)
        ? BigInt(previous.highestModseq)
        : undefined;
    if (since === undefined || since < BigInt(highestModseq!)) {
      const byUid = new Map(carried.map((m) => [m.uid, m]));
      for await (const m of client.fetch(
        uidSet(carried.map((c) => c.uid)),
        { uid: true, flags: true },
        { uid: true, ...(since === undefined ? {} : { changedSince: since }) },
      )) {
        const message = byUid.get(m.uid);
        if (message) message.flags = flagsOf(m.flags);
      }
    }
  }
  return { carried, fresh: fresh.length > 0 ? await listMessages(client, uidSet(fresh), true) : [] };
}

function addressOf(address: { name?: string; address?: string }): string {
  return address.name ? `${address.name} <${address.address ?? ''}>` : (address.address ?? '');
}

function* batches(messages: StoredMessage[]): Generator<StoredMessage[]> {
  let batch: StoredMessage[] = [];
  let size = 0;
  for (const message of messages) {
    if (batch.length > 0 && (size + message.size > BATCH_BYTES || batch.length >= 200)) {
      yield batch;
      batch = [];
      size = 0;
    }
    batch.push(message);
    size += message.size;
  }
  if (batch.length > 0) yield batch;
}
