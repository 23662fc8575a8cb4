// IMAP mailboxes as a source: every folder's messages, each as its exact RFC 822 bytes (so the same
// message in two folders, or on two days, is stored once), with the folder's hierarchy, special use
// and UIDVALIDITY, and each message's flags, keywords and internal date, read with imapflow. The
// snapshot holds /imap/<folder>/folder.json (the folder and its messages' metadata) and
// /imap/<folder>/<uid>.eml. The way back into an account is restoreImap (imap-restore.ts).
import { Readable } from 'node:stream';
import { type FetchMessageObject, ImapFlow, type ListResponse } from 'imapflow';
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

/**
 * An imapflow failure as an error a user can act on. `phase`: while connecting and logging in
 * (where a missing STARTTLS is the likely cause of anything else), or later in the session.
 */
export function connectError(
  target: ImapTarget,
  error: unknown,
  access: ImapAccess = {},
  phase: 'connect' | 'session' = 'connect',
): AmberError {
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
  if (
    e.code === 'NoConnection' ||
    /EPIPE|socket .*closed|connection .*closed|unexpected close/i.test(`${e.code} ${e.message}`)
  )
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
      hint:
        phase === 'session' || target.secure
          ? 'read the server’s message above; nothing of this run was written as a snapshot'
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
  /** When the message arrived; null when the server gave none that parses (a restore then lets it choose). */
  internalDate: string | null;
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

/** An IMAP flag or keyword: `\Name` or an atom (RFC 3501): ASCII, no space, parenthesis, brace, quote, %, *, ] or control character. */
export const isImapFlag = (flag: string) => FLAG.test(flag);
const FLAG = /^\\?[!#$&'+,\-./0-9:;<=>?@A-Z[^_`a-z|~]+$/;

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
    if (m.internalDate !== null && (typeof m.internalDate !== 'string' || Number.isNaN(Date.parse(m.internalDate))))
      bad(`gives message ${m.uid} an internal date that is not one`);
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
  /** The backup ends when the server makes no progress for this long (default 5 minutes). */
  stallMs?: number;
}

const DEFAULT_STALL_MS = 5 * 60_000;

/**
 * Ends the session when the server makes no progress — no command finishes, no message arrives —
 * for `ms`: a server that keeps talking without answering (imapflow's own timeout counts any byte
 * as life) cannot hold a backup for ever. Paused while Amber itself stores what it was given.
 */
export function stallGuard(client: () => ImapFlow, ms: number) {
  let timer: NodeJS.Timeout | undefined;
  let doing = 'starting';
  let stalled: string | undefined;
  return {
    /** Something finished: the clock starts again, for `next`. */
    kick(next: string = doing) {
      doing = next;
      clearTimeout(timer);
      timer = setTimeout(() => {
        stalled = doing;
        client().close();
      }, ms);
    },
    pause() {
      clearTimeout(timer);
    },
    /** What the server was doing when it stopped making progress, if it did. */
    stalled: () => stalled,
    ms,
  };
}
type Guard = ReturnType<typeof stallGuard>;

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

/** A folder name Amber can keep: one that becomes a file name and goes back into IMAP commands. */
const keepableName = (name: string) => name !== '' && !/[\0\r\n]/.test(name);

/**
 * Every folder's messages and metadata, one folder at a time: each message's exact bytes as
 * FOLDER/UID.eml, then FOLDER/folder.json. Incremental: a folder whose UIDVALIDITY is the one the
 * previous snapshot recorded (and whose UIDNEXT and HIGHESTMODSEQ did not go back) carries over
 * the messages it still has (UID SEARCH, no FETCH) and reads only new messages, and the flags of
 * those changed since the recorded HIGHESTMODSEQ (CONDSTORE; every message's flags without it).
 * The previous folder.json is a hint checked against the server: a UID the server has and it
 * lacks is read, whatever its cursor claims. What the server sends is checked too: a response for
 * a UID not asked for is ignored, a flag that is not an IMAP atom is left out with a warning.
 * `done` receives the record of what was read.
 */
export async function* dumpImap(
  target: ImapTarget,
  access: ImapAccess,
  run: SourceRun,
  options: ImapOptions,
  done: (record: Record<string, unknown>) => void,
): AsyncGenerator<SourceFile> {
  // The session can be replaced mid-backup (reconnect, in readFolder), so everyone reads it from here.
  const session: ImapSession = { client: await connectImap(target, access), target, access, reconnects: 0 };
  const wanted = folderMatcher(options.folders);
  const summary: FolderSummary[] = [];
  const totals = { messages: 0, fetched: 0, carried: 0, omitted: 0, bytes: 0 };
  const guard = stallGuard(() => session.client, options.stallMs ?? DEFAULT_STALL_MS);
  // Amber storing what it was given is not the server's delay: the guard rests meanwhile.
  async function* rested(file: SourceFile): AsyncGenerator<SourceFile> {
    guard.pause();
    yield file;
    guard.kick();
  }
  try {
    guard.kick('listing the folders');
    const listed = (await session.client.list()).filter((folder) => wanted(folder.path, folder.delimiter ?? null));
    if (options.folders?.length && listed.length === 0)
      throw new AmberError('USAGE', `no folder of ${target.display} matches ${options.folders.join(', ')}`, {
        hint: 'folder patterns use IMAP wildcards: * (any characters) and % (within one level), e.g. --folder INBOX --folder "Archive/*"',
      });
    // A server that lists a folder twice: once.
    const folders = [...new Map(listed.map((folder) => [folder.path, folder])).values()];
    for (const folder of folders) {
      if (!keepableName(folder.path)) {
        run.skipped(
          `${fileOfFolder(folder.path) || '%00'}/`,
          new AmberError(
            'SOURCE_UNREADABLE',
            `a folder of ${target.display} has a name Amber cannot keep (empty, or with a NUL or line break): ${JSON.stringify(folder.path)}`,
            { hint: 'rename the folder in a mail client, or leave it out with --folder' },
          ),
        );
        continue;
      }
      const dir = fileOfFolder(folder.path);
      const delimiter =
        folder.delimiter && keepableName(folder.delimiter) && folder.delimiter.length === 1 ? folder.delimiter : null;
      const stored: StoredFolder = {
        version: 1,
        name: folder.path,
        delimiter,
        attributes: [...folder.flags].filter(isImapFlag).sort(),
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
        guard.kick(`opening ${folder.path}`);
        session.lock = await openFolder(session.client, target, folder.path);
        if (!session.lock) {
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
          for await (const file of readFolder({
            session,
            guard,
            run,
            options,
            folder: stored,
            dir,
            line,
            totals,
          }))
            yield* rested(file);
        } finally {
          session.lock?.release();
          session.lock = undefined;
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
      yield* rested({
        name: `${dir}/folder.json`,
        stream: Readable.from([Buffer.from(`${JSON.stringify(stored, null, 1)}\n`)]),
        finished: Promise.resolve(),
        keep: true,
      });
    }
  } catch (error) {
    const stalled = guard.stalled();
    if (stalled)
      throw new AmberError(
        'SOURCE_UNREACHABLE',
        `the IMAP server ${target.display} made no progress for ${Math.round(guard.ms / 1000)} s while ${stalled}`,
        {
          hint: 'nothing of this run was written as a snapshot; for a server that is only slow, raise --source-timeout',
        },
      );
    if (error instanceof AmberError) throw error;
    throw connectError(target, error, access, 'session');
  } finally {
    guard.pause();
    await session.client.logout().catch(() => session.client.close());
  }
  done({ kind: 'imap', url: target.display, folders: summary, ...totals });
}

/** One selected folder: its cursor into `folder`, its messages' files, and `folder.messages`. */
async function* readFolder(read: {
  session: ImapSession;
  guard: Guard;
  run: SourceRun;
  options: ImapOptions;
  folder: StoredFolder;
  dir: string;
  line: FolderSummary;
  totals: { fetched: number; carried: number; omitted: number; bytes: number };
}): AsyncGenerator<SourceFile> {
  const { session, guard, run, options, folder, dir, line, totals } = read;
  const client = session.client;
  const mailbox = client.mailbox as { uidValidity: bigint; uidNext: number; highestModseq?: bigint; exists: number };
  folder.uidValidity = String(mailbox.uidValidity);
  folder.uidNext = mailbox.uidNext;
  folder.highestModseq = mailbox.highestModseq === undefined ? null : String(mailbox.highestModseq);
  const previous = await previousFolder(run, dir, folder.name);
  // The same UIDVALIDITY, and no cursor gone back (a mail store restored from a file copy hands
  // out UIDs again): only then are UIDs believed to name the messages they named before.
  const same =
    previous !== undefined &&
    previous.uidValidity === folder.uidValidity &&
    (previous.uidNext ?? 0) <= (folder.uidNext ?? 0) &&
    !(
      previous.highestModseq !== null &&
      folder.highestModseq !== null &&
      BigInt(previous.highestModseq) > BigInt(folder.highestModseq)
    );
  line.full = !same;
  const note = (uid: number, why: string) =>
    run.skipped(`${dir}/${uid}.eml`, new AmberError('SOURCE_UNREADABLE', `message ${uid} of ${folder.name}: ${why}`));
  const { carried, fresh } =
    mailbox.exists === 0
      ? { carried: [], fresh: [] }
      : same
        ? await sinceSnapshot(session, guard, run, dir, previous, folder, note)
        : { carried: [], fresh: await listMessages(session, guard, folder.name, await allUids(client), note) };
  const limit = options.maxMessageBytes;
  const tooLarge = (message: StoredMessage, size: number) => {
    totals.omitted += 1;
    run.skipped(
      `${dir}/${message.uid}.eml`,
      new AmberError(
        'SOURCE_TOO_LARGE',
        `message ${message.uid} of ${folder.name} (${size} bytes, "${message.subject ?? ''}") is larger than the limit of ${limit} bytes and was left out`,
      ),
    );
  };
  const kept: StoredMessage[] = [];
  for (const message of fresh) {
    if (limit !== undefined && message.size > limit) tooLarge(message, message.size);
    else kept.push(message);
  }
  for (const message of carried) yield { name: `${dir}/${message.uid}.eml`, carried: true };
  totals.carried += carried.length;
  const stored: StoredMessage[] = [...carried];
  const take = (message: StoredMessage, bytes: Buffer): SourceFile | undefined => {
    // The size the server claimed is not trusted: the bytes that came are.
    if (limit !== undefined && bytes.length > limit) {
      tooLarge(message, bytes.length);
      return undefined;
    }
    message.size = bytes.length;
    stored.push(message);
    line.fetched += 1;
    totals.bytes += bytes.length;
    return { name: `${dir}/${message.uid}.eml`, stream: Readable.from([bytes]), finished: Promise.resolve() };
  };
  for (const batch of batches(kept.sort((a, b) => a.uid - b.uid))) {
    const asked = new Map(batch.map((b) => [b.uid, b]));
    const seen = new Set<number>();
    guard.kick(`reading messages of ${folder.name}`);
    try {
      for await (const m of session.client.fetch(
        uidSet([...asked.keys()]),
        { uid: true, source: true },
        { uid: true },
      )) {
        guard.kick();
        const message = asked.get(m.uid);
        if (!m.source || !message || seen.has(m.uid)) continue;
        seen.add(m.uid);
        const file = take(message, m.source);
        if (file) yield file;
      }
    } catch (error) {
      if (session.client.usable || guard.stalled()) throw error;
      // The server ended the session while sending this batch. One message it cannot read does that
      // (Dovecot answers BYE): the rest of the batch is read one message at a time, each on a new
      // session if need be, and only a message that ends the session again is left out.
      for (const [uid, message] of asked) {
        if (seen.has(uid)) continue;
        seen.add(uid);
        if (!(await resume(session, folder.name, error))) return; // the folder is gone
        guard.kick(`reading message ${uid} of ${folder.name}`);
        const got = await session.client
          .fetchOne(String(uid), { uid: true, source: true }, { uid: true })
          .catch((e) => {
            if (session.client.usable) throw e;
            return 'dropped' as const;
          });
        if (got === 'dropped') {
          note(
            uid,
            'the server ended the session when asked for its bytes (a message it cannot read); it is not in this snapshot',
          );
          continue;
        }
        if (got !== false && got?.source) {
          const file = take(message, got.source);
          if (file) yield file;
        } else seen.delete(uid);
      }
    }
    const missing = [...asked.keys()].filter((uid) => !seen.has(uid));
    if (missing.length === 0) continue;
    // Expunged since the listing (not in this snapshot, it is in earlier ones), or not sent: asked again.
    const still = new Set(((await session.client.search({ uid: uidSet(missing) }, { uid: true })) || []) as number[]);
    for (const uid of missing)
      if (still.has(uid)) note(uid, 'the server listed it but did not send its bytes; it is not in this snapshot');
  }
  folder.messages = stored.sort((a, b) => a.uid - b.uid);
}

/** The one IMAP session of a backup, replaced when the server ends it over one message. */
interface ImapSession {
  client: ImapFlow;
  lock?: { release(): void };
  target: ImapTarget;
  access: ImapAccess;
  reconnects: number;
}

/** A session ended by the server may be made again this often in one backup; a server that keeps ending them is down. */
const MAX_RECONNECTS = 20;

/** A usable session with `folder` open again (a new one if the server ended the last); false if the folder is gone. */
async function resume(session: ImapSession, folder: string, cause: unknown): Promise<boolean> {
  if (session.client.usable) return true;
  if (++session.reconnects > MAX_RECONNECTS) throw cause;
  session.client.close();
  try {
    session.client = await connectImap(session.target, session.access);
  } catch (error) {
    throw new AmberError(
      'SOURCE_UNREACHABLE',
      `the IMAP server ${session.target.display} closed the connection during the backup and took no new one: ${(error as Error).message}`,
      {
        hint: 'nothing of this run was written as a snapshot (earlier ones are intact); run the backup again once the server is back',
      },
    );
  }
  session.lock = await openFolder(session.client, session.target, folder);
  return session.lock !== undefined;
}

/** The folder opened read-only; undefined when it no longer exists (deleted since the listing). */
async function openFolder(client: ImapFlow, target: ImapTarget, path: string) {
  try {
    return await client.getMailboxLock(path, { readOnly: true });
  } catch (error) {
    if (!client.usable) throw connectError(target, error, {}, 'session');
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

type Note = (uid: number, why: string) => void;

/**
 * Metadata (UID, flags, internal date, size, envelope) of these messages: one per UID, from the
 * first response that has one (another client's flag change may add untagged FETCH responses
 * without a UID or for a message already seen, which update its flags only). A session the server
 * ends on the way (a message it cannot read) is made again and the rest listed one by one.
 */
async function listMessages(
  session: ImapSession,
  guard: Guard,
  folder: string,
  uids: readonly number[],
  note: Note,
): Promise<StoredMessage[]> {
  const asked = new Set(uids);
  const messages = new Map<number, StoredMessage>();
  const take = (m: FetchMessageObject) => {
    guard.kick();
    if (!Number.isSafeInteger(m.uid) || !asked.has(m.uid)) return;
    const known = messages.get(m.uid);
    if (known) {
      if (m.flags) known.flags = flagsOf(m.flags, (why) => note(m.uid, why));
      return;
    }
    if (m.internalDate === undefined && m.size === undefined) return; // only a flag update
    messages.set(m.uid, storedMessageOf(m, note));
  };
  const query = { uid: true, flags: true, internalDate: true, size: true, envelope: true } as const;
  if (uids.length === 0) return [];
  try {
    for await (const m of session.client.fetch(uidSet(uids), query, { uid: true })) take(m);
  } catch (error) {
    if (session.client.usable || guard.stalled()) throw error;
    for (const uid of uids) {
      if (messages.has(uid)) continue;
      if (!(await resume(session, folder, error))) return [];
      const got = await session.client.fetchOne(String(uid), query, { uid: true }).catch((e) => {
        if (session.client.usable) throw e;
        return 'dropped' as const;
      });
      if (got === 'dropped')
        note(
          uid,
          'the server ended the session when asked for it (a message it cannot read); it is not in this snapshot',
        );
      else if (got) take(got);
    }
    await resume(session, folder, error);
  }
  return [...messages.values()].sort((a, b) => a.uid - b.uid);
}

function storedMessageOf(m: FetchMessageObject, note: Note): StoredMessage {
  const arrived = m.internalDate === undefined ? Number.NaN : new Date(m.internalDate).getTime();
  if (Number.isNaN(arrived))
    note(m.uid, 'the server gave no internal date that parses; a restore lets the server choose one');
  const sent = m.envelope?.date ? new Date(m.envelope.date).getTime() : Number.NaN;
  return {
    uid: m.uid,
    flags: flagsOf(m.flags, (why) => note(m.uid, why)),
    internalDate: Number.isNaN(arrived) ? null : new Date(arrived).toISOString(),
    size: m.size ?? 0,
    messageId: m.envelope?.messageId ?? null,
    date: Number.isNaN(sent) ? null : new Date(sent).toISOString(),
    from: m.envelope?.from?.[0] ? addressOf(m.envelope.from[0]) : null,
    subject: m.envelope?.subject ?? null,
  };
}

/** Every UID of the open folder, ascending (UID SEARCH ALL: one response, no FETCH). */
async function allUids(client: ImapFlow): Promise<number[]> {
  return [...new Set(((await client.search({ all: true }, { uid: true })) || []) as number[])]
    .filter((uid) => Number.isSafeInteger(uid) && uid > 0)
    .sort((a, b) => a - b);
}

/** A message's flags as kept: IMAP atoms only (\Recent is the server's own); any other is named. */
function flagsOf(flags: Set<string> | undefined, note: (why: string) => void): string[] {
  const kept: string[] = [];
  for (const flag of flags ?? []) {
    if (flag === '\\Recent') continue;
    if (isImapFlag(flag)) kept.push(flag);
    else note(`its flag ${JSON.stringify(flag)} is not an IMAP atom and was not kept`);
  }
  return kept.sort();
}

/**
 * A folder against its previous snapshot (same UIDVALIDITY): the messages still there and carried
 * over, with their flags brought up to date, and the metadata of the ones to read.
 */
async function sinceSnapshot(
  session: ImapSession,
  guard: Guard,
  run: SourceRun,
  dir: string,
  previous: StoredFolder,
  now: StoredFolder,
  note: Note,
): Promise<{ carried: StoredMessage[]; fresh: StoredMessage[] }> {
  const client = session.client;
  const highestModseq = now.highestModseq;
  const uids = await allUids(client);
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
        guard.kick();
        const message = byUid.get(m.uid);
        if (message && m.flags) message.flags = flagsOf(m.flags, (why) => note(m.uid, why));
      }
    }
  }
  // A mail store restored from a file copy hands its newest UIDs out again under the same
  // UIDVALIDITY (and may end with the same UIDNEXT and HIGHESTMODSEQ). Reused UIDs are always the
  // highest ones present, so one FETCH of the highest carried message tells: not the one it was,
  // and the folder is read in full (its bytes still dedup).
  const newest = carried.at(-1);
  if (newest) {
    const probe = await client.fetchOne(String(newest.uid), { uid: true, size: true, envelope: true }, { uid: true });
    if (!probe || probe.size !== newest.size || (probe.envelope?.messageId ?? null) !== newest.messageId)
      return { carried: [], fresh: await listMessages(session, guard, now.name, uids, note) };
  }
  return { carried, fresh: await listMessages(session, guard, now.name, fresh, note) };
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
