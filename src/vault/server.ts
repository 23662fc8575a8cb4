// The vault: Amber's own storage server. Clients hold tokens with a role and a repository; the
// server holds no data key and enforces write-once itself: create-only objects whose bytes match
// their names, reads and writes by role, retention extended but never shortened, and no delete but
// a maintainer's of an object a signed condemn notice names after its grace (see vault-retention.ts).
// Every request it answers is appended to a per-repository access log with the token's identity.
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { AmberError, isAmberError, type ErrorCode } from '../core/errors.ts';
import type { Clock } from '../core/clock.ts';
import { nowIso } from '../core/clock.ts';
import { checkObjectName, isValidObjectName, type ObjectRetention, type Store } from '../storage/store.ts';
import { createFsStore } from '../storage/fs/fs-store.ts';
import { mayCreateRepository, mayDelete, mayList, mayProtect, mayRead, mayWrite } from './access.ts';
import { checkUpload, viewOrNothing } from './object-checks.ts';
import { openRepositoryView, type RepositoryView } from '../repo/repository.ts';
import { createByteBudget, type Lease } from './byte-budget.ts';
import { objectName } from '../repo/layout.ts';
import { createTokenChecker, REPO_NAME, type TokenInfo } from './tokens.ts';
import { createMetrics } from './metrics.ts';
import { createRpoWatch, type VaultObjective } from './rpo-watch.ts';
import type { AmberEvent } from '../ops/notify/event.ts';
import { createWitness, loadWitnessKey } from './witness.ts';
import {
  checkCondemnUpload,
  checkDeletion,
  checkForgetUpload,
  checkGrantUpload,
  checkPolicyUpload,
  checkProtect,
  checkRetainUntil,
} from './vault-retention.ts';
import type { CachedRecord, RecordCache } from '../repo/record-cache.ts';
import type { RetentionClock } from '../governance/retention-state.ts';

/** Packs are tens of MiB; the largest blob is 256 MiB. Anything larger is refused before it is read. */
export const MAX_OBJECT_BYTES = 512 * 1024 * 1024;
const MAX_JSON_BYTES = 8 * 1024 * 1024;
const MAX_DATE_MS = 8.64e15;
/** Object bytes (uploads and reads) held in memory at once, whatever the number of clients. */
export const DEFAULT_MEMORY_BUDGET_BYTES = 1024 * 1024 * 1024;
/** Requests take budget in steps of this as their bytes arrive (or are read to be sent), never all they declare. */
export const DEFAULT_BUDGET_STEP_BYTES = 4 * 1024 * 1024;
/** The longest a request waits for its next step of the budget before it is answered 503 (Retry-After). */
export const DEFAULT_BUDGET_WAIT_MS = 30_000;
const RETRY_AFTER_SECONDS = 5;

/** Uploads slower than this on average, once the grace has passed, are cut off (408). */
export const DEFAULT_MIN_UPLOAD_BYTES_PER_SECOND = 64 * 1024;
export const DEFAULT_UPLOAD_GRACE_MS = 10_000;

/** Without a policy maximum, no one may ask the vault to retain anything longer than this from now. */
export const DEFAULT_MAX_RETENTION_MS = 10 * 365 * 86_400_000;
const RECORD_CACHE_BYTES = 64 * 1024 * 1024;

export interface VaultOptions {
  dataDir: string;
  host?: string;
  port?: number;
  tls?: { cert: string; key: string };
  clock: Clock;
  /** Expiry decisions (condemn notices, deletions) use this: `amber vault serve` passes its guarded clock. */
  retentionClock: RetentionClock;
  /** How long requests wait to be summed up in the audit log when nothing completes an operation. */
  witnessFlushMs?: number;
  /** Object bytes in memory at once (default DEFAULT_MEMORY_BUDGET_BYTES, at least the largest upload). */
  memoryBudgetBytes?: number;
  /** The budget's step (default DEFAULT_BUDGET_STEP_BYTES) and the longest wait for one (default DEFAULT_BUDGET_WAIT_MS). */
  budgetStepBytes?: number;
  budgetWaitMs?: number;
  /** The largest upload accepted (default MAX_OBJECT_BYTES); tests use less. */
  maxObjectBytes?: number;
  /** The longest retention anyone may ask for when the repository's policy sets no maximum (default 10 years). */
  maxRetentionMs?: number;
  /** The slowest body the vault reads (bytes a second on average, 0 for no minimum) and after how long it judges. */
  minUploadBytesPerSecond?: number;
  uploadGraceMs?: number;
  /**
   * Where a repository's objects live: by default the hardened fs store at DIR/repos/NAME. With S3
   * Object Lock behind the vault, the storage enforces retention too. The list of repositories stays
   * in DIR/repos either way.
   */
  storeFor?: (repo: string) => Store;
  /** RPO objectives watched from here (docs/agent.md, "The RPO from the vault's side"). */
  objectives?: VaultObjective[];
  /** Where rpo.missed and rpo.recovered go (the notifier of `vault serve`'s notify: targets). */
  notify?: (event: AmberEvent) => void;
  /** How often the objectives are compared with the clock (default a quarter of the shortest RPO, 1 to 15 s). */
  rpoCheckMs?: number;
  /** Operator-facing warnings (stderr for `vault serve`). */
  warn?: (message: string) => void;
}

