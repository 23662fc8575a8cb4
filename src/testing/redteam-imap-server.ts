// Red team: a small, scriptable IMAP4rev1 server in Node on 127.0.0.1, for tests that need a server
// that lies. It keeps folders and messages in memory and answers what imapflow (and so Amber) sends:
// CAPABILITY, LOGIN, ENABLE, LIST, LSUB, STATUS, EXAMINE/SELECT, FETCH/UID FETCH (UID FLAGS
// INTERNALDATE RFC822.SIZE ENVELOPE BODY.PEEK[] MODSEQ, CHANGEDSINCE), UID SEARCH, CREATE, SUBSCRIBE,
// APPEND, NOOP, CLOSE, UNSELECT, LOGOUT. Every response can be replaced through hooks, and the raw
// wire form of a folder name, a flag list or an internal date is given by the test itself.
import { createServer, type Server, type Socket } from 'node:net';

export interface FakeMessage {
  uid: number;
  /** The inside of the FLAGS list as it goes on the wire, e.g. `\Seen $Label`. */
  flags: string;
  /** INTERNALDATE as it goes on the wire, with its quotes, e.g. `"01-Jan-2021 00:00:00 +0000"`. */
  internalDate?: string;
  body: Buffer;
  /** RFC822.SIZE to claim (default: the body's length). */
  size?: number;
  modseq?: number;
}

export interface FakeFolder {
  /** The folder's name as it goes on the wire in LIST: `"INBOX"`, `{3}\r\na\nb`, … */
  wire: string;
  /** The name imapflow will decode it to and send back in EXAMINE (to find it again). */
  path: string;
  delimiter?: string;
  attributes?: string;
  subscribed?: boolean;
  uidValidity: number;
  uidNext?: number;
  highestModseq?: number;
  messages: FakeMessage[];
}

export interface FakeSession {
  send(text: string | Buffer): void;
  selected: FakeFolder | undefined;
  socket: Socket;
}

export interface Appended {
  folder: string;
  flags: string;
  date: string | undefined;
  body: Buffer;
}

export interface FakeImapOptions {
  user: string;
  password: string;
  condstore?: boolean;
  folders: FakeFolder[];
  /**
   * Runs before the server's own answer to each command; true when it answered the command itself
   * (it must then send the tagged response too).
   */
  onCommand?: (
    command: { tag: string; name: string; args: Token[]; line: string },
    session: FakeSession,
  ) => boolean | Promise<boolean>;
  /** The response line of one message to a FETCH (default: built from its fields); undefined: the default. */
  fetchLine?: (message: FakeMessage, seq: number, items: string[], folder: FakeFolder) => Buffer | undefined;
  /** Extra untagged lines to send after the FETCH responses of a command, before its tagged OK. */
  afterFetch?: (folder: FakeFolder, items: string[], uid: boolean) => Buffer | undefined;
  /** An APPEND answered (default: stored and OK). Return a tagged line (e.g. `NO quota`) to refuse. */
  onAppend?: (appended: Appended, count: number) => string | undefined;
}

export type Token = string | Buffer | Token[];

export interface FakeImap {
  port: number;
  url(user?: string): string;
  commands: string[];
  appended: Appended[];
  folders: FakeFolder[];
  close(): Promise<void>;
}

/** The tokens of one command's arguments: atoms and quoted strings as strings, literals as Buffers, lists as arrays. */
function tokenize(parts: (string | Buffer)[]): Token[] {
  const root: Token[] = [];
  const stack: Token[][] = [root];
  for (const part of parts) {
    if (Buffer.isBuffer(part)) {
      stack.at(-1)!.push(part);
      continue;
    }
    let i = 0;
    while (i < part.length) {
      const c = part[i];
      if (c === ' ') i++;
      else if (c === '(') {
        const list: Token[] = [];
        stack.at(-1)!.push(list);
        stack.push(list);
        i++;
      } else if (c === ')') {
        if (stack.length > 1) stack.pop();
        i++;
      } else if (c === '"') {
        let out = '';
        i++;
        while (i < part.length && part[i] !== '"') {
          if (part[i] === '\\') i++;
          out += part[i];
          i++;
        }
        i++;
        stack.at(-1)!.push(out);
      } else {
        let out = '';
        let depth = 0;
        // Brackets group only in a section (BODY.PEEK[…]); elsewhere (a folder name) they are characters.
        const section = /^(BODY|BINARY)/i.test(part.slice(i));
        while (i < part.length) {
          const d = part[i];
          if (section && d === '[') depth++;
          if (section && d === ']') depth--;
          if (depth <= 0 && (d === ' ' || d === ')' || (d === '(' && depth === 0))) break;
          out += d;
          i++;
        }
        // A literal's marker {N} is followed by the literal itself (the next part).
        if (!/^\{\d+\+?\}$/.test(out)) stack.at(-1)!.push(out);
      }
    }
  }
  return root;
}

