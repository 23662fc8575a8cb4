// A restore drill: recovery practised and measured. One snapshot is chosen (a given one, the newest,
// or one at random within a window), restored in full into scratch space that held nothing, read
// back and compared with the snapshot byte for byte and entry by entry, handed to the user's check
// commands, and removed. Each stage is timed; the achieved RTO (start to verified) is compared with
// the objective, and the whole result is written as a signed audit entry (action "drill") into the
// repository's tamper-evident log, so the evidence is write-once, signed by the key that ran it and
// retained as long as the log. `amber drill run` and the agent's drill jobs both come here.
import { spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { visible } from '../core/visible-text.ts';
import { AmberError } from '../core/errors.ts';
import { formatDurationMs, isoDate } from '../core/units.ts';
import { checkRestoredTree, type RestoreCheckProblem } from '../engine/restore-check.ts';
import { restore } from '../engine/restore.ts';
import { findSnapshot, listSnapshots, type SnapshotEntry } from '../engine/snapshots.ts';
import { appendAudit } from '../governance/audit-log.ts';
import type { Operation } from '../governance/operation.ts';
import type { Repository } from '../repo/repository.ts';
import { blockedAncestor, type ScratchServer, startScratchServer } from '../source/database/scratch-server.ts';
import {
  checkDatabaseDrill,
  type DatabaseKind,
  databaseKindOf,
  databasesOf,
  type ReadBackDatabase,
  readBack,
  restoreIntoServer,
  runSqlCheck,
  serverEnv,
} from './drill-database.ts';

export type DrillSelect = 'latest' | 'random';

export interface DrillOptions {
  /** The repository drilled, opened with a full key (a drill reads everything). */
  repo: Repository;
  /**
   * Whose audit log gets the record: the drilled repository's own operation, or the site's own
   * repository when the drilled one was read with read-only access (a vault reader token).
   */
  recordIn: Operation;
  /** `latest`, `random`, or a snapshot id (prefix). */
  select: DrillSelect | string;
  /** Only snapshots taken this recently (ms before now). */
  withinMs?: number;
  host?: string;
  /** Only snapshots that backed up this path. */
  path?: string;
  /** The source's name, as reports group drills (default: host and paths of the snapshot). */
  source?: string;
  /** Restore here (must not exist, or be an empty directory); default a fresh directory under `scratch`. */
  target?: string;
  /** Parent of the fresh directory when no target is given (default the system's temporary directory). */
  scratch?: string;
  keep?: boolean;
  rtoMs?: number;
  checks?: string[];
  /** SQL queries run against a database snapshot's throwaway server; each must return a row. */
  checkSql?: string[];
  /** Which database of a whole-server snapshot the SQL checks run in (default its only one). */
  database?: string;
  checkTimeoutMs?: number;
  /** Seeds the random choice, so a drill can be repeated (and tested). */
  seed?: number;
  signal?: AbortSignal;
  onStage?: (stage: DrillStage) => void;
}

export interface DrillStage {
  name: 'select' | 'server' | 'restore' | 'verify' | 'queries' | 'checks' | 'cleanup';
  start: string;
  seconds: number;
  result: 'ok' | 'failed' | 'skipped';
  detail?: string;
}

export interface DrillCheck {
  command: string;
  exit: number | null;
  signal: string | null;
  timedOut: boolean;
  /** Killed because the drill was interrupted (SIGINT, SIGTERM). */
  interrupted?: boolean;
  seconds: number;
  /** The last lines of its output (stdout and stderr together), at most OUTPUT_TAIL_BYTES. */
  output: string[];
}

/** What a drill found: the record written into the audit log, and its entry's name and hash. */
export interface DrillRecord {
  version: 1;
  time: string;
  source: string;
  snapshot: string;
  snapshotTime: string;
  host: string;
  paths: string[];
  selection: {
    mode: 'given' | DrillSelect;
    withinSeconds: number | null;
    host: string | null;
    path: string | null;
    candidates: number;
    seed: number | null;
  };
  passed: boolean;
  /** Why it failed, each a sentence; empty when it passed. */
  reasons: string[];
  rtoSeconds: number;
  rtoObjectiveSeconds: number | null;
  rpoSeconds: number;
  restoredBytes: number;
  restoredFiles: number;
  restoredEntries: number;
  stages: DrillStage[];
  checks: DrillCheck[];
  /** A database snapshot's drill: the throwaway server it was restored into, and what each database answered. */
  database?: {
    kind: DatabaseKind;
    server: string;
    databases: ReadBackDatabase[];
  };
  /** The first problems the read-back found (at most 20), and how many there were. */
  problems: RestoreCheckProblem[];
  problemCount: number;
  notChecked: string[];
  /** Where it was restored; `kept` when --keep left it there. */
  target: string;
  kept: boolean;
  /** Who ran it and on which repository. */
  actor: string;
  repository: string;
}

export interface DrillResult extends DrillRecord {
  /** The audit entry's hash: the drill's id. */
  id: string;
  entry: string;
  recordedIn: string;
}

export const DEFAULT_CHECK_TIMEOUT_MS = 10 * 60_000;
const OUTPUT_TAIL_LINES = 20;
const OUTPUT_TAIL_BYTES = 4096;

export async function runDrill(options: DrillOptions): Promise<DrillResult> {
  const { repo } = options;
  if (options.recordIn.key.role !== 'full')
    throw new AmberError(
      'WRITE_ONLY_KEY',
      'a drill is recorded with a full key: a record signed by a write-only key is not evidence (such a key cannot read the repository), and drill list reports it as untrusted',
      { hint: 'open the repository that keeps the record (--repo) with a full key' },
    );
  const clock = repo.clock;
  const startMs = clock.nowMs();
  const stages: DrillStage[] = [];
  const reasons: string[] = [];
  const stage = async <T>(
    name: DrillStage['name'],
    run: () => Promise<T>,
    detail?: (value: T) => string,
  ): Promise<T> => {
    const begun = clock.nowMs();
    const entry: DrillStage = { name, start: isoDate(begun), seconds: 0, result: 'ok' };
    try {
      const value = await run();
      if (detail) entry.detail = detail(value);
      return value;
    } catch (error) {
      entry.result = 'failed';
      entry.detail = (error as Error).message;
      throw error;
    } finally {
      entry.seconds = (clock.nowMs() - begun) / 1000;
      stages.push(entry);
      options.onStage?.(entry);
    }
  };
  const skip = (name: DrillStage['name'], detail: string) => {
    const entry: DrillStage = { name, start: isoDate(clock.nowMs()), seconds: 0, result: 'skipped', detail };
    stages.push(entry);
    options.onStage?.(entry);
  };

  const seed = options.select === 'random' ? (options.seed ?? randomInt(2 ** 31)) : undefined;
  const { snapshot, candidates } = await stage(
    'select',
    () => selectSnapshot(repo, { ...options, seed, nowMs: startMs }),
    (chosen) => `${chosen.snapshot.id.slice(0, 8)} of ${chosen.snapshot.snapshot.time}, one of ${chosen.candidates}`,
  );
  const dumpKind = databaseKindOf(snapshot);
  const noServer =
    dumpKind && checkDatabaseDrill(snapshot, { database: options.database, sql: options.checkSql ?? [] });
  // Without server binaries, a database snapshot is drilled as its dump's files, and says so.
  const kind = noServer ? undefined : dumpKind;
  if (noServer) skip('server', noServer);
  if (!dumpKind && options.database !== undefined)
    throw new AmberError(
      'USAGE',
      `snapshot ${snapshot.id.slice(0, 8)} is a backup of files: --database names a database of a database snapshot`,
    );
  if (!dumpKind && (options.checkSql ?? []).length > 0)
    throw new AmberError(
      'USAGE',
      `snapshot ${snapshot.id.slice(0, 8)} is a backup of files: --check-sql checks a database snapshot`,
      { hint: 'check files with --check COMMAND' },
    );
  const { target, existed, mode } = prepareTarget(options, kind !== undefined);
  let restoredFiles = 0;
  let restoredEntries = 0;
  let restoredBytes = 0;
  let problems: RestoreCheckProblem[] = [];
  let problemCount = 0;
  let notChecked: string[] = [];
  let verified = false;
  let rtoMs = 0;
  let server: ScratchServer | undefined;
  let database: DrillRecord['database'];
  const checks: DrillCheck[] = [];
  const timeoutMs = options.checkTimeoutMs ?? DEFAULT_CHECK_TIMEOUT_MS;
  const checkFailed = (check: DrillCheck) =>
    reasons.push(
      `the check \`${check.command}\` ${check.interrupted ? 'was interrupted (the drill was stopped)' : check.timedOut ? `did not finish within ${timeoutMs / 1000} s` : check.exit === null && check.signal ? `was ended by ${check.signal}` : check.exit === null ? 'failed' : `exited ${check.exit}`}${check.output.length ? `: ${check.output.at(-1)}` : ''}`,
    );
  try {
    if (kind !== undefined) {
      const dbKind = kind;
      // A database: restored into a throwaway server, every table read in full, the SQL checks run.
      server = await stage(
        'server',
        () => startScratchServer(dbKind, { dir: target }),
        (s) => `${dbKind === 'postgresql' ? 'PostgreSQL' : 'MariaDB'} ${s.version} on 127.0.0.1:${s.port}`,
      ).catch((error: unknown) => {
        reasons.push(`the throwaway server did not start: ${(error as Error).message}`);
        return undefined;
      });
      const restored = server
        ? await stage(
            'restore',
            () => restoreIntoServer(repo, snapshot, server!, options.signal),
            (r) => `${r.databases.length} database(s), ${r.bytes} bytes of dump`,
          ).catch((error: unknown) => {
            reasons.push(`the restore failed: ${(error as Error).message}`);
            return undefined;
          })
        : undefined;
      if (!server) skip('restore', 'no server to restore into');
      if (server && restored) {
        restoredBytes = restored.bytes;
        restoredFiles = restored.databases.length;
        const answered = await stage(
          'verify',
          () => readBack(server!, restored.databases, options.signal),
          (dbs) => dbs.map((d) => `${d.name}: ${d.tables} tables, ${d.rows} rows`).join('; '),
        ).catch((error: unknown) => {
          reasons.push(`the restored database did not answer: ${(error as Error).message}`);
          return undefined;
        });
        if (answered) {
          database = { kind: dbKind, server: server.version, databases: answered };
          restoredEntries = answered.reduce((n, d) => n + d.tables, 0);
          verified = true;
          notChecked.push(
            'that the restored rows equal the source’s: the dump’s bytes are checked against their blob ids and the dump ran without an error, but no row checksums were recorded at backup time',
          );
        }
      } else skip('verify', 'nothing was restored');
      const sqls = options.checkSql ?? [];
      if (verified && server && sqls.length > 0) {
        const inDatabase = options.database ?? databasesOf(snapshot)[0];
        await stage(
          'queries',
          async () => {
            for (const query of sqls) {
              const result = await runSqlCheck(server!, inDatabase, query, timeoutMs, options.signal);
              const check: DrillCheck = { command: `sql: ${query}`, signal: null, ...result };
              checks.push(check);
              if (check.exit !== 0) checkFailed(check);
            }
            if (checks.some((c) => c.exit !== 0)) throw new AmberError('DRILL_FAILED', 'an SQL check failed');
          },
          () => `${sqls.length} SQL check(s) passed in ${inDatabase}`,
        ).catch(() => {});
      }
      // The RTO of a database: until it answered, and answered the SQL checks.
      rtoMs = clock.nowMs() - startMs;
    } else {
      const restored = await stage(
        'restore',
        () => restore({ repo, snapshot, target, signal: options.signal }),
        (r) => `${r.files} files, ${r.dirs} directories, ${r.bytesWritten} bytes written`,
      ).catch((error: unknown) => {
        reasons.push(`the restore failed: ${(error as Error).message}`);
        return undefined;
      });
      if (restored) {
        restoredFiles = restored.files;
        for (const error of restored.errors.slice(0, 5))
          reasons.push(`the restore could not restore ${error.path}: ${error.message}`);
        if (restored.errors.length > 5)
          reasons.push(`… and ${restored.errors.length - 5} more entries could not be restored`);
        const check = await stage(
          'verify',
          () => checkRestoredTree(repo, snapshot, target, restored, options.signal),
          (c) =>
            `${c.files} files, ${c.dirs} directories, ${c.others} other entries, ${c.bytes} bytes read back; ${c.problems.length} problem(s)`,
        ).catch((error: unknown) => {
          reasons.push(`the read-back failed: ${(error as Error).message}`);
          return undefined;
        });
        if (check) {
          restoredBytes = check.bytes;
          restoredEntries = check.files + check.dirs + check.others;
          problems = check.problems.slice(0, 20);
          problemCount = check.problems.length;
          notChecked = check.notChecked;
          if (noServer)
            notChecked.push(
              `that the database restores and answers: no throwaway server could be started (${noServer})`,
            );
          for (const p of check.problems.slice(0, 5)) reasons.push(`${p.path} ${p.problem}`);
          if (check.problems.length > 5) reasons.push(`… and ${check.problems.length - 5} more differences`);
          verified = check.problems.length === 0 && restored.errors.length === 0;
        }
      } else skip('verify', 'nothing was restored');
      rtoMs = clock.nowMs() - startMs;
    }
    const commands = options.checks ?? [];
    const sqlFailed = checks.some((c) => c.exit !== 0);
    if (verified && !sqlFailed && commands.length > 0) {
      const env = server ? serverEnv(server, options.database ?? databasesOf(snapshot)[0]) : {};
      await stage(
        'checks',
        async () => {
          const before = checks.length;
          for (const command of commands) {
            if (options.signal?.aborted) {
              reasons.push(`the drill was interrupted before the check \`${command}\` ran`);
              continue;
            }
            const result = await runCheck(command, {
              target,
              snapshot: snapshot.id,
              source: options.source,
              timeoutMs,
              signal: options.signal,
              env,
            });
            checks.push(result);
            if (result.exit !== 0) checkFailed(result);
          }
          if (options.signal?.aborted || checks.slice(before).some((c) => c.exit !== 0))
            throw new AmberError('DRILL_FAILED', 'a check failed');
        },
        () => `${commands.length} check(s) passed`,
      ).catch(() => {});
    } else if (commands.length > 0) skip('checks', verified ? 'an SQL check failed' : 'the restore was not verified');
    if (!verified && (options.checkSql ?? []).length > 0) skip('queries', 'the restore was not verified');
  } finally {
    if (options.keep) {
      // The server is stopped, its data directory kept: start it again with its own tools to look.
      await server?.stop({ keepFiles: true }).catch(() => {});
      if (existed && mode !== undefined) chmodSync(target, mode);
      skip('cleanup', server ? `kept at ${target} (the server stopped, its data directory kept)` : `kept at ${target}`);
    } else
      await stage(
        'cleanup',
        async () => {
          await server?.stop();
          removeRestoredTree(target, existed);
          if (existed && mode !== undefined) chmodSync(target, mode);
        },
        () => (existed ? `emptied ${target}` : `removed ${target}`),
      ).catch((error: unknown) => {
        reasons.push(`the restored tree could not be removed: ${(error as Error).message}`);
      });
  }
  // A snapshot dated ahead of this host's clock (the backing-up host's clock ran fast, or this one
  // is slow): still a recovery point, but its age says nothing, so the record says so.
  const aheadMs = Date.parse(snapshot.snapshot.time) - startMs;
  if (aheadMs > 5 * 60_000)
    notChecked.push(
      `the RPO at the time: the snapshot is dated ${formatDurationMs(aheadMs)} after this host's clock (a clock that is wrong on one of the hosts)`,
    );
  const rtoObjectiveMs = options.rtoMs;
  if (rtoObjectiveMs !== undefined && verified && rtoMs > rtoObjectiveMs)
    reasons.push(`objective missed: the RTO achieved was ${rtoMs / 1000} s, the objective ${rtoObjectiveMs / 1000} s`);
  const record: DrillRecord = {
    version: 1,
    time: isoDate(startMs),
    source: options.source ?? `${snapshot.snapshot.host}:${snapshot.snapshot.paths.join(',')}`,
    snapshot: snapshot.id,
    snapshotTime: snapshot.snapshot.time,
    host: snapshot.snapshot.host,
    paths: snapshot.snapshot.paths,
    selection: {
      mode: options.select === 'latest' || options.select === 'random' ? options.select : 'given',
      withinSeconds: options.withinMs === undefined ? null : options.withinMs / 1000,
      host: options.host ?? null,
      path: options.path ?? null,
      candidates,
      seed: seed ?? null,
    },
    passed: reasons.length === 0,
    reasons,
    rtoSeconds: rtoMs / 1000,
    rtoObjectiveSeconds: rtoObjectiveMs === undefined ? null : rtoObjectiveMs / 1000,
    rpoSeconds: Math.max(0, Math.round((startMs - Date.parse(snapshot.snapshot.time)) / 1000)),
    restoredBytes,
    restoredFiles,
    restoredEntries,
    stages,
    checks,
    ...(database ? { database } : {}),
    problems,
    problemCount,
    notChecked,
    target,
    kept: options.keep === true,
    actor: repo.actor,
    repository: repo.config.repositoryId,
  };
  const { recordIn } = options;
  const written = await appendAudit(recordIn, { action: 'drill', target: snapshot.id, details: { ...record } });
  return { ...record, id: written.hash, entry: written.name, recordedIn: recordIn.store.location };
}

/** The snapshot to drill, and how many were eligible. */
export async function selectSnapshot(
  repo: Repository,
  options: SelectOptions,
): Promise<{ snapshot: SnapshotEntry; candidates: number }> {
  if (options.select !== 'latest' && options.select !== 'random')
    return { snapshot: await findSnapshot(repo, options.select), candidates: 1 };
  return chooseSnapshot(await listSnapshots(repo), options);
}

type SelectOptions = Pick<DrillOptions, 'select' | 'withinMs' | 'host' | 'path'> & { seed?: number; nowMs: number };

/**
 * Among the snapshots (oldest first) that match the window, host and path: the newest, or one drawn
 * with the seed, every eligible snapshot equally likely (AWS Backup's LATEST_WITHIN_WINDOW and
 * RANDOM_WITHIN_WINDOW).
 */
export function chooseSnapshot(
  entries: readonly SnapshotEntry[],
  options: SelectOptions,
): { snapshot: SnapshotEntry; candidates: number } {
  const eligible = entries.filter(
    (entry) =>
      (options.withinMs === undefined || Date.parse(entry.snapshot.time) >= options.nowMs - options.withinMs) &&
      (options.host === undefined || entry.snapshot.host === options.host) &&
      (options.path === undefined || entry.snapshot.paths.includes(options.path)),
  );
  if (eligible.length === 0) {
    const filters = [
      options.withinMs !== undefined ? `within ${formatDurationMs(options.withinMs)}` : '',
      options.host ? `of host ${options.host}` : '',
      options.path ? `of path ${options.path}` : '',
    ].filter(Boolean);
    throw new AmberError(
      'SNAPSHOT_NOT_FOUND',
      `no snapshot to drill${filters.length ? ` ${filters.join(', ')}` : ''}`,
      {
        hint: 'list them with `amber snapshots`; widen --within or drop --host/--path',
      },
    );
  }
  const index =
    options.select === 'latest' ? eligible.length - 1 : Math.floor(seededRandom(options.seed ?? 0) * eligible.length);
  return { snapshot: eligible[index], candidates: eligible.length };
}

/** mulberry32: a small, well-spread generator; the drill's seed is recorded, so a choice can be replayed. */
export function seededRandom(seed: number): number {
  let t = (seed + 0x6d2b79f5) >>> 0;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

/**
 * A directory that holds nothing: the drill never restores over anything. Absolute (the checks run
 * in it with AMBER_DRILL_TARGET naming it); `existed` when the user's own empty directory (a mount
 * point, say), which the cleanup empties but leaves in place.
 */
function prepareTarget(options: DrillOptions, forServer: boolean): { target: string; existed: boolean; mode?: number } {
  const prepared = prepareEmptyTarget(options);
  // A throwaway database server runs as its own user (postgres, mysql) when this is root: it must
  // pass through the scratch directory to its own inside (traverse only, never list or write).
  if (forServer && process.getuid?.() === 0) {
    // Refused before anything is recorded: a usage problem, not a failed drill.
    const blocked = blockedAncestor(dirname(prepared.target));
    if (blocked) {
      if (!prepared.existed) rmSync(prepared.target, { recursive: true, force: true });
      throw new AmberError(
        'USAGE',
        `the throwaway database server runs as an unprivileged account, which cannot pass through ${blocked} (not searchable by others)`,
        {
          hint: `chmod o+x ${blocked}, or give a --target (agent: scratch) under a directory it can pass through, such as /var/tmp`,
        },
      );
    }
    const mode = lstatSync(prepared.target).mode & 0o7777;
    chmodSync(prepared.target, (mode & ~0o077) | 0o011);
    return { ...prepared, mode };
  }
  return prepared;
}

function prepareEmptyTarget(options: DrillOptions): { target: string; existed: boolean } {
  if (options.target === undefined) {
    const parent = resolve(options.scratch ?? tmpdir());
    mkdirSync(parent, { recursive: true, mode: 0o700 });
    return { target: mkdtempSync(join(parent, 'amber-drill-')), existed: false };
  }
  const target = resolve(options.target);
  const stats = lstatSync(target, { throwIfNoEntry: false });
  if (!stats) {
    // The parents as needed, the target itself by this call alone: had something (a symlink to
    // elsewhere) appeared there since the lstat, this fails instead of restoring into it.
    mkdirSync(dirname(target), { recursive: true, mode: 0o700 });
    mkdirSync(target, { mode: 0o700 });
    return { target, existed: false };
  }
  const uid = process.getuid?.();
  if (stats.isDirectory() && ((stats.mode & 0o022) !== 0 || (uid !== undefined && stats.uid !== uid)))
    throw new AmberError(
      'USAGE',
      `${options.target} is writable by ${stats.uid !== uid ? `its owner, uid ${stats.uid}` : 'other users'}; a drill restores only into space no one else can change while it is checked`,
      { hint: `chmod go-w ${options.target} (as its owner), or give a --target that does not exist yet` },
    );
  if (!stats.isDirectory() || readdirSync(target).length > 0)
    throw new AmberError(
      'USAGE',
      `${options.target} is not an empty directory; a drill restores only into empty space`,
      {
        hint: 'give a --target that does not exist yet (it is created), or leave --target out for a fresh temporary directory',
      },
    );
  return { target, existed: true };
}

/**
 * Removes a restored tree, making its read-only directories writable first (as a user other than
 * root they block it); of a directory that existed before the drill, only what is in it.
 */
function removeRestoredTree(path: string, keepRoot: boolean): void {
  const remove = () => {
    if (!keepRoot) return rmSync(path, { recursive: true, force: true });
    for (const name of readdirSync(path, { encoding: 'buffer' }))
      rmSync(Buffer.concat([Buffer.from(path), Buffer.from('/'), name]), { recursive: true, force: true });
  };
  try {
    remove();
  } catch {
    openDirectories(path, !keepRoot);
    remove();
  }
}

function openDirectories(dir: string | Buffer, self = true): void {
  if (self) chmodSync(dir, 0o700);
  for (const entry of readdirSync(dir, { withFileTypes: true, encoding: 'buffer' }))
    if (entry.isDirectory()) openDirectories(Buffer.concat([Buffer.from(dir), Buffer.from('/'), entry.name]));
}

interface CheckContext {
  target: string;
  /** More of the environment: how a database drill's checks reach the throwaway server. */
  env?: Record<string, string>;
  snapshot: string;
  source?: string;
  timeoutMs: number;
  signal?: AbortSignal;
}

/**
 * One check command through /bin/sh, in the restored root, with AMBER_DRILL_TARGET and
 * AMBER_DRILL_SNAPSHOT set; killed with its whole process group at the timeout or when the drill
 * is interrupted, and whatever it left running in its group (a daemon, a server it started) killed
 * when it exits, so nothing of a check outlives it or holds the scratch space. (A process that
 * leaves the group with setsid escapes this; a check should not do that.)
 */
export function runCheck(command: string, context: CheckContext): Promise<DrillCheck> {
  const startMs = performance.now();
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', command], {
      cwd: context.target,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        AMBER_DRILL_TARGET: context.target,
        AMBER_DRILL_SNAPSHOT: context.snapshot,
        ...(context.source ? { AMBER_DRILL_SOURCE: context.source } : {}),
        ...context.env,
      },
    });
    // The last bytes, decoded once at the end (a character split between two reads stays whole).
    let tail = Buffer.alloc(0);
    const keep = (piece: Buffer) => {
      tail = Buffer.concat([tail, piece]);
      if (tail.length > OUTPUT_TAIL_BYTES * 2) tail = tail.subarray(-OUTPUT_TAIL_BYTES * 2);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    let timedOut = false;
    let interrupted = false;
    const kill = () => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {}
    };
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, context.timeoutMs);
    const onAbort = () => {
      interrupted = true;
      kill();
    };
    if (context.signal?.aborted) onAbort();
    else context.signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (error) => keep(Buffer.from(`${error.message}\n`)));
    // The shell is done: what it left behind in its group goes too (and closes the pipes it held).
    child.on('exit', kill);
    child.on('close', (exit, signal) => {
      clearTimeout(timer);
      context.signal?.removeEventListener('abort', onAbort);
      kill();
      const text = tail.subarray(-OUTPUT_TAIL_BYTES).toString('utf8');
      const lines = visible(text.startsWith('\uFFFD') ? text.slice(1) : text).split('\n');
      if (lines.at(-1) === '') lines.pop();
      resolve({
        command,
        exit,
        signal,
        timedOut,
        interrupted,
        seconds: (performance.now() - startMs) / 1000,
        output: lines.slice(-OUTPUT_TAIL_LINES),
      });
    });
  });
}