export interface Vault {
  url: string;
  server: Server;
  close(): Promise<void>;
}

const STATUS: Partial<Record<ErrorCode, number>> = {
  USAGE: 400,
  INVALID_OBJECT_NAME: 400,
  TOKEN_INVALID: 401,
  ROLE_FORBIDDEN: 403,
  REPO_NOT_FOUND: 404,
  OBJECT_NOT_FOUND: 404,
  OBJECT_EXISTS: 409,
  RETENTION_ACTIVE: 409,
  REPO_EXISTS: 409,
  POLICY_LOCKED: 409,
  APPROVAL_REQUIRED: 409,
  POLICY_VIOLATION: 422,
  OBJECT_TOO_LARGE: 413,
  UPLOAD_TOO_SLOW: 408,
  RETENTION_LOCKED: 409,
  OBJECT_CORRUPT: 422,
  CONFIG_CORRUPT: 422,
  FORMAT_UNSUPPORTED: 422,
  SIGNATURE_INVALID: 422,
  STORAGE_FULL: 507,
  STORAGE_TRANSIENT: 503,
};

export async function startVault(options: VaultOptions): Promise<Vault> {
  const checkToken = createTokenChecker(options.dataDir);
  const witnessKey = loadWitnessKey(options.dataDir);
  const expiryClock = options.retentionClock;
  const stores = new Map<string, Store>();
  const maxObjectBytes = options.maxObjectBytes ?? MAX_OBJECT_BYTES;
  const memoryBudget = Math.max(options.memoryBudgetBytes ?? DEFAULT_MEMORY_BUDGET_BYTES, maxObjectBytes);
  // No token holds more than half: another token's request always finds room beside it. Requests hold
  // only what has arrived or is being sent, taken a step at a time (see byte-budget.ts).
  const budget = createByteBudget(memoryBudget, {
    share: Math.floor(memoryBudget / 2),
    waitMs: options.budgetWaitMs ?? DEFAULT_BUDGET_WAIT_MS,
    retryAfterSeconds: RETRY_AFTER_SECONDS,
  });
  const step = Math.max(1, options.budgetStepBytes ?? DEFAULT_BUDGET_STEP_BYTES);
  const rpoWatch =
    options.objectives && options.objectives.length > 0
      ? createRpoWatch({
          dataDir: options.dataDir,
          objectives: options.objectives,
          notify: options.notify ?? (() => {}),
          nowMs: options.clock.nowMs(),
          log: options.warn,
        })
      : undefined;
  const metrics = createMetrics(options.clock, () => budget.inUse, rpoWatch);
  const rpoTimer =
    rpoWatch &&
    setInterval(() => rpoWatch.check(options.clock.nowMs()), options.rpoCheckMs ?? checkEveryMs(options.objectives!));
  rpoTimer?.unref();
  rpoWatch?.check(options.clock.nowMs());
  const storeOf = (repo: string) => {
    let store = stores.get(repo);
    if (!store)
      stores.set(repo, (store = options.storeFor?.(repo) ?? createFsStore(join(options.dataDir, 'repos', repo))));
    return store;
  };
  const uploadLimits: UploadLimits = {
    minBytesPerSecond: options.minUploadBytesPerSecond ?? DEFAULT_MIN_UPLOAD_BYTES_PER_SECOND,
    graceMs: options.uploadGraceMs ?? DEFAULT_UPLOAD_GRACE_MS,
    nowMs: () => options.clock.monotonicMs(),
    step,
  };
  /** A JSON body, read within the token's share of the budget. */
  const jsonOf = async (req: IncomingMessage, token: TokenInfo, endpoint: string) => {
    const lease = budget.open(token.id);
    try {
      return await readJson(req, uploadLimits, lease, endpoint);
    } finally {
      lease.release();
    }
  };
  // Signed records are immutable: each is fetched and verified once, then kept in memory (bounded).
  const recordCache = createMemoryRecordCache(RECORD_CACHE_BYTES);
  const viewOf = async (repo: string): Promise<RepositoryView> => ({
    ...(await openRepositoryView(storeOf(repo))),
    recordCache: recordCache(repo),
  });
  const maxRetentionMs = options.maxRetentionMs ?? DEFAULT_MAX_RETENTION_MS;
  const witness = createWitness({
    signer: witnessKey,
    clock: options.clock,
    retentionClock: expiryClock,
    storeOf,
    flushAfterMs: options.witnessFlushMs,
  });

  async function handle(
    req: IncomingMessage,
    res: ServerResponse,
    token: TokenInfo | undefined,
    target: Target,
  ): Promise<number> {
    const { path, query, repo, section, name: rawName } = target;
    if (path === '/v1/health' && req.method === 'GET') return send(res, 200, { status: 'ok' });
    if (path === '/metrics' && req.method === 'GET') return sendText(res, 200, metrics.render());
    if (!token)
      throw new AmberError('TOKEN_INVALID', 'missing, unknown or revoked token', {
        hint: 'set AMBER_VAULT_TOKEN to a token from `amber vault token create`',
      });
    if (repo === undefined)
      throw new AmberError('USAGE', `no such endpoint: ${req.method} ${path.slice(0, 200)}`, {
        hint: 'see docs/http-api.md',
      });
    // Out of scope and nonexistent look the same: a token learns nothing about other repositories.
    if (!REPO_NAME.test(repo) || (token.repo !== '*' && token.repo !== repo)) throw notFound(repo);
    const store = storeOf(repo);
    const created = existsSync(join(options.dataDir, 'repos', repo));
    if (section === undefined && req.method === 'PUT') return createRepository(res, token, repo, created);
    if (!created) throw notFound(repo);
    if (section === undefined && req.method === 'GET')
      return send(res, 200, { name: repo, witness: witnessKey.publicKey.toString('hex') });
    if (section === 'enforcement' && req.method === 'GET') return send(res, 200, enforcement(store));
    if (section === 'protect' && req.method === 'POST') {
      const body = protectBody(await jsonOf(req, token, 'protect'));
      const refused = body.names.find((n) => !mayProtect(token.role, n));
      if (refused !== undefined) throw forbidden(token, `extend the retention of ${refused}`);
      // Dates only ever rise (the grants hold the maximum), so a date below what an object holds changes
      // nothing; one already past for an object held longer is no extension at all, only an attempt;
      // and none goes beyond what the grants give (records: beyond the retention bound).
      await checkProtect(await viewOf(repo), body.names, body, expiryClock.retentionBaseMs(), maxRetentionMs);
      await store.protect(body.names, { untilMs: body.untilMs, mode: body.mode });
      return send(res, 200, { protected: body.names.length });
    }
    if (section === 'protection' && req.method === 'POST') {
      const { names } = namesBody(await jsonOf(req, token, 'protection'), 'protection');
      const unreadable = names.find((n) => !mayRead(token.role, n));
      if (unreadable !== undefined) throw forbidden(token, `read ${unreadable}`);
      return send(res, 200, await store.protection(names));
    }
    if (section === 'objects' && rawName === undefined && req.method === 'GET') {
      const limit = query.get('limit');
      if (limit !== null && !/^[0-9]{1,9}$/.test(limit))
        throw new AmberError('USAGE', `limit=${limit.slice(0, 20)} is not a whole number of objects`);
      return list(res, token, store, query.get('prefix') ?? '', limit === null ? Infinity : Number(limit));
    }
    if (section === 'objects' && rawName !== undefined) {
      const name = objectNameOf(rawName, repo);
      if (req.method === 'GET' || req.method === 'HEAD') return read(req, res, token, store, name);
      if (req.method === 'PUT') return write(req, res, token, repo, name);
      if (req.method === 'DELETE') {
        if (!mayDelete(token.role)) throw forbidden(token, 'delete anything');
        await checkDeletion(await viewOf(repo), name, expiryClock.deletionNowMs());
        await store.deleteExpired(name);
        return send(res, 200, { deleted: name });
      }
    }
    throw new AmberError('USAGE', `no such endpoint: ${req.method} ${path.slice(0, 200)}`, {
      hint: 'see docs/http-api.md',
    });
  }

  async function createRepository(
    res: ServerResponse,
    token: TokenInfo,
    repo: string,
    created: boolean,
  ): Promise<number> {
    if (!mayCreateRepository(token.role)) throw forbidden(token, 'create repositories');
    if (created) throw new AmberError('REPO_EXISTS', `repository ${repo} already exists`);
    mkdirSync(join(options.dataDir, 'repos', repo), { recursive: true, mode: 0o700 });
    return send(res, 201, { name: repo });
  }

  async function list(
    res: ServerResponse,
    token: TokenInfo,
    store: Store,
    prefix: string,
    limit: number,
  ): Promise<number> {
    if (prefix !== '' && !/^[a-z0-9_./-]*$/.test(prefix))
      throw new AmberError('INVALID_OBJECT_NAME', 'a listing prefix is part of an object name');
    // One JSON object per line, streamed: a listing of any size in bounded memory.
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    let listed = 0;
    for await (const info of store.list(prefix)) {
      if (!mayList(token.role, info.name) || info.name.startsWith('tmp/')) continue;
      if (listed++ >= limit) break;
      if (!res.write(`${JSON.stringify(info)}\n`)) await new Promise((resolve) => res.once('drain', resolve));
    }
    res.end();
    return 200;
  }

  async function read(
    req: IncomingMessage,
    res: ServerResponse,
    token: TokenInfo,
    store: Store,
    name: string,
  ): Promise<number> {
    if (!mayRead(token.role, name)) throw forbidden(token, `read ${name}`);
    const info = await store.stat(name);
    const headers = { 'content-type': 'application/octet-stream', 'x-amber-written': String(info.writtenMs ?? '') };
    if (req.method === 'HEAD') {
      res.writeHead(200, { ...headers, 'content-length': info.sizeBytes });
      res.end();
      return 200;
    }
    const range = parseRange(req.headers.range, info.sizeBytes);
    const offset = range?.offset ?? 0;
    const length = range?.length ?? info.sizeBytes;
    // One step of the budget, held for the whole read: the object goes out a piece at a time, each read
    // from the store once the one before has been handed to the socket, so a reader that reads slowly
    // holds one step, not the object.
    const lease = budget.open(token.id);
    const piece = Math.min(length, step);
    try {
      await lease.grow(piece);
      const first = await store.get(name, piece === info.sizeBytes ? undefined : { offset, length: piece });
      res.writeHead(range ? 206 : 200, {
        ...headers,
        'content-length': length,
        ...(range ? { 'content-range': `bytes ${offset}-${offset + length - 1}/${info.sizeBytes}` } : {}),
      });
      await sendPieces(
        res,
        first,
        async (at) => store.get(name, { offset: offset + at, length: Math.min(piece, length - at) }),
        length,
        uploadLimits,
      );
      metrics.sent(length);
    } finally {
      lease.release();
    }
    return range ? 206 : 200;
  }

  async function write(
    req: IncomingMessage,
    res: ServerResponse,
    token: TokenInfo,
    repo: string,
    name: string,
  ): Promise<number> {
    if (!mayWrite(token.role, name)) throw forbidden(token, `write ${name}`);
    const store = storeOf(repo);
    const declared = declaredLength(req, `PUT of ${name}`);
    if (declared > maxObjectBytes) {
      throw new AmberError(
        'OBJECT_TOO_LARGE',
        `the upload of ${name} declares ${declared} bytes; the vault accepts at most ${maxObjectBytes}`,
      );
    }
    const retention = retentionHeaders(req);
    const lease = budget.open(token.id);
    try {
      const bytes = await readBody(req, declared, uploadLimits, lease);
      let opened: Promise<RepositoryView | undefined> | undefined;
      const view = () => (opened ??= viewOrNothing(() => viewOf(repo)));
      try {
        // A decision's request must exist before anyone decides on it.
        const request = (await checkUpload(name, bytes, { view })).decidesOn;
        if (request !== undefined && !(await exists(store, objectName('requests', request)))) {
          throw new AmberError(
            'OBJECT_NOT_FOUND',
            `${name} decides on request ${request.slice(0, 16)}, which this repository does not hold`,
          );
        }
        // Judged by the vault's clock: a deletion or a forget by the time moving the clock forward
        // cannot raise, a lock or a retention bound by the time moving it back cannot lower.
        if (name.startsWith('condemns/'))
          await checkCondemnUpload((await view())!, name, bytes, expiryClock.deletionNowMs());
        if (name.startsWith('forgets/'))
          await checkForgetUpload((await view())!, name, bytes, expiryClock.deletionNowMs());
        if (name.startsWith('policies/'))
          await checkPolicyUpload((await view())!, name, bytes, expiryClock.retentionBaseMs());
        if (name.startsWith('grants/'))
          await checkGrantUpload((await view())!, name, bytes, expiryClock.retentionBaseMs(), maxRetentionMs);
        const base = await view();
        if (retention && base)
          await checkRetainUntil(base, name, retention.retainUntilMs, expiryClock.retentionBaseMs(), maxRetentionMs);
      } catch (error) {
        // A put of a name the repository holds fails with OBJECT_EXISTS whatever the bytes (the Store
        // contract): other bytes under an existing name are refused as a replacement first. Asked only
        // when a check failed, so an accepted upload costs no extra look-up.
        if (isAmberError(error) && (await exists(store, name))) {
          throw new AmberError(
            'OBJECT_EXISTS',
            `${name} already exists in repository ${repo}; objects are never replaced`,
            { cause: error },
          );
        }
        throw error;
      }
      await store.put(name, bytes, retention);
      metrics.received(bytes.length);
      if (rpoWatch && name.startsWith('snapshots/')) {
        rpoWatch.snapshotStored(repo, token, options.clock.nowMs());
        rpoWatch.check(options.clock.nowMs());
      }
      return send(res, 201, { stored: name, bytes: bytes.length });
    } finally {
      lease.release();
    }
  }

  const accessLog = createAccessLog(options.dataDir);

  const listener = (req: IncomingMessage, res: ServerResponse) => {
    const started = options.clock.monotonicMs();
    const token = checkToken(/^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1]);
    // Parsed once: the same repository, section and name are authorised, stored, logged and witnessed.
    let target: Target | undefined;
    const handled = Promise.resolve().then(() => {
      target = parseTarget(req.url ?? '/');
      return handle(req, res, token, target);
    });
    handled
      .then(
        (status) => status,
        (error: unknown) => {
          const failure = isAmberError(error)
            ? error
            : new AmberError('STORAGE_TRANSIENT', 'the vault failed unexpectedly', { cause: error });
          if (!isAmberError(error)) process.stderr.write(`vault: ${(error as Error)?.stack ?? String(error)}\n`);
          const details = failure.details ?? {};
          const status = typeof details.httpStatus === 'number' ? details.httpStatus : (STATUS[failure.code] ?? 500);
          // A body cut off for its rate or refused room in the budget half-way is not read on: the
          // connection goes once the answer is out.
          const cutOff =
            !req.complete && (failure.code === 'UPLOAD_TOO_SLOW' || typeof details.retryAfterSeconds === 'number');
          if (!res.headersSent) {
            if (cutOff) {
              res.setHeader('connection', 'close');
              res.once('finish', () => req.destroy());
            }
            if (typeof details.retryAfterSeconds === 'number')
              res.setHeader('retry-after', String(details.retryAfterSeconds));
            send(res, status, { error: { code: failure.code, message: failure.message, hint: failure.hint } });
          } else res.destroy();
          // An upload refused before its body was read: drop the rest instead of reading it.
          if (!req.complete && !cutOff) req.resume();
          return status;
        },
      )
      .then((status) => {
        metrics.request(req.method ?? '?', status, options.clock.monotonicMs() - started);
        const repo = target?.repo;
        if (
          token &&
          repo &&
          REPO_NAME.test(repo) &&
          req.method !== 'GET' &&
          req.method !== 'HEAD' &&
          target!.section !== 'protection'
        ) {
          const time = nowIso(options.clock);
          const text = accessLog(repo, {
            time,
            token: token.id,
            role: token.role,
            label: token.label,
            method: req.method,
            path: target!.path.slice(0, 600),
            status,
          });
          // Work that completes an operation puts the burst on the audit log at once.
          const commit =
            req.method === 'DELETE' ||
            (target!.section === 'objects' &&
              /^(snapshots|holds|policies|condemns|forgets|decisions|keys|revocations|witnesses)\//.test(
                target!.name ?? '',
              ));
          witness.record(repo, { text, token: token.id, role: token.role, label: token.label, time }, commit);
        }
      });
  };

  const server = options.tls
    ? createHttpsServer({ cert: readFileSync(options.tls.cert), key: readFileSync(options.tls.key) }, listener)
    : createHttpServer(listener);
  server.requestTimeout = 10 * 60_000;
  server.headersTimeout = 30_000;
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 8420, options.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `${options.tls ? 'https' : 'http'}://${host}:${address.port}`,
    server,
    async close() {
      if (rpoTimer) clearInterval(rpoTimer);
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await witness.close();
    },
  };
}

