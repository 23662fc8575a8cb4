// WebDAV as CalDAV (RFC 4791) and CardDAV (RFC 6352) use it: the account's URL, requests with
// Basic or Bearer authentication over Node's fetch, and multistatus answers parsed with
// fast-xml-parser. Errors name the server and say what to do; a password never appears in them.
import { XMLParser } from 'fast-xml-parser';
import { AmberError } from '../../core/errors.ts';
import { decodeUrlPart, hostOf, withoutPassword } from '../database/tool.ts';

export type DavKind = 'caldav' | 'carddav';

export interface DavTarget {
  kind: DavKind;
  /** The account's URL as fetch takes it (https://, or http:// for caldav+http://). */
  base: URL;
  user: string;
  /** The URL as snapshots record it (no password). */
  display: string;
}

export interface DavAccess {
  password?: string;
  /** An OAuth2 access token, sent as a Bearer token instead of a password. */
  token?: string;
}

/** caldav://USER@HOST[:PORT]/PATH/ (HTTPS), caldav+http://… (plain HTTP), and the same for carddav. */
export function parseDavUrl(text: string): DavTarget {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new AmberError('USAGE', `"${withoutPassword(text)}" is not a CalDAV or CardDAV URL`, {
      hint: 'write caldav://USER@HOST/PATH/ or carddav://USER@HOST/PATH/ (HTTPS), or caldav+http://… for plain HTTP',
    });
  }
  const scheme = url.protocol.replace(/:$/, '');
  const match = /^(caldav|carddav)(\+http)?$/.exec(scheme);
  if (!match) throw new AmberError('USAGE', `"${withoutPassword(text)}" is not a CalDAV or CardDAV URL`);
  if (url.password)
    throw new AmberError('USAGE', `the ${match[1]} URL has a password in it, which any user can read in \`ps\``, {
      hint: 'leave it out of the URL; set AMBER_SOURCE_PASSWORD or pass --source-password-file',
    });
  if (url.search || url.hash)
    throw new AmberError('USAGE', `the ${match[1]} URL ${withoutPassword(text)} has a query or fragment`, {
      hint: `write ${scheme}://USER@HOST/PATH/ : the account's (or one collection's) path`,
    });
  const user = url.username ? decodeUrlPart(url.username, 'user name', text) : '';
  if (!user)
    throw new AmberError('USAGE', `the ${match[1]} URL ${withoutPassword(text)} names no user`, {
      hint: `write ${scheme}://USER@${url.host}${url.pathname} (a user name with @ in it as %40)`,
    });
  const host = hostOf(url.hostname, text);
  if (!host) throw new AmberError('USAGE', `the ${match[1]} URL "${withoutPassword(text)}" names no host`);
  const path = url.pathname.endsWith('/') ? url.pathname : `${url.pathname}/`;
  const base = new URL(`${match[2] ? 'http' : 'https'}://${url.host}${path}`);
  return {
    kind: match[1] as DavKind,
    base,
    user,
    display: `${scheme}://${encodeURIComponent(user)}@${url.host}${path}`,
  };
}

export interface DavResponse {
  status: number;
  headers: Headers;
  body: Buffer;
}

/** Whether requests are part of a backup or of a restore: what an error's hint says is left behind. */
export type DavPurpose = 'backup' | 'restore';

export interface DavClient {
  target: DavTarget;
  /**
   * One request; a status outside `ok` is an AmberError naming the server and what to do, and so
   * is an answer body larger than `maxBytes` (MAX_BODY_BYTES unless given).
   */
  request(
    method: string,
    url: URL,
    options?: { headers?: Record<string, string>; body?: string | Buffer; ok?: number[]; maxBytes?: number },
  ): Promise<DavResponse>;
  /** The error for an answer the caller accepted but cannot use after all (a 409 it looked into). */
  refused(method: string, url: URL, answer: DavResponse): AmberError;
}

/** The most of one answer Amber holds in memory: a multistatus listing, or one item. */
export const MAX_BODY_BYTES = 64 * 1024 * 1024;
/** Of an error answer only the start is read: its first words go into the message. */
const ERROR_BODY_BYTES = 64 * 1024;
/** An answer (its body included) that takes longer than this is given up on. */
const TIMEOUT_MS = 5 * 60_000;

