// The client side of the vault: the Store contract over HTTP (docs/http-api.md). The server enforces
// write-once and retention; this store only speaks the protocol, retries what may pass (network
// errors, 5xx) with backoff, and turns the server's JSON errors back into Amber's error codes.
import { AmberError, ERROR_CODES, type ErrorCode } from '../../core/errors.ts';
import {
  checkObjectName,
  isValidObjectName,
  type ByteRange,
  type Enforcement,
  type ObjectInfo,
  type ObjectProtection,
  type ObjectRetention,
  type PutOptions,
  type Store,
} from '../store.ts';

export interface HttpStoreOptions {
  token: string;
  /** Attempts for a request that fails in a way that may pass; the waits double from 200 ms. */
  attempts?: number;
}

export interface HttpStore extends Store {
  /** Creates the repository on the vault (an admin token); false when it exists already. */
  createRepository(): Promise<boolean>;
  /** The token's id (never its secret), for the audit log's actor. */
  readonly tokenId: string;
  /** The vault's witness key (hex): the owner accepts it at init so the vault can sign audit entries. */
  witnessKey(): Promise<string | undefined>;
}

const VAULT_ENFORCEMENT: Enforcement = {
  enforcer: 'server',
  holdsAgainst: [
    'backup clients and their credentials (tokens can add, never change or remove)',
    'root on the backed-up hosts',
  ],
  notes:
    'The vault server enforces write-once and retention; whoever administers the vault host can still lift it. Run it on a host backup clients have no power over.',
};

/**
 * The vault's error codes by status, for answers without a body (HEAD): each of these statuses has
 * one code for an object request that passed this store's own name check (docs/http-api.md).
 */
const HEAD_CODES: Partial<Record<number, ErrorCode>> = {
  400: 'INVALID_OBJECT_NAME',
  401: 'TOKEN_INVALID',
  403: 'ROLE_FORBIDDEN',
  503: 'STORAGE_TRANSIENT',
  507: 'STORAGE_FULL',
};

/** No object of the format is larger: a pack of the largest target (1 GiB) and its header, or a record (256 MiB). */
const MAX_OBJECT_BYTES = 1024 ** 3 + 64 * 1024 * 1024;
/** A listing line names one object: a name and a few numbers. */
const MAX_LISTING_LINE = 64 * 1024;

/**
 * The response body, read as it arrives, never more than `limit` bytes: past it, `tooLong` is
 * thrown, or (`cut`) the rest is left unread and the first `limit` bytes are returned.
 */
async function bodyUpTo(
  response: Response,
  limit: number,
  tooLong: () => Error,
  options: { cut?: boolean } = {},
): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let total = 0;
  // Leaving the loop early cancels the stream: the rest is never read.
  for await (const part of response.body ?? []) {
    if (total + part.length > limit) {
      if (!options.cut) throw tooLong();
      parts.push(part.subarray(0, limit - total));
      total = limit;
      break;
    }
    parts.push(part);
    total += part.length;
  }
  // Memory of its own, as arrayBuffer() gave: a chunk may be a view of the connection's buffer.
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const part of parts) {
    bytes.set(part, at);
    at += part.length;
  }
  return bytes;
}

/**
 * One line of a listing, or undefined for what no vault lists: not an object, a name that is not a
 * valid object name (which every read of it would refuse, ending a whole listing's reader) or lies
 * outside the prefix or in tmp/. The fs and S3 stores skip such names the same way.
 */
function listed(line: string, prefix: string): ObjectInfo | undefined {
  let info: Partial<ObjectInfo> | null;
  try {
    info = JSON.parse(line) as Partial<ObjectInfo> | null;
  } catch (cause) {
    throw new AmberError('STORAGE_TRANSIENT', 'the vault sent a listing that is not JSON lines', { cause });
  }
  const name = info?.name;
  if (typeof name !== 'string' || !name.startsWith(prefix) || !isValidObjectName(name) || /^tmp(\/|$)/.test(name))
    return undefined;
  if (typeof info!.sizeBytes !== 'number' || !Number.isSafeInteger(info!.sizeBytes) || info!.sizeBytes < 0)
    return undefined;
  return info as ObjectInfo;
}

export function parseVaultLocation(location: string): { origin: string; name: string } {
  let url: URL;
  try {
    url = new URL(location);
  } catch {
    throw new AmberError('USAGE', `"${location}" is not a URL`);
  }
  const name = url.pathname.replace(/^\/+|\/+$/g, '');
  if (!/^[a-z0-9][a-z0-9_-]{0,62}$/.test(name) || url.search || url.hash || url.username || url.password) {
    throw new AmberError(
      'USAGE',
      `"${location}": a vault repository is http(s)://HOST:PORT/NAME (NAME: lowercase letters, digits, - and _)`,
      {
        hint: 'the token goes in AMBER_VAULT_TOKEN, never in the URL',
      },
    );
  }
  return { origin: url.origin, name };
}