/** Often enough that a miss is announced within a quarter of the shortest RPO; at most every 15 s, at least every 1 s. */
function checkEveryMs(objectives: VaultObjective[]): number {
  const shortest = Math.min(...objectives.map((objective) => objective.rpoMs));
  return Math.min(15_000, Math.max(1_000, Math.floor(shortest / 4)));
}

/** What a request addresses, parsed once from the raw request target: authorised, stored and logged alike. */
interface Target {
  path: string;
  query: URLSearchParams;
  repo?: string;
  section?: 'objects' | 'protect' | 'protection' | 'enforcement';
  name?: string;
}

/**
 * The raw target as the client wrote it (req.url, never a normalised URL): a path with any
 * percent-encoding (an encoded dot, slash or percent), a backslash, or a `.`, `..` or empty segment is
 * refused, so no other path can stand behind the one that was authorised and logged.
 */
function parseTarget(raw: string): Target {
  const at = raw.indexOf('?');
  const path = at < 0 ? raw : raw.slice(0, at);
  const query = new URLSearchParams(at < 0 ? '' : raw.slice(at + 1));
  if (
    !path.startsWith('/') ||
    /[%\\]/.test(path) ||
    path
      .slice(1)
      .split('/')
      .some((segment) => segment === '' || segment === '.' || segment === '..')
  ) {
    throw new AmberError(
      'INVALID_OBJECT_NAME',
      `the path "${path.slice(0, 120)}" has a percent-encoding, a backslash, or a ., .. or empty segment; it was refused`,
      {
        hint: 'send object names as they are (lowercase a-z 0-9 _ . - joined by /), never encoded',
      },
    );
  }
  const match = /^\/v1\/repos\/([^/]+)(?:\/(objects|protect|protection|enforcement)(?:\/(.+))?)?$/.exec(path);
  if (!match) return { path, query };
  return { path, query, repo: match[1], section: match[2] as Target['section'], name: match[3] };
}