const text = (t: Token | undefined): string =>
  Buffer.isBuffer(t) ? t.toString('utf8') : typeof t === 'string' ? t : '';

function seqSet(set: string, max: number): number[] {
  const out = new Set<number>();
  for (const part of set.split(',')) {
    const [a, b] = part.split(':');
    const n = (x: string) => (x === '*' ? max : Number(x));
    if (b === undefined) out.add(n(a));
    else {
      const [lo, hi] = [Math.min(n(a), n(b)), Math.max(n(a), n(b))];
      for (let k = lo; k <= hi && k - lo < 1_000_000; k++) out.add(k);
    }
  }
  return [...out].sort((x, y) => x - y);
}

const imapDate = (d: Date) => {
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const p = (n: number) => String(n).padStart(2, '0');
  return `"${p(d.getUTCDate())}-${months[d.getUTCMonth()]}-${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000"`;
};

const quote = (s: string) => `"${s.replace(/["\\]/g, '\\$&')}"`;

function header(body: Buffer, name: string): string | undefined {
  const head = body.toString('latin1').split('\r\n\r\n')[0];
  const m = new RegExp(`^${name}:[ \\t]*(.*)$`, 'mi').exec(head);
  return m?.[1];
}

export function defaultFetchLine(message: FakeMessage, seq: number, items: string[], folder: FakeFolder): Buffer {
  const parts: (string | Buffer)[] = [];
  const want = new Set(items.map((i) => i.toUpperCase()));
  parts.push(`UID ${message.uid}`);
  if (want.has('FLAGS')) parts.push(` FLAGS (${message.flags})`);
  if (want.has('INTERNALDATE'))
    parts.push(` INTERNALDATE ${message.internalDate ?? imapDate(new Date(Date.UTC(2021, 0, 1)))}`);
  if (want.has('RFC822.SIZE')) parts.push(` RFC822.SIZE ${message.size ?? message.body.length}`);
  if (want.has('MODSEQ') || (folder.highestModseq !== undefined && want.has('CHANGEDSINCE')))
    parts.push(` MODSEQ (${message.modseq ?? 1})`);
  if (want.has('ENVELOPE')) {
    const subject = header(message.body, 'Subject');
    const id = header(message.body, 'Message-ID');
    parts.push(
      ` ENVELOPE (NIL ${subject ? quote(subject) : 'NIL'} NIL NIL NIL NIL NIL NIL NIL ${id ? quote(id) : 'NIL'})`,
    );
  }
  if (want.has('BODY.PEEK[]') || want.has('BODY[]') || want.has('RFC822'))
    parts.push(` BODY[] {${message.body.length}}\r\n`, message.body);
  return Buffer.concat([
    Buffer.from(`* ${seq} FETCH (`),
    ...parts.map((p) => (Buffer.isBuffer(p) ? p : Buffer.from(p))),
    Buffer.from(')\r\n'),
  ]);
}