export function createHttpStore(location: string, options: HttpStoreOptions): HttpStore {
  const { origin, name } = parseVaultLocation(location);
  const base = `${origin}/v1/repos/${name}`;
  const attempts = options.attempts ?? 5;
  const tokenId = /^amber_([0-9a-f]{16})_/.exec(options.token)?.[1] ?? 'unknown';

  async function call(
    method: string,
    path: string,
    init: { body?: Uint8Array | string; headers?: Record<string, string> } = {},
    retryable = true,
  ): Promise<Response> {
    for (let attempt = 1; ; attempt++) {
      let response: Response | undefined;
      let failure: unknown;
      try {
        response = await fetch(`${base}${path}`, {
          method,
          headers: { authorization: `Bearer ${options.token}`, ...init.headers },
          body: init.body,
          signal: AbortSignal.timeout(10 * 60_000),
          // A vault never redirects. Followed, a redirect would let whoever runs the server (a
          // primary's owner, for a copy) send this host's requests anywhere it can reach.
          redirect: 'error',
        });
      } catch (error) {
        failure = error;
      }
      const transient = response === undefined || response.status >= 500;
      if (!transient || !retryable || attempt >= attempts) {
        if (response) return Object.assign(response, { attempt });
        // fetch says only "fetch failed"; the reason (refused, reset, an untrusted certificate) is its cause.
        const cause = (failure as { cause?: { message?: string; code?: string } })?.cause;
        const reason = cause?.message ?? (failure as Error)?.message ?? String(failure);
        const certificate = /certificate|self.signed|CERT/i.test(`${reason} ${cause?.code ?? ''}`);
        throw new AmberError('STORAGE_TRANSIENT', `the vault at ${origin} cannot be reached: ${reason}`, {
          cause: failure,
          hint: certificate
            ? "the vault's TLS certificate is not trusted here: point NODE_EXTRA_CA_CERTS at its CA (PEM)"
            : 'check that `amber vault serve` runs there and the address is right',
        });
      }
      await response?.arrayBuffer().catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, 200 * 2 ** (attempt - 1)));
    }
  }

  async function fail(response: Response, what: string, bodyless = false): Promise<never> {
    let body: { error?: { code?: string; message?: string; hint?: string } } = {};
    try {
      body = (await response.json()) as typeof body;
    } catch {
      // not JSON: a proxy, the wrong server, or the answer to a HEAD (which has no body: its status says)
    }
    const code = (
      body.error?.code && body.error.code in ERROR_CODES
        ? body.error.code
        : (bodyless && HEAD_CODES[response.status]) || 'STORAGE_TRANSIENT'
    ) as ErrorCode;
    throw new AmberError(code, `${what}: ${body.error?.message ?? `the vault answered ${response.status}`}`, {
      hint: body.error?.hint,
    });
  }

  // Names are checked here, before they become a URL: fetch would fold `..` and turn a backslash into `/`,
  // and send another path than the one named.
  function checkName(object: string): void {
    checkObjectName(object, `${origin}/${name}`);
  }

  const objectPath = (object: string) => {
    checkName(object);
    return `/objects/${object}`;
  };

  async function json<T>(method: string, path: string, body: unknown, what: string): Promise<T> {
    const response = await call(method, path, {
      body: JSON.stringify(body),
      headers: { 'content-type': 'application/json' },
    });
    if (!response.ok) return fail(response, what);
    return (await response.json()) as T;
  }

  const store: HttpStore = {
    location: `${origin}/${name}`,
    tokenId,
    readAheadBytes: 1024 * 1024,
    parallelWrites: 3,

    async put(object: string, bytes: Uint8Array, putOptions?: PutOptions) {
      const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
      if (putOptions?.retainUntilMs !== undefined && putOptions.mode) {
        headers['x-amber-retain-until'] = String(putOptions.retainUntilMs);
        headers['x-amber-retention-mode'] = putOptions.mode;
      }
      const response = (await call('PUT', objectPath(object), { body: bytes, headers })) as Response & {
        attempt: number;
      };
      if (response.ok) return;
      // A retried upload may find its own first attempt stored: the same bytes are success.
      if (response.status === 409 && response.attempt > 1) {
        await response.arrayBuffer();
        const stored = Buffer.from(await store.get(object));
        if (stored.equals(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength))) return;
        throw new AmberError('OBJECT_EXISTS', `${object} already exists in ${store.location}`);
      }
      return fail(response, `storing ${object}`);
    },

    async get(object: string, range?: ByteRange, into?: Uint8Array) {
      const pastEnd = (sizeBytes?: number) =>
        new AmberError(
          'OBJECT_CORRUPT',
          `a read of bytes ${range!.offset}+${range!.length} is past the end of ${object} in ${store.location} (${sizeBytes ?? 'it holds fewer'} bytes)`,
        );
      if (range?.length === 0) {
        // No Range header asks for nothing (bytes=N-(N-1) is malformed): the object's size says whether the place exists.
        const { sizeBytes } = await store.stat(object);
        if (range.offset > sizeBytes) throw pastEnd(sizeBytes);
        return new Uint8Array(0);
      }
      const headers: Record<string, string> = range
        ? { range: `bytes=${range.offset}-${range.offset + range.length - 1}` }
        : {};
      const response = await call('GET', objectPath(object), { headers });
      if (!response.ok) return fail(response, `reading ${object}`);
      // A hostile or broken server may send more than was asked, without end: read no further than
      // the range (the whole object, when the range is not honoured), or than any object can be.
      const whole = response.status !== 206;
      let bytes = await bodyUpTo(
        response,
        range ? (whole ? range.offset + range.length : range.length) : MAX_OBJECT_BYTES,
        () =>
          range
            ? pastEnd()
            : new AmberError('OBJECT_CORRUPT', `${object} in ${store.location} is larger than any object`),
        { cut: range !== undefined && whole },
      );
      if (range) {
        // A range running past the end comes back cut short (206), as HTTP ranges do; one that is not
        // honoured at all comes back whole (200), and is read only as far as the range goes.
        if (whole) bytes = bytes.subarray(range.offset, range.offset + range.length);
        const total = Number(/\/(\d+)$/.exec(response.headers.get('content-range') ?? '')?.[1] ?? NaN);
        if (bytes.length !== range.length) throw pastEnd(Number.isFinite(total) ? total : undefined);
      }
      if (into && into.length >= bytes.length) {
        into.set(bytes);
        return into.subarray(0, bytes.length);
      }
      return bytes;
    },

    async stat(object: string) {
      const response = await call('HEAD', objectPath(object));
      if (response.status === 404)
        throw new AmberError('OBJECT_NOT_FOUND', `${object} does not exist in ${store.location}`);
      if (!response.ok) return fail(response, `reading ${object}`, true);
      const written = Number(response.headers.get('x-amber-written') || NaN);
      return {
        name: object,
        sizeBytes: Number(response.headers.get('content-length')),
        ...(Number.isFinite(written) ? { writtenMs: written } : {}),
      };
    },

    async *list(prefix: string): AsyncIterable<ObjectInfo> {
      // No object name starts with a character names never hold (the vault refuses such a prefix).
      if (!/^[a-z0-9_./-]*$/.test(prefix)) return;
      const response = await call('GET', `/objects?prefix=${encodeURIComponent(prefix)}`);
      if (response.status === 404) return;
      if (!response.ok || !response.body) return fail(response, `listing ${prefix || 'the repository'}`);
      // NDJSON, read as it arrives: a listing of any size in bounded memory.
      const decoder = new TextDecoder();
      let pending = '';
      for await (const chunk of response.body) {
        pending += decoder.decode(chunk, { stream: true });
        if (pending.length > MAX_LISTING_LINE)
          throw new AmberError(
            'STORAGE_TRANSIENT',
            `the vault at ${origin} sent a listing line of more than ${MAX_LISTING_LINE} characters`,
          );
        let newline: number;
        while ((newline = pending.indexOf('\n')) >= 0) {
          const line = pending.slice(0, newline);
          pending = pending.slice(newline + 1);
          const info = line ? listed(line, prefix) : undefined;
          if (info) yield info;
        }
      }
      const last = pending.trim() ? listed(pending, prefix) : undefined;
      if (last) yield last;
    },

    async exists() {
      const response = await call('GET', '/objects?prefix=&limit=1');
      if (response.status === 404) {
        await response.arrayBuffer();
        return false;
      }
      if (!response.ok) return fail(response, 'opening the repository');
      return (await response.text()).trim() !== '';
    },

    enforcement: () => VAULT_ENFORCEMENT,

    async protect(names: string[], retention: ObjectRetention) {
      names.forEach(checkName);
      if (names.length === 0) return;
      await json('POST', '/protect', { names, ...retention }, `protecting ${names.length} objects`);
    },

    async protection(names: string[]) {
      names.forEach(checkName);
      return json<ObjectProtection[]>(
        'POST',
        '/protection',
        { names },
        `reading the protection of ${names.length} objects`,
      );
    },

    async deleteExpired(object: string) {
      const response = await call('DELETE', objectPath(object));
      if (!response.ok) return fail(response, `deleting ${object}`);
      await response.arrayBuffer();
    },

    async serverTimeMs() {
      // Any answer carries the vault's Date header, an error as much as a success.
      const response = await call('GET', '').catch(() => undefined);
      await response?.arrayBuffer().catch(() => undefined);
      const ms = Date.parse(response?.headers.get('date') ?? '');
      return Number.isFinite(ms) ? ms : undefined;
    },

    async witnessKey() {
      const response = await call('GET', '');
      if (!response.ok) return fail(response, "reading the vault's witness key");
      const body = (await response.json()) as { witness?: string };
      return body.witness;
    },

    async createRepository() {
      const response = await call('PUT', '', {}, false);
      if (response.status === 201) return true;
      if (response.status === 409) return false;
      return fail(response, `creating repository ${name}`);
    },
  };
  return store;
}