export function davClient(target: DavTarget, access: DavAccess, purpose: DavPurpose = 'backup'): DavClient {
  if (access.password === undefined && access.token === undefined)
    throw new AmberError('USAGE', `no password for ${target.display}`, {
      hint: 'set AMBER_SOURCE_PASSWORD or pass --source-password-file FILE (or --source-token-file FILE for OAuth2)',
    });
  const { password, token } = access;
  const basic = password === undefined ? undefined : Buffer.from(`${target.user}:${password}`).toString('base64');
  const authorization = token !== undefined ? `Bearer ${token}` : `Basic ${basic}`;
  // What an error page that echoes the request must not carry into Amber's messages, in any spelling.
  const secrets = [token, password, basic]
    .flatMap((secret) => (secret ? [secret, encodeURIComponent(secret), xmlText(secret)] : []))
    .sort((a, b) => b.length - a.length);
  const server = `the ${target.kind === 'caldav' ? 'CalDAV' : 'CardDAV'} server ${target.display}`;
  const leftBehind =
    purpose === 'backup'
      ? 'nothing of this run was written as a snapshot'
      : 'what this restore put before stays in the account, and a repeated restore skips it';
  const refused = (method: string, url: URL, answer: DavResponse & { statusText?: string }): AmberError => {
    if (answer.status === 401)
      return new AmberError('SOURCE_AUTH_FAILED', `the server ${target.display} refused the login of ${target.user}`, {
        hint:
          token !== undefined
            ? 'check the user in the URL and that the token (--source-token-file) is current'
            : 'check the user in the URL and the password (AMBER_SOURCE_PASSWORD or --source-password-file); a provider may need an app password',
      });
    return new AmberError(
      'SOURCE_FAILED',
      `the server ${target.display} answered ${method} ${url.pathname} with ${answer.status}${answer.statusText ? ` ${answer.statusText}` : ''}${reason(answer.body, secrets)}`,
      {
        hint:
          answer.status === 403
            ? `the account may not do this there: check its rights on the collection; ${leftBehind}`
            : `read the server’s answer above; ${leftBehind}`,
      },
    );
  };
  return {
    target,
    refused,
    async request(method, url, options = {}) {
      const ok = options.ok ?? [200, 207];
      const maxBytes = options.maxBytes ?? MAX_BODY_BYTES;
      const unreachable = (error: unknown, during: string) =>
        new AmberError('SOURCE_UNREACHABLE', `${server} could not be reached${during}: ${whyUnreachable(error)}`, {
          hint: `check that it answers there (curl -I ${target.base.origin}/); ${leftBehind}`,
        });
      let response: Response;
      try {
        response = await fetch(url, {
          method,
          headers: { authorization, 'user-agent': 'amber', ...options.headers },
          body: options.body,
          signal: AbortSignal.timeout(TIMEOUT_MS),
        });
      } catch (error) {
        throw unreachable(error, '');
      }
      let answer: { body: Buffer; more: boolean };
      try {
        // A connection dropped (or the timeout reached) half-way through the body is the server's too.
        answer = await readBody(response, ok.includes(response.status) ? maxBytes : ERROR_BODY_BYTES);
      } catch (error) {
        throw unreachable(error, ` (it stopped half-way through its answer to ${method} ${url.pathname})`);
      }
      const { body, more } = answer;
      const got = { status: response.status, statusText: response.statusText, headers: response.headers, body };
      if (!ok.includes(response.status)) throw refused(method, url, got);
      if (more)
        throw new AmberError(
          'SOURCE_FAILED',
          `the server ${target.display} answered ${method} ${url.pathname} with more than ${maxBytes} bytes, more than Amber holds in memory for one answer`,
          { hint: `check what the server has at ${url.pathname}; ${leftBehind}`, details: { tooLarge: true } },
        );
      return { status: got.status, headers: got.headers, body };
    },
  };
}

/** Why fetch (or reading its body) failed, in the words of the network layer. */
function whyUnreachable(error: unknown): string {
  if ((error as Error).name === 'TimeoutError') return `no answer within ${TIMEOUT_MS / 60_000} minutes`;
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  const words = [cause?.code, cause?.message].filter(Boolean).join(', ');
  return words || (error as Error).message;
}

/** The body, at most `max` bytes of it: `more` when the server had more (the rest is not read). */
async function readBody(response: Response, max: number): Promise<{ body: Buffer; more: boolean }> {
  if (!response.body) return { body: Buffer.alloc(0), more: false };
  const declared = Number(response.headers.get('content-length') ?? '0');
  if (declared > max) {
    await response.body.cancel().catch(() => {});
    return { body: Buffer.alloc(0), more: true };
  }
  const chunks: Buffer[] = [];
  let size = 0;
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return { body: Buffer.concat(chunks), more: false };
    chunks.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
    size += value.byteLength;
    if (size > max) {
      await reader.cancel().catch(() => {});
      return { body: Buffer.concat(chunks).subarray(0, max), more: true };
    }
  }
}

/**
 * The first words of an error body, for the message (a server's own explanation). A debug page
 * may echo the request's headers: no line that mentions the Authorization header, no credential
 * in any form Amber sent, and nothing that looks like one.
 */