/** Object names are those of the repository format, never the store's own temporary files. */
function objectNameOf(raw: string, repo: string): string {
  checkObjectName(raw, `repository ${repo}`, 'tmp');
  return raw;
}

/** The names of a JSON body `{"names": [...]}`: anything else is the client's mistake, said so. */
function namesBody(body: unknown, endpoint: string): { names: string[] } & Record<string, unknown> {
  const usage = (what: string) =>
    new AmberError('USAGE', `${endpoint}: ${what}`, {
      hint: `POST /${endpoint} takes a JSON object; see docs/http-api.md`,
    });
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw usage('the body must be a JSON object');
  const { names } = body as Record<string, unknown>;
  if (!Array.isArray(names)) throw usage('"names" must be an array of object names');
  const bad = names.find((n) => typeof n !== 'string' || !isValidObjectName(n));
  if (bad !== undefined) throw usage(`${JSON.stringify(bad)?.slice(0, 80)} in "names" is not an object name`);
  return body as { names: string[] };
}

function protectBody(body: unknown): { names: string[] } & ObjectRetention {
  const { names, untilMs, mode } = namesBody(body, 'protect');
  // Dates beyond what a Date can hold (8.64e15 ms) are no retention anyone can mean.
  if (typeof untilMs !== 'number' || !Number.isSafeInteger(untilMs) || untilMs < 0 || untilMs > MAX_DATE_MS) {
    throw new AmberError(
      'USAGE',
      `protect: "untilMs" must be a whole number of milliseconds since 1970 (a date), not ${JSON.stringify(untilMs)?.slice(0, 40)}`,
    );
  }
  if (mode !== 'governance' && mode !== 'compliance')
    throw new AmberError(
      'USAGE',
      `protect: "mode" must be "governance" or "compliance", not ${JSON.stringify(mode)?.slice(0, 40)}`,
    );
  return { names, untilMs, mode };
}

