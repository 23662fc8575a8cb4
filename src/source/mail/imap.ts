// IMAP mailboxes as a source: every folder's messages, each as its exact RFC 822 bytes (so the same
// message in two folders, or on two days, is stored once), with the folder's hierarchy, special use
// and UIDVALIDITY, and each message's flags, keywords and internal date, read with imapflow. The
// snapshot holds /imap/<folder>/folder.json (the folder and its messages' metadata) and
// /imap/<folder>/<uid>.eml. The way back into an account is restoreImap (imap-restore.ts).
import { Readable } from 'node:stream';
import { ImapFlow, type ListResponse } from 'imapflow';
import { AmberError } from '../../core/errors.ts';
import type { SourceFile } from '../source-url.ts';
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
  if (access.password === undefined)
    throw new AmberError('USAGE', `no password for ${target.display}`, {
      hint: 'set AMBER_SOURCE_PASSWORD or pass --source-password-file FILE',
    });
  const client = new ImapFlow({
    host: target.host,
    port: target.port,
    secure: target.secure,
    // Over imap://, the password goes only inside STARTTLS, but to this machine itself.
    doSTARTTLS: target.secure ? undefined : LOOPBACK.has(target.host) ? undefined : true,
    auth: { user: target.user, pass: access.password },
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
    throw connectError(target, error);
  }
  return client;
}

function connectError(target: ImapTarget, error: unknown): AmberError {
  const e = error as { authenticationFailed?: boolean; code?: string; message?: string; responseText?: string };
  if (e.authenticationFailed || /AUTHENTICATIONFAILED|authentication failed/i.test(`${e.responseText} ${e.message}`))
    return new AmberError(
      'SOURCE_AUTH_FAILED',
      `the IMAP server ${target.display} refused the login of ${target.user}`,
      {
        hint: 'check the user in the URL and the password (AMBER_SOURCE_PASSWORD or --source-password-file); a provider may need an app password',
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

const selectable = (folder: ListResponse) => !folder.flags.has('\\Noselect') && !folder.flags.has('\\NonExistent');

/**
 * Every folder's messages and metadata, one folder at a time: each message's exact bytes as
 * FOLDER/UID.eml, then FOLDER/folder.json. `done` receives the record of what was read.
 */
export async function* dumpImap(
  target: ImapTarget,
  access: ImapAccess,
  done: (record: Record<string, unknown>) => void,
): AsyncGenerator<SourceFile> {
  const client = await connectImap(target, access);
  const summary: { name: string; uidValidity: string | null; uidNext: number | null; messages: number }[] = [];
  let messages = 0;
  let bytes = 0;
  try {
    const folders = await client.list();
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
      if (selectable(folder)) {
        const lock = await client.getMailboxLock(folder.path, { readOnly: true }).catch((error: unknown) => {
          throw new AmberError(
            'SOURCE_FAILED',
            `the folder ${folder.path} of ${target.display} could not be opened: ${(error as { responseText?: string }).responseText ?? (error as Error).message}`,
            {
              hint: 'a folder that vanished during the backup: run it again; nothing of this run was written as a snapshot',
            },
          );
        });
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
          if (mailbox.exists > 0)
            for await (const m of client.fetch('1:*', {
              uid: true,
              flags: true,
              internalDate: true,
              size: true,
              envelope: true,
            }))
              stored.messages.push({
                uid: m.uid,
                flags: [...(m.flags ?? [])].filter((f) => f !== '\\Recent').sort(),
                internalDate: new Date(m.internalDate ?? 0).toISOString(),
                size: m.size ?? 0,
                messageId: m.envelope?.messageId ?? null,
                date: m.envelope?.date ? new Date(m.envelope.date).toISOString() : null,
                from: m.envelope?.from?.[0] ? addressOf(m.envelope.from[0]) : null,
                subject: m.envelope?.subject ?? null,
              });
          stored.messages.sort((a, b) => a.uid - b.uid);
          for (const batch of batches(stored.messages)) {
            const range = batch.map((m) => m.uid).join(',');
            const seen = new Set<number>();
            for await (const m of client.fetch(range, { uid: true, source: true }, { uid: true })) {
              if (!m.source) continue;
              seen.add(m.uid);
              messages += 1;
              bytes += m.source.length;
              yield { name: `${dir}/${m.uid}.eml`, stream: Readable.from([m.source]), finished: Promise.resolve() };
            }
            // Expunged between the listing and the fetch: not in this snapshot (it is in earlier ones).
            const gone = new Set(batch.filter((m) => !seen.has(m.uid)).map((m) => m.uid));
            if (gone.size > 0) stored.messages = stored.messages.filter((m) => !gone.has(m.uid));
          }
        } finally {
          lock.release();
        }
      }
      summary.push({
        name: folder.path,
        uidValidity: stored.uidValidity,
        uidNext: stored.uidNext,
        messages: stored.messages.length,
      });
      yield {
        name: `${dir}/folder.json`,
        stream: Readable.from([Buffer.from(`${JSON.stringify(stored, null, 1)}\n`)]),
        finished: Promise.resolve(),
      };
    }
  } catch (error) {
    if (error instanceof AmberError) throw error;
    throw connectError(target, error);
  } finally {
    await client.logout().catch(() => client.close());
  }
  done({ kind: 'imap', url: target.display, folders: summary, messages, bytes });
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