function reason(body: Buffer, secrets: string[]): string {
  const hide = (text: string) => secrets.reduce((out, secret) => out.split(secret).join('***'), text);
  const text = hide(
    hide(body.toString('utf8'))
      .split(/\r\n|\r|\n/)
      .filter((line) => !/authori[sz]ation/i.test(line))
      .join(' ')
      .replace(/<[^>]*>/g, ' ')
      .replace(/\b(Basic|Bearer)\s+(?=[\w+/=.~-]*[\d+/=])[\w+/=.~-]{8,}/gi, '$1 ***'),
  )
    .replace(/\s+/g, ' ')
    .trim();
  return text ? `: ${text.slice(0, 200)}` : '';
}

/** A code point XML 1.0 allows in a document; a reference to any other is left as it is written. */
const xmlChar = (code: number) =>
  code === 0x9 ||
  code === 0xa ||
  code === 0xd ||
  (code >= 0x20 && code <= 0xd7ff) ||
  (code >= 0xe000 && code <= 0xfffd) ||
  (code >= 0x10000 && code <= 0x10ffff);
const PREDEFINED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

/** XML text with its character references (&#39; &#x27;) and the five predefined entities decoded, in one pass. */
export const decodeXmlText = (text: string): string =>
  text.replace(/&(?:#x([0-9a-fA-F]{1,6})|#([0-9]{1,7})|(amp|lt|gt|quot|apos));/g, (whole, hex, decimal, name) => {
    if (name) return PREDEFINED[name];
    const code = hex ? Number.parseInt(hex, 16) : Number(decimal);
    return xmlChar(code) ? String.fromCodePoint(code) : whole;
  });

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  removeNSPrefix: true,
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  isArray: (name) => ['response', 'propstat', 'href', 'comp'].includes(name),
  // On, for the parser's limits on a DOCTYPE (an oversized or external entity is refused) ...
  processEntities: true,
  // ... but only character references and the predefined entities are decoded: an entity a DOCTYPE
  // declares is never expanded (a multistatus needs none, and expanding them is how XML bombs work).
  entityDecoder: {
    decode: decodeXmlText,
    addInputEntities: () => {},
    setExternalEntities: () => {},
    reset: () => {},
    setXmlVersion: () => {},
  },
});

export type Props = Record<string, unknown>;

/** One member of a multistatus answer: its href, the properties found (200) and its own status. */
export interface DavMember {
  href: string;
  props: Props;
  /** The response's own status when it has one (404: a member removed, in a sync-collection answer). */
  status: number | undefined;
}

const statusOf = (text: unknown) => {
  const match = /HTTP\/[\d.]+\s+(\d{3})/.exec(String(text ?? ''));
  return match ? Number(match[1]) : undefined;
};

/** A 207 Multi-Status body: its members and (sync-collection) its new sync-token. */
export function parseMultistatus(body: Buffer, where: string): { members: DavMember[]; syncToken?: string } {
  let doc: Record<string, unknown>;
  try {
    doc = parser.parse(body.toString('utf8')) as Record<string, unknown>;
  } catch (error) {
    throw new AmberError(
      'SOURCE_FAILED',
      `${where} answered with XML that does not parse: ${(error as Error).message}`,
    );
  }
  const multistatus = doc.multistatus as { response?: unknown[]; 'sync-token'?: unknown } | undefined;
  if (!multistatus || typeof multistatus !== 'object')
    throw new AmberError('SOURCE_FAILED', `${where} did not answer with a WebDAV multistatus`);
  const members: DavMember[] = [];
  for (const raw of multistatus.response ?? []) {
    const response = raw as { href?: unknown[]; propstat?: unknown[]; status?: unknown };
    const href = response.href?.[0];
    if (typeof href !== 'string') continue;
    const props: Props = {};
    for (const stat of response.propstat ?? []) {
      const { prop, status } = stat as { prop?: Props; status?: unknown };
      if (statusOf(status) === 200 && prop && typeof prop === 'object') Object.assign(props, prop);
    }
    members.push({ href, props, status: statusOf(response.status) });
  }
  const token = multistatus['sync-token'];
  return { members, ...(typeof token === 'string' && token ? { syncToken: token } : {}) };
}

/** A property's text (a plain element, or the text of an element with attributes). */
export function textOf(value: unknown): string | null {
  if (typeof value === 'string') return value === '' ? null : value;
  if (value && typeof value === 'object' && '#text' in value) return String((value as { '#text': unknown })['#text']);
  return null;
}

/** The first href inside a property such as current-user-principal or calendar-home-set. */
export function hrefIn(value: unknown): string | undefined {
  const href = (value as { href?: unknown[] } | undefined)?.href?.[0];
  return typeof href === 'string' ? href : undefined;
}

/** XML text content escaped for a request body. */
export const xmlText = (text: string) =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