async function exists(store: Store, name: string): Promise<boolean> {
  try {
    await store.stat(name);
    return true;
  } catch (error) {
    if (isAmberError(error, 'OBJECT_NOT_FOUND')) return false;
    throw error;
  }
}

function parseRange(header: string | undefined, size: number): { offset: number; length: number } | undefined {
  if (!header) return undefined;
  const match = /^bytes=(\d+)-(\d+)$/.exec(header);
  if (!match) throw new AmberError('USAGE', `unsupported range "${header}": use bytes=FIRST-LAST`);
  const first = Number(match[1]);
  const last = Math.min(Number(match[2]), size - 1);
  // A reader asks for bytes its records say are there: none being there is the object's fault (416).
  if (first > last)
    throw new AmberError('OBJECT_CORRUPT', `range ${header} is outside the object (${size} bytes)`, {
      details: { httpStatus: 416 },
    });
  return { offset: first, length: last - first + 1 };
}

/** The slowest body the vault waits for: below `minBytesPerSecond` on average after `graceMs`, it is cut off. */
interface UploadLimits {
  minBytesPerSecond: number;
  graceMs: number;
  nowMs(): number;
  /** Bytes of the memory budget taken at a time. */
  step: number;
}

/**
 * The body's length as declared. A body without a Content-Length (sent chunked) is refused with 411:
 * the vault checks the length against its limits before it reads anything.
 */
