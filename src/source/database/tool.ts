// A database's own command-line tool run for a source (pg_dump, psql, mariadb-dump, mariadb):
// credentials only in its environment, its standard output streamed, the last of its standard
// error kept for one clear error that names the URL (never a password) and says what to do.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { domainToASCII } from 'node:url';
import { PassThrough, type Readable, Transform, type Writable } from 'node:stream';
import { AmberError } from '../../core/errors.ts';

export interface ToolRun {
  stdout: Readable;
  stdin: Writable;
  /** Resolves with the tool's standard error when it exited 0; rejects with a clear error otherwise. */
  finished: Promise<string>;
}

export interface ToolFamily {
  /** "PostgreSQL", "MariaDB": for messages. */
  product: string;
  /** Where to get the tools. */
  install: string;
  /** How to see whether the server is up. */
  probe: string;
  /** How the password reaches the tools. */
  credentials: string;
  /** Messages of the tools that mean the login was refused, or that the server could not be reached. */
  authFailed: RegExp;
  unreachable: RegExp;
}

export function runTool(
  family: ToolFamily,
  display: string,
  tool: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  /** Ends the tool (SIGTERM) when aborted: a drill's check that ran out of time, an interrupted run. */
  signal?: AbortSignal,
): ToolRun {
  // With a signal, the tool leads a process group of its own: an abort ends it and whatever it
  // started (a `\! sleep` of a drill's SQL check), which would otherwise hold the pipes open.
  const child = spawn(tool, args, { env, stdio: ['pipe', 'pipe', 'pipe'], detached: signal !== undefined });
  const onAbort = () => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {}
  };
  if (signal?.aborted) queueMicrotask(onAbort);
  else signal?.addEventListener('abort', onAbort, { once: true });
  child.on('close', () => signal?.removeEventListener('abort', onAbort));
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (piece: string) => {
    stderr = (stderr + piece).slice(-8192);
  });
  const finished = new Promise<string>((resolve, reject) => {
    child.on('error', (error: NodeJS.ErrnoException) =>
      reject(
        error.code === 'ENOENT'
          ? new AmberError('SOURCE_TOOL_MISSING', `${tool} is not installed (it is ${family.product}'s own client)`, {
              hint: family.install,
            })
          : error,
      ),
    );
    child.on('close', (code, signal) => {
      if (code === 0) return resolve(stderr);
      const said = stderr.trim().split('\n').filter(Boolean).slice(-3).join(' ').replace(/\s+/g, ' ');
      const auth = family.authFailed.test(said);
      const down = family.unreachable.test(said);
      reject(
        new AmberError(
          auth ? 'SOURCE_AUTH_FAILED' : down ? 'SOURCE_UNREACHABLE' : 'SOURCE_FAILED',
          `${tool} on ${display} ${signal ? `was ended by ${signal}` : `failed (exit ${code})`}${said ? `: ${said}` : ''}`,
          {
            hint: auth
              ? `check the user in the URL and the password (${family.credentials})`
              : down
                ? `check that the server runs and listens there (${family.probe})`
                : 'read the tool’s message above; nothing of this run was written as a snapshot',
          },
        ),
      );
    });
  });
  // A consumer that stops reading early must not leave the tool blocked on a full pipe.
  child.stdin.on('error', () => {});
  return { stdout: child.stdout, stdin: child.stdin, finished };
}

/** SQL on a tool's standard input; its standard output, trimmed (`raw`: exactly as written). */
export async function runScript(run: ToolRun, sql: string, raw = false): Promise<string> {
  run.stdin.end(sql);
  let out = '';
  run.stdout.setEncoding('utf8').on('data', (piece: string) => {
    out += piece;
  });
  await run.finished;
  return raw ? out : out.trim();
}

/**
 * psql's own safeguard against a dump that carries backslash commands (`\! cmd`, `\o FILE`,
 * `\copy`): `\restrict KEY` as the first line allows none but `\unrestrict KEY` after it, and
 * the key is random, made for this run only, so nothing in the dump can lift it. The dump's own
 * `\restrict` line (pg_dump writes one at its top since August 2025) and the matching
 * `\unrestrict` at its end are taken out; they would fail inside Amber's.
 */
