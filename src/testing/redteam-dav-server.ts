// A hostile (or merely odd) CalDAV server for red-team tests: a plain node:http server on
// 127.0.0.1 only, answering each request with what the test's handler says, and recording every
// request (method, path, headers, body). `calendarServer` builds the ordinary answers of a small
// account (/u/ the home, /u/<cal>/ calendars, items with ETags) so that a test overrides only the
// answer it attacks. Every socket is destroyed by close(), so a hanging answer never keeps a test up.
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export interface SeenRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

export type Answer =
  | { status: number; headers?: Record<string, string>; body?: string | Buffer }
  /** Never answer (the socket stays open until close()). */
  | 'hang'
  /** Send the status line and headers with a promised length, part of the body, then drop the connection. */
  | 'cut-body';

export interface FakeDav {
  port: number;
  requests: SeenRequest[];
  close(): Promise<void>;
}

export async function startFakeDav(handler: (request: SeenRequest) => Answer | Promise<Answer>): Promise<FakeDav> {
  const requests: SeenRequest[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((incoming, outgoing: ServerResponse) => {
    const chunks: Buffer[] = [];
    incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
    incoming.on('end', async () => {
      const request: SeenRequest = {
        method: incoming.method ?? '?',
        path: incoming.url ?? '/',
        headers: incoming.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      requests.push(request);
      let answer: Answer;
      try {
        answer = await handler(request);
      } catch (error) {
        answer = { status: 500, body: String(error) };
      }
      if (answer === 'hang') return;
      if (answer === 'cut-body') {
        outgoing.writeHead(200, { 'content-type': 'text/calendar', 'content-length': '100000' });
        outgoing.write('BEGIN:VCALENDAR\r\n');
        setTimeout(() => incoming.socket.destroy(), 50);
        return;
      }
      outgoing.writeHead(answer.status, answer.headers ?? {});
      outgoing.end(answer.body ?? '');
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : 0,
    requests,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export const xmlEscape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** One <response>: an href (written as given, not escaped), properties found, and an optional status of its own. */
export function responseXml(href: string, props: string, status?: number): string {
  const own = status ? `<D:status>HTTP/1.1 ${status} X</D:status>` : '';
  const propstat = props
    ? `<D:propstat><D:prop>${props}</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>`
    : '';
  return `<D:response><D:href>${href}</D:href>${propstat}${own}</D:response>`;
}

export function multistatus(responses: string[], syncToken?: string): Answer {
  return {
    status: 207,
    headers: { 'content-type': 'application/xml; charset=utf-8' },
    body: `<?xml version="1.0" encoding="utf-8"?><D:multistatus xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">${responses.join('')}${syncToken === undefined ? '' : `<D:sync-token>${xmlEscape(syncToken)}</D:sync-token>`}</D:multistatus>`,
  };
}

export const event = (uid: string, summary: string) =>
  `BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//redteam//EN\r\nBEGIN:VEVENT\r\nUID:${uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20260101T090000Z\r\nSUMMARY:${summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n`;

export interface FakeItem {
  body: string;
  etag: string;
}

/**
 * The ordinary answers of an account /u/ with calendars (name → items by name): PROPFIND of the
 * home (depth 0 and 1), PROPFIND of a calendar (depth 1, every item's ETag), GET of an item, and
 * no sync-collection (REPORT answers 501) unless `report` is given. `override` sees each request
 * first and may answer it instead.
 */
export function calendarServer(
  calendars: Map<string, Map<string, FakeItem>>,
  options: {
    override?: (request: SeenRequest) => Answer | undefined | Promise<Answer | undefined>;
    report?: (request: SeenRequest, calendar: string) => Answer;
  } = {},
): (request: SeenRequest) => Promise<Answer> {
  const calendarProps = (name: string) =>
    `<D:resourcetype><D:collection/><C:calendar/></D:resourcetype><D:displayname>${xmlEscape(name)}</D:displayname>`;
  return async (request) => {
    const override = await options.override?.(request);
    if (override) return override;
    const parts = request.path
      .split('?')[0]
      .split('/')
      .filter(Boolean)
      .map((part) => decodeURIComponent(part));
    if (parts[0] !== 'u') return { status: 404 };
    if (request.method === 'PROPFIND' && parts.length === 1) {
      const self = responseXml('/u/', '<D:resourcetype><D:collection/></D:resourcetype>');
      if (request.headers.depth === '0') return multistatus([self]);
      return multistatus([
        self,
        ...[...calendars.keys()].map((name) => responseXml(`/u/${encodeURIComponent(name)}/`, calendarProps(name))),
      ]);
    }
    const calendar = calendars.get(parts[1]);
    if (!calendar) return { status: 404 };
    const href = `/u/${encodeURIComponent(parts[1])}/`;
    if (parts.length === 2) {
      if (request.method === 'PROPFIND') {
        const self = responseXml(href, calendarProps(parts[1]));
        if (request.headers.depth === '0') return multistatus([self]);
        return multistatus([
          self,
          ...[...calendar].map(([name, item]) =>
            responseXml(
              `${href}${encodeURIComponent(name)}`,
              `<D:getetag>${xmlEscape(item.etag)}</D:getetag><D:resourcetype/>`,
            ),
          ),
        ]);
      }
      if (request.method === 'REPORT') return options.report ? options.report(request, parts[1]) : { status: 501 };
    }
    if (parts.length === 3 && request.method === 'GET') {
      const item = calendar.get(parts[2]);
      if (!item) return { status: 404 };
      return {
        status: 200,
        headers: { etag: item.etag, 'content-type': 'text/calendar; charset=utf-8' },
        body: item.body,
      };
    }
    return { status: 405 };
  };
}

/**
 * One calendar with a change log numbered from 1, as Sabre/dav's PDO backend keeps it: each PUT or
 * DELETE is one change, the token is http://sabre.io/ns/sync/N (N the next change number), and a
 * sync-collection REPORT from token T names every item changed by changes T … N-1 (404 for those
 * since deleted). `recreate()` is the calendar deleted and made again under the same URL: a new
 * log that starts again from 1, so an old token's number names changes of the new calendar.
 */
export class CountingCalendar {
  items = new Map<string, FakeItem>();
  private log: string[] = [];
  private writes = 0;
  put(name: string, body: string): void {
    this.writes += 1;
    this.items.set(name, { body, etag: `"w${this.writes}"` });
    this.log.push(name);
  }
  remove(name: string): void {
    this.items.delete(name);
    this.log.push(name);
  }
  recreate(): void {
    this.items = new Map();
    this.log = [];
  }
  get token(): string {
    return `http://sabre.io/ns/sync/${this.log.length + 1}`;
  }
  /** The sync-collection answer for the collection at `href` (its items under it), from the request's token. */
  report(request: SeenRequest, href: string): Answer {
    const sent = /<D:sync-token>([^<]*)<\/D:sync-token>/.exec(request.body)?.[1] ?? '';
    const from = sent === '' ? 1 : Number(/\/sync\/(\d+)$/.exec(sent)?.[1]);
    if (!Number.isInteger(from) || from < 1) return { status: 403 };
    const names = sent === '' ? [...this.items.keys()] : [...new Set(this.log.slice(from - 1))];
    return multistatus(
      names.map((name) => {
        const item = this.items.get(name);
        return item
          ? responseXml(`${href}${encodeURIComponent(name)}`, `<D:getetag>${xmlEscape(item.etag)}</D:getetag>`)
          : responseXml(`${href}${encodeURIComponent(name)}`, '', 404);
      }),
      this.token,
    );
  }
}