function declaredLength(req: IncomingMessage, what: string): number {
  const header = req.headers['content-length'];
  if (header === undefined) {
    throw new AmberError(
      'USAGE',
      `${what}: the request has no Content-Length${req.headers['transfer-encoding'] ? ' (its body is sent chunked)' : ''}; the vault needs the body's length before it reads it`,
      {
        hint: "send the body with a Content-Length header (Amber's own client always does)",
        details: { httpStatus: 411 },
      },
    );
  }
  const declared = Number(header);
  if (!Number.isSafeInteger(declared) || declared < 0)
    throw new AmberError('USAGE', `${what}: Content-Length ${header.slice(0, 40)} is not a number of bytes`);
  return declared;
}

/**
 * Watches a body's average rate once `graceMs` has passed, not counting time spent waiting for the
 * memory budget (the client is not at fault for that); calls `slow` once if it falls below the minimum.
 */
function watchRate(
  limits: UploadLimits,
  progress: () => number,
  paused: () => boolean,
  slow: (at: number, elapsedMs: number) => void,
): () => void {
  if (limits.minBytesPerSecond <= 0) return () => undefined;
  const started = limits.nowMs();
  let pausedMs = 0;
  let pausedSince: number | undefined;
  const watch = setInterval(
    () => {
      const now = limits.nowMs();
      if (paused()) {
        pausedSince ??= now;
        return;
      }
      if (pausedSince !== undefined) pausedMs += now - pausedSince;
      pausedSince = undefined;
      const elapsed = now - started - pausedMs;
      const at = progress();
      if (elapsed < limits.graceMs || (at * 1000) / elapsed >= limits.minBytesPerSecond) return;
      clearInterval(watch);
      slow(at, elapsed);
    },
    Math.max(20, Math.min(1000, limits.graceMs / 4)),
  );
  return () => clearInterval(watch);
}

