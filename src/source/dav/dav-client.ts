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

export interface DavClient {
  target: DavTarget;
  /** One request; a status outside `ok` is an AmberError naming the server and what to do. */
  request(
    method: string,
    url: URL,
    options?: { headers?: Record<string, string>; body?: string | Buffer; ok?: number[] },
  ): Promise<DavResponse>;
}

export function davClient(target: DavTarget, access: DavAccess): DavClient {
  if (access.password === undefined && access.token === undefined)
    throw new AmberError('USAGE', `no password for ${target.display}`, {
      hint: 'set AMBER_SOURCE_PASSWORD or pass --source-password-file FILE (or --source-token-file FILE for OAuth2)',
    });
  const authorization =
    access.token !== undefined
      ? `Bearer ${access.token}`
      : `Basic ${Buffer.from(`${target.user}:${access.password}`).toString('base64')}`;
  return {
    target,
    async request(method, url, options = {}) {
      let response: Response;
      try {
        response = await fetch(url, {
          method,
          headers: { authorization, 'user-agent': 'amber', ...options.headers },
          body: options.body,
          signal: AbortSignal.timeout(5 * 60_000),
        });
      } catch (error) {
        const cause = (error as { cause?: { code?: string; message?: string } }).cause;
        throw new AmberError(
          'SOURCE_UNREACHABLE',
          `the ${target.kind === 'caldav' ? 'CalDAV' : 'CardDAV'} server ${target.display} could not be reached: ${cause?.code ?? cause?.message ?? (error as Error).message}`,
          {
            hint: `check that it answers there (curl -I ${target.base.origin}/); nothing of this run was written as a snapshot`,
          },
        );
      }
      const body = Buffer.from(await response.arrayBuffer());
      const ok = options.ok ?? [200, 207];
      if (ok.includes(response.status)) return { status: response.status, headers: response.headers, body };
      if (response.status === 401)
        throw new AmberError('SOURCE_AUTH_FAILED', `the server ${target.display} refused the login of ${target.user}`, {
          hint:
            access.token !== undefined
              ? 'check the user in the URL and that the token (--source-token-file) is current'
              : 'check the user in the URL and the password (AMBER_SOURCE_PASSWORD or --source-password-file); a provider may need an app password',
        });
      throw new AmberError(
        'SOURCE_FAILED',
        `the server ${target.display} answered ${method} ${url.pathname} with ${response.status} ${response.statusText}${reason(body)}`,
        {
          hint:
            response.status === 403
              ? 'the account may not do this there: check its rights on the collection'
              : 'read the server’s answer above; nothing of this run was written as a snapshot',
        },
      );
    },
  };
}

/** The first words of an error body, for the message (a server's own explanation). */
function reason(body: Buffer): string {
  const text = body
    .toString('utf8')
    .replace(/<[^>]*>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  return text ? `: ${text.slice(0, 200)}` : '';
}

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  removeNSPrefix: true,
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  isArray: (name) => ['response', 'propstat', 'href', 'comp'].includes(name),
  processEntities: true,
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