export class PsqlRestrict extends Transform {
  /** A whole script (the roles' SQL: small) the same way: Amber's `\\restrict` first, the script's own taken out. */
  static script(text: string): string {
    const lines = text.split('\n');
    let theirs: string | undefined;
    for (let i = 0; i < lines.length; i++) {
      const own = /^\\restrict (\S+)\r?$/.exec(lines[i]);
      if (own) {
        theirs = own[1];
        lines.splice(i, 1);
        break;
      }
      if (lines[i].trim() !== '' && !lines[i].startsWith('--')) break;
    }
    const kept =
      theirs === undefined ? lines : lines.filter((line) => line.replace(/\r$/, '') !== `\\unrestrict ${theirs}`);
    return `\\restrict ${randomBytes(24).toString('hex')}\n${kept.join('\n')}`;
  }
  readonly key = randomBytes(24).toString('hex');
  #header = true;
  #pending = Buffer.alloc(0);
  #theirs: Buffer | undefined;
  #carry = Buffer.alloc(0);
  constructor() {
    super();
    this.push(Buffer.from(`\\restrict ${this.key}\n`));
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    if (this.#header) {
      // Until the first line that is neither blank nor a comment: a `\restrict X` there is the dump's own.
      this.#pending = Buffer.concat([this.#pending, chunk]);
      let start = 0;
      for (let end = this.#pending.indexOf(10, start); end >= 0; end = this.#pending.indexOf(10, start)) {
        const line = this.#pending.subarray(start, end).toString('latin1').replace(/\r$/, '');
        const own = /^\\restrict (\S+)$/.exec(line);
        if (own) {
          this.#theirs = Buffer.from(`\n\\unrestrict ${own[1]}\n`, 'latin1');
          this.push(this.#pending.subarray(0, start));
          this.#pending = this.#pending.subarray(end + 1);
          start = 0;
          continue;
        }
        if (line.trim() !== '' && !line.startsWith('--')) {
          this.#header = false;
          break;
        }
        start = end + 1;
      }
      if (this.#header && this.#pending.length < 65536) {
        done();
        return;
      }
      this.#header = false;
      chunk = this.#pending;
      this.#pending = Buffer.alloc(0);
    }
    this.#pass(chunk);
    done();
  }
  override _flush(done: (error?: Error | null) => void): void {
    if (this.#header) this.#pass(this.#pending);
    this.push(this.#carry);
    done();
  }
  /** The bytes, without the dump's `\unrestrict` line; the last bytes held back in case it straddles two chunks. */
  #pass(chunk: Buffer): void {
    if (!this.#theirs) {
      this.push(chunk);
      return;
    }
    let text = Buffer.concat([this.#carry, chunk]);
    for (let at = text.indexOf(this.#theirs); at >= 0; at = text.indexOf(this.#theirs)) {
      text = Buffer.concat([text.subarray(0, at + 1), text.subarray(at + this.#theirs.length)]);
    }
    const keep = Math.min(text.length, this.#theirs.length - 1);
    this.push(text.subarray(0, text.length - keep));
    this.#carry = text.subarray(text.length - keep);
  }
}

/** A database's file in the snapshot: its name, made safe as a file name (%XX for %, / and control characters). */
export function fileOfDatabase(database: string): string {
  let name = '';
  for (const c of database) {
    const code = c.charCodeAt(0);
    name += c === '%' || c === '/' || code < 0x20 || code === 0x7f ? `%${code.toString(16).padStart(2, '0')}` : c;
  }
  return `${name}.sql`;
}

/** What a feed writes, as text (the roles' or users' SQL: small), to be looked at before it runs. */
export async function collect(feed: (into: Writable) => Promise<void>): Promise<string> {
  const chunks: Buffer[] = [];
  const sink = new PassThrough();
  sink.on('data', (chunk: Buffer) => chunks.push(chunk));
  await feed(sink);
  sink.end();
  await once(sink, 'end');
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * SQL text cut into its statements (each with its `;` and the comments before it): a `;` inside a
 * quoted string or identifier, or a comment, does not end one. `backslashes`: MySQL's strings,
 * where a backslash escapes the next character.
 */
export function splitStatements(sql: string, backslashes: boolean): string[] {
  const out: string[] = [];
  let start = 0;
  let i = 0;
  while (i < sql.length) {
    const c = sql[i];
    if (c === '-' && sql[i + 1] === '-') {
      const end = sql.indexOf('\n', i);
      i = end < 0 ? sql.length : end + 1;
    } else if (c === '/' && sql[i + 1] === '*') {
      const end = sql.indexOf('*/', i + 2);
      i = end < 0 ? sql.length : end + 2;
    } else if (c === "'" || c === '"' || c === '`') {
      i++;
      while (i < sql.length) {
        if (backslashes && c !== '`' && sql[i] === '\\') i += 2;
        else if (sql[i] === c && sql[i + 1] === c) i += 2;
        else if (sql[i] === c) break;
        else i++;
      }
      i++;
    } else {
      if (c === ';') {
        out.push(sql.slice(start, i + 1));
        start = i + 1;
      }
      i++;
    }
  }
  if (sql.slice(start).trim()) out.push(sql.slice(start));
  return out;
}

/** A statement without the comments and blank lines before it. */
export const statementHead = (statement: string): string => statement.replace(/^(?:\s+|--[^\n]*(?:\n|$))*/, '');

/**
 * A URL as typed, for an error message: a password in it (user:PASSWORD@) shown as ***. The user
 * part may hold an unencoded @ (alice@example.org:secret@host), so everything from the first : after
 * the scheme to the last @ goes: it may hide a port and path too, never a password.
 */
export const withoutPassword = (text: string): string =>
  text.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:]*?):.*@/is, '$1:***@');

/** A percent-encoded part of a source URL (user, database, host), decoded; a malformed escape or a NUL byte refused clearly. */
export function decodeUrlPart(part: string, what: string, url: string): string {
  let decoded: string;
  try {
    decoded = decodeURIComponent(part);
  } catch {
    throw new AmberError('USAGE', `the ${what} in ${withoutPassword(url)} has a malformed %-escape`, {
      hint: 'write a % in a name as %25',
    });
  }
  if (decoded.includes('\0'))
    throw new AmberError('USAGE', `the ${what} in ${withoutPassword(url)} has a NUL byte in it`);
  return decoded;
}

/** A host as the tools take it: an IPv6 address without its brackets, an international name in ASCII (punycode). */
export function hostOf(hostname: string, url: string): string {
  const host = decodeUrlPart(hostname, 'host', url).replace(/^\[|\]$/g, '');
  return host.includes(':') ? host : domainToASCII(host) || host;
}

/**
 * A dump's output, passed through unchanged, that fails at its end unless its last few KiB hold
 * the tool's own "complete" line: a tool (or a wrapper of it) that exits 0 after writing only part
 * of a dump must not become a snapshot.
 */
export function completeOrFail(run: ToolRun, complete: RegExp, tool: string, display: string): Readable {
  let tail = '';
  return run.stdout.pipe(
    new Transform({
      transform(chunk: Buffer, _encoding, done) {
        tail = (tail + chunk.toString('latin1')).slice(-4096);
        done(null, chunk);
      },
      flush(done) {
        // The tool's own failure (its exit code and message) first; only a clean exit is checked for its last line.
        run.finished.then(
          () =>
            done(
              complete.test(tail)
                ? null
                : new AmberError(
                    'SOURCE_FAILED',
                    `${tool} on ${display} ended without its last line: the dump is cut short`,
                    { hint: 'nothing of this run was written as a snapshot; run the backup again' },
                  ),
            ),
          (error: Error) => done(error),
        );
      },
    }),
  );
}

/** A database server named by a URL: host, port, user and database, and the URL as shown (never with a password). */
export interface DatabaseTarget {
  host: string;
  port: number;
  user?: string;
  /** The database; undefined for every database of the server. */
  database?: string;
  display: string;
}

/**
 * SCHEME://[USER@]HOST[:PORT][/DB] for one family of databases. A password in the URL is refused
 * (any user can read it in `ps`); so are parameters, which the tools take from their environment.
 */
export function parseDatabaseUrl(
  text: string,
  kind: { product: string; schemes: string[]; defaultPort: number; credentials: string; parameters: string },
): DatabaseTarget {
  const [scheme] = kind.schemes;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new AmberError('USAGE', `"${withoutPassword(text)}" is not a ${kind.product} URL`, {
      hint: `write ${scheme}://USER@HOST:PORT/DATABASE, or ${scheme}://USER@HOST:PORT/ for every database`,
    });
  }
  if (!kind.schemes.includes(url.protocol.replace(/:$/, '')))
    throw new AmberError('USAGE', `"${withoutPassword(text)}" is not a ${kind.product} URL`);
  if (url.password)
    throw new AmberError('USAGE', `the ${kind.product} URL has a password in it, which any user can read in \`ps\``, {
      hint: `leave it out of the URL; ${kind.credentials}`,
    });
  if (url.search || url.hash)
    throw new AmberError(
      'USAGE',
      `the ${kind.product} URL ${url.protocol}//${url.host}${url.pathname} has parameters Amber does not use`,
      { hint: `write ${scheme}://USER@HOST:PORT/DATABASE without ?… (${kind.parameters})` },
    );
  // One path segment; a / inside the name itself is written %2F.
  if (url.pathname.slice(1).includes('/'))
    throw new AmberError('USAGE', `"${url.pathname.slice(1)}" is not a database name`, {
      hint: 'a database name with / in it is written with %2F',
    });
  const database = decodeUrlPart(url.pathname.replace(/^\//, ''), 'database name', text);
  const host = hostOf(url.hostname, text);
  if (!host) throw new AmberError('USAGE', `the ${kind.product} URL "${withoutPassword(text)}" names no host`);
  const user = url.username ? decodeUrlPart(url.username, 'user name', text) : undefined;
  return {
    host,
    port: url.port ? Number(url.port) : kind.defaultPort,
    user,
    database: database || undefined,
    display: `${scheme}://${user ? `${encodeURIComponent(user)}@` : ''}${url.host}/${database ? encodeURIComponent(database) : ''}`,
  };
}