/**
 * Reads a body of `declared` bytes, growing `lease` a step at a time as its bytes arrive: the body is
 * not read on (TCP holds the rest back) while it waits for the next step, and a body that cannot get
 * one in time fails with 503. So a body that trickles holds only the bytes it has delivered.
 */
function readBody(req: IncomingMessage, declared: number, limits: UploadLimits, lease: Lease): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // Allocated once the first step is granted; the system commits its pages only as bytes are
    // written into them, so what is resident follows what arrived (and what the budget counts).
    let body: Buffer | undefined;
    let at = 0;
    let settled = false;
    let growing = false;
    let ended = false;
    const queue: Buffer[] = [];
    // A body that trickles holds what it has delivered: one far below the minimum rate is cut off, so
    // its bytes go back to the budget instead of staying held for the ten-minute timeout.
    const stopWatch = watchRate(
      limits,
      () => at,
      () => growing,
      (sent, elapsed) => {
        finish(
          new AmberError(
            'UPLOAD_TOO_SLOW',
            `the upload sent ${sent} of ${declared} bytes in ${Math.round(elapsed / 1000)} s, slower than the vault's minimum of ${limits.minBytesPerSecond} bytes a second; it was cut off`,
            {
              hint: 'send the body as fast as the link allows; a link this slow needs a vault with a lower minimum rate',
            },
          ),
        );
      },
    );
    const finish = (error?: unknown) => {
      if (settled) return;
      settled = true;
      stopWatch();
      queue.length = 0;
      if (error !== undefined) reject(error);
      else if (at === declared) resolve(body ?? Buffer.alloc(0));
      else reject(new AmberError('USAGE', `the body ended after ${at} of ${declared} bytes`));
    };
    const drain = () => {
      while (!settled && queue.length > 0) {
        const chunk = queue[0];
        if (at + chunk.length > lease.held) {
          growing = true;
          req.pause();
          const want = Math.min(declared, Math.max(at + chunk.length, lease.held + limits.step)) - lease.held;
          lease.grow(want).then(
            () => {
              growing = false;
              body ??= Buffer.allocUnsafeSlow(declared);
              drain();
              if (!growing && !settled) req.resume();
            },
            (error: unknown) => finish(error),
          );
          return;
        }
        queue.shift();
        chunk.copy(body!, at);
        at += chunk.length;
      }
      if (ended) finish();
    };
    req.on('data', (chunk: Buffer) => {
      if (settled) return;
      if (at + queue.reduce((sum, c) => sum + c.length, 0) + chunk.length > declared) {
        finish(new AmberError('OBJECT_TOO_LARGE', 'the body is longer than its content-length'));
        req.destroy();
        return;
      }
      queue.push(chunk);
      if (!growing) drain();
    });
    req.on('end', () => {
      ended = true;
      if (!growing) drain();
    });
    // A client that goes away mid-body ('aborted', a reset) is no fault of the vault's.
    req.on('error', (error) => finish(new AmberError('STORAGE_TRANSIENT', 'the upload was cut off', { cause: error })));
    req.on('close', () => {
      if (!ended) finish(new AmberError('STORAGE_TRANSIENT', 'the upload was cut off'));
    });
  });
}

/**
 * Sends `length` bytes a piece at a time: `first`, then `next(at)` for each further piece, each fetched
 * once the one before is handed to the socket. Progress counts in slices of a piece, so a reader slower
 * than the minimum rate is cut off, and one that reads as fast as the rate allows is not.
 */
async function sendPieces(
  res: ServerResponse,
  first: Uint8Array,
  next: (at: number) => Promise<Uint8Array>,
  length: number,
  limits: UploadLimits,
): Promise<void> {
  const SLICE = 64 * 1024;
  let at = 0;
  const stopWatch = watchRate(
    limits,
    () => at,
    () => false,
    () => res.destroy(),
  );
  try {
    let piece = first;
    let sent = 0;
    for (;;) {
      sent += piece.length;
      const last = sent >= length;
      await new Promise<void>((resolve, reject) => {
        const onClose = () => reject(new AmberError('STORAGE_TRANSIENT', 'the reader went away'));
        res.once('close', onClose);
        const done = (error?: Error | null) => {
          res.off('close', onClose);
          if (error) reject(error);
          else resolve();
        };
        // Slices of one buffer: no copy, and each one counts once the socket has taken it.
        for (let from = 0; from < piece.length; from += SLICE) {
          const slice = piece.subarray(from, Math.min(piece.length, from + SLICE));
          const end = from + SLICE >= piece.length;
          const counted = (error?: Error | null) => {
            if (!error) at += slice.length;
            if (end) done(error);
          };
          if (end && last) res.end(slice, () => counted());
          else res.write(slice, counted);
        }
        if (piece.length === 0) {
          if (last) res.end(() => done());
          else done();
        }
      });
      if (last) return;
      piece = await next(sent);
      if (piece.length === 0)
        throw new AmberError('STORAGE_TRANSIENT', `the object shrank while it was read (${sent} of ${length} bytes)`);
    }
  } finally {
    stopWatch();
  }
}