export async function startFakeImap(options: FakeImapOptions): Promise<FakeImap> {
  const commands: string[] = [];
  const appended: Appended[] = [];
  const sockets = new Set<Socket>();
  const caps = `IMAP4rev1 LITERAL+${options.condstore ? ' CONDSTORE ENABLE' : ''}`;
  const find = (path: string) =>
    options.folders.find(
      (f) => f.path === path || (path.toUpperCase() === 'INBOX' && f.path.toUpperCase() === 'INBOX'),
    );

  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    const session: FakeSession = {
      send: (t) => {
        if (!socket.destroyed) socket.write(t);
      },
      selected: undefined,
      socket,
    };
    session.send(`* OK [CAPABILITY ${caps}] fake server ready\r\n`);
    let buffer = Buffer.alloc(0);
    let parts: (string | Buffer)[] = [];
    let literal: number | undefined;
    let busy = Promise.resolve();
    socket.on('data', (data: Buffer) => {
      buffer = Buffer.concat([buffer, data]);
      for (;;) {
        if (literal !== undefined) {
          if (buffer.length < literal) return;
          parts.push(buffer.subarray(0, literal));
          buffer = buffer.subarray(literal);
          literal = undefined;
          continue;
        }
        const eol = buffer.indexOf('\r\n');
        if (eol < 0) return;
        const line = buffer.subarray(0, eol).toString('utf8');
        buffer = buffer.subarray(eol + 2);
        const m = /\{(\d+)(\+?)\}$/.exec(line);
        parts.push(line);
        if (m) {
          literal = Number(m[1]);
          if (!m[2]) session.send('+ go ahead\r\n');
          continue;
        }
        const whole = parts;
        parts = [];
        busy = busy
          .then(() => handle(whole))
          .catch(() => {
            socket.destroy();
          });
      }
    });

    const handle = async (whole: (string | Buffer)[]) => {
      const first = whole[0] as string;
      const sp = first.indexOf(' ');
      const tag = first.slice(0, sp);
      const rest = [first.slice(sp + 1), ...whole.slice(1)];
      const tokens = tokenize(rest);
      let name = text(tokens.shift()).toUpperCase();
      if (name === 'UID') name = `UID ${text(tokens.shift()).toUpperCase()}`;
      commands.push(name);
      const line = whole.map((p) => (Buffer.isBuffer(p) ? `{${p.length}}` : p)).join('');
      if (options.onCommand && (await options.onCommand({ tag, name, args: tokens, line }, session))) return;
      const ok = (what = 'done') => session.send(`${tag} OK ${what}\r\n`);
      switch (name) {
        case 'CAPABILITY':
          session.send(`* CAPABILITY ${caps}\r\n`);
          return ok();
        case 'LOGIN': {
          const [u, p] = tokens.map(text);
          if (u === options.user && p === options.password) return ok(`[CAPABILITY ${caps}] logged in`);
          return session.send(`${tag} NO [AUTHENTICATIONFAILED] Authentication failed.\r\n`);
        }
        case 'ENABLE':
          if (options.condstore) session.send('* ENABLED CONDSTORE\r\n');
          return ok();
        case 'NOOP':
        case 'CHECK':
          return ok();
        case 'LOGOUT':
          session.send('* BYE bye\r\n');
          ok();
          socket.end();
          return;
        case 'LIST':
        case 'LSUB': {
          const pattern = text(tokens[1]);
          for (const f of options.folders) {
            if (name === 'LSUB' && !f.subscribed) continue;
            if (pattern !== '*' && pattern !== '%' && pattern !== f.path) continue;
            session.send(
              `* ${name} (${f.attributes ?? ''}) ${f.delimiter === undefined ? '"/"' : f.delimiter} ${f.wire}\r\n`,
            );
          }
          return ok();
        }
        case 'STATUS': {
          const f = find(text(tokens[0]));
          if (!f) return session.send(`${tag} NO no such folder\r\n`);
          session.send(
            `* STATUS ${f.wire} (MESSAGES ${f.messages.length} UIDNEXT ${f.uidNext ?? (f.messages.at(-1)?.uid ?? 0) + 1} UIDVALIDITY ${f.uidValidity})\r\n`,
          );
          return ok();
        }
        case 'SELECT':
        case 'EXAMINE': {
          const f = find(text(tokens[0]));
          if (!f) return session.send(`${tag} NO [NONEXISTENT] Mailbox doesn't exist\r\n`);
          session.selected = f;
          session.send(`* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n`);
          session.send(`* ${f.messages.length} EXISTS\r\n* 0 RECENT\r\n`);
          session.send(`* OK [UIDVALIDITY ${f.uidValidity}] UIDs valid\r\n`);
          session.send(`* OK [UIDNEXT ${f.uidNext ?? (f.messages.at(-1)?.uid ?? 0) + 1}] next\r\n`);
          if (options.condstore && f.highestModseq !== undefined)
            session.send(`* OK [HIGHESTMODSEQ ${f.highestModseq}] modseq\r\n`);
          return ok(name === 'EXAMINE' ? '[READ-ONLY] examined' : '[READ-WRITE] selected');
        }
        case 'CLOSE':
        case 'UNSELECT':
          session.selected = undefined;
          return ok();
        case 'FETCH':
        case 'UID FETCH': {
          const f = session.selected;
          if (!f) return session.send(`${tag} BAD no folder selected\r\n`);
          const byUid = name === 'UID FETCH';
          const set = text(tokens[0]);
          const itemList = tokens[1];
          const items = (Array.isArray(itemList) ? itemList : [itemList]).map(text);
          const modifiers = Array.isArray(tokens[2]) ? tokens[2].map(text) : [];
          const since = modifiers[0]?.toUpperCase() === 'CHANGEDSINCE' ? Number(modifiers[1]) : undefined;
          if (since !== undefined) items.push('CHANGEDSINCE');
          const maxUid = f.messages.at(-1)?.uid ?? 0;
          const wanted = new Set(seqSet(set, byUid ? Math.max(maxUid, 1) : f.messages.length));
          f.messages.forEach((m, n) => {
            const seq = n + 1;
            if (!wanted.has(byUid ? m.uid : seq)) return;
            if (since !== undefined && (m.modseq ?? 1) <= since) return;
            session.send(options.fetchLine?.(m, seq, items, f) ?? defaultFetchLine(m, seq, items, f));
          });
          const extra = options.afterFetch?.(f, items, byUid);
          if (extra) session.send(extra);
          return ok();
        }
        case 'SEARCH':
        case 'UID SEARCH': {
          const f = session.selected;
          if (!f) return session.send(`${tag} BAD no folder selected\r\n`);
          const ids = f.messages.map((m, n) => (name === 'UID SEARCH' ? m.uid : n + 1));
          session.send(`* SEARCH${ids.map((i) => ` ${i}`).join('')}\r\n`);
          return ok();
        }
        case 'CREATE': {
          const path = text(tokens[0]);
          if (!find(path))
            options.folders.push({ wire: quote(path), path, uidValidity: 1000 + options.folders.length, messages: [] });
          return ok();
        }
        case 'SUBSCRIBE':
          return ok();
        case 'APPEND': {
          const path = text(tokens[0]);
          let at = 1;
          let flags = '';
          let date: string | undefined;
          if (Array.isArray(tokens[at])) flags = (tokens[at++] as Token[]).map(text).join(' ');
          if (typeof tokens[at] === 'string') date = tokens[at++] as string;
          const body = tokens[at] as Buffer;
          const entry = { folder: path, flags, date, body: Buffer.from(body) };
          appended.push(entry);
          const refusal = options.onAppend?.(entry, appended.length);
          if (refusal) return session.send(`${tag} ${refusal}\r\n`);
          const f = find(path);
          if (f) {
            const uid = (f.messages.at(-1)?.uid ?? 0) + 1;
            f.messages.push({ uid, flags, body: entry.body });
          }
          return ok('[APPENDUID 1 1] appended');
        }
        default:
          return session.send(`${tag} BAD unknown command ${name}\r\n`);
      }
    };
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    port,
    url: (user = options.user) => `imap://${encodeURIComponent(user)}@127.0.0.1:${port}/`,
    commands,
    appended,
    folders: options.folders,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A plain message with a Message-ID and subject of its own. */
export const fakeMessage = (n: number, extra = '') =>
  Buffer.from(
    `From: a@example.org\r\nSubject: fake ${n}\r\nMessage-ID: <fake${n}@example.org>\r\n${extra}\r\nbody ${n}\r\n`,
  );