async function readJson(req: IncomingMessage, limits: UploadLimits, lease: Lease, endpoint: string): Promise<unknown> {
  const declared = declaredLength(req, `POST /${endpoint}`);
  if (declared > MAX_JSON_BYTES)
    throw new AmberError(
      'OBJECT_TOO_LARGE',
      `POST /${endpoint}: the body declares ${declared} bytes; a request body is at most ${MAX_JSON_BYTES} bytes`,
    );
  const text = (await readBody(req, declared, limits, lease)).toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new AmberError('USAGE', 'the request body is not JSON', {
      hint: 'send a JSON object as docs/http-api.md shows',
    });
  }
}

function send(res: ServerResponse, status: number, body: unknown): number {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
  return status;
}

function sendText(res: ServerResponse, status: number, text: string): number {
  res.writeHead(status, { 'content-type': 'text/plain; version=0.0.4', 'content-length': Buffer.byteLength(text) });
  res.end(text);
  return status;
}

const notFound = (repo: string) =>
  new AmberError('REPO_NOT_FOUND', `no repository ${repo.slice(0, 64)} for this token`, {
    hint: "check the repository name in the URL and the token's scope",
  });

const forbidden = (token: TokenInfo, what: string) =>
  new AmberError('ROLE_FORBIDDEN', `a ${token.role} token may not ${what}`, {
    hint: 'use a token with the role this needs (docs/http-api.md lists them)',
  });

function enforcement(store: Store) {
  const base = store.enforcement();
  return {
    enforcer: 'server',
    holdsAgainst: [
      'backup clients and their credentials (tokens can add, never change or remove)',
      'root on the backed-up hosts',
      ...base.holdsAgainst,
    ],
    notes: `The vault enforces write-once and retention itself; on its own disk: ${base.notes}`,
  };
}

/**
 * A per-repository access log: one JSON line per mutating request, each naming the hash of the line
 * before, so a removed or edited line breaks the chain. The last hash is kept in memory.
 */
function createAccessLog(dataDir: string): (repo: string, line: Record<string, unknown>) => string {
  const dir = join(dataDir, 'vault', 'logs');
  const lastHash = new Map<string, string>();
  return (repo, line) => {
    const path = join(dir, `${repo}.jsonl`);
    let previous = lastHash.get(repo);
    if (previous === undefined) {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      let text = '';
      try {
        text = readFileSync(path, 'utf8');
      } catch {
        // first line of this repository's log
      }
      const last = text.trimEnd().split('\n').at(-1) ?? '';
      previous = createHash('sha256').update(last).digest('hex');
    }
    const text = JSON.stringify({ ...line, previous });
    appendFileSync(path, `${text}\n`, { mode: 0o600 });
    lastHash.set(repo, createHash('sha256').update(text).digest('hex'));
    return text;
  };
}

/** X-Amber-Retain-Until and X-Amber-Retention-Mode, both or neither. */
function retentionHeaders(
  req: IncomingMessage,
): { retainUntilMs: number; mode: 'governance' | 'compliance' } | undefined {
  const until = req.headers['x-amber-retain-until'];
  const mode = req.headers['x-amber-retention-mode'];
  if (until === undefined && mode === undefined) return undefined;
  const retainUntilMs = Number(until);
  if (
    !Number.isSafeInteger(retainUntilMs) ||
    retainUntilMs < 0 ||
    retainUntilMs > MAX_DATE_MS ||
    (mode !== 'governance' && mode !== 'compliance')
  ) {
    throw new AmberError(
      'USAGE',
      'X-Amber-Retain-Until must be a date in epoch milliseconds and X-Amber-Retention-Mode governance or compliance, both or neither',
    );
  }
  return { retainUntilMs, mode };
}

/** Verified records by repository, in memory: oldest dropped first once `maxBytes` of payload is held. */
function createMemoryRecordCache(maxBytes: number): (repo: string) => RecordCache {
  const records = new Map<string, CachedRecord>();
  let bytes = 0;
  return (repo) => ({
    get: (name) => records.get(`${repo}\0${name}`),
    remember(name, record) {
      const key = `${repo}\0${name}`;
      if (records.has(key) || record.payload.length > maxBytes / 16) return;
      records.set(key, record);
      bytes += record.payload.length;
      for (const [old, { payload }] of records) {
        if (bytes <= maxBytes) break;
        records.delete(old);
        bytes -= payload.length;
      }
    },
  });
}
