// A drill of a database snapshot: the dump restored into a throwaway server of its kind (started on
// 127.0.0.1 in the drill's scratch space, src/source/database/scratch-server.ts), every table of
// every restored database read in full (count(*)), and the user's SQL checks run against it, so
// the RTO a drill measures ends when the database answers, not when its bytes are back.
import { AmberError } from '../core/errors.ts';
import { restoreDatabase } from '../engine/restore-to-source.ts';
import type { SnapshotEntry } from '../engine/snapshots.ts';
import type { Repository } from '../repo/repository.ts';
import { identifier, sql as mysql, parseMysqlUrl } from '../source/database/mysql.ts';
import { parsePostgresUrl, psql } from '../source/database/postgresql.ts';
import { type ScratchServer, whyNoScratchServer } from '../source/database/scratch-server.ts';

export type DatabaseKind = 'postgresql' | 'mysql';

/** The kind of database a snapshot holds, or undefined for a snapshot of files. */
export function databaseKindOf(snapshot: SnapshotEntry): DatabaseKind | undefined {
  const kind = (snapshot.snapshot.source as { kind?: unknown } | undefined)?.kind;
  return kind === 'postgresql' || kind === 'mysql' ? kind : undefined;
}

export function databasesOf(snapshot: SnapshotEntry): string[] {
  const databases = (snapshot.snapshot.source as { databases?: unknown } | undefined)?.databases;
  return Array.isArray(databases) ? databases.map(String) : [];
}

/** What the read-back found in one restored database. */
export interface ReadBackDatabase {
  name: string;
  /** Tables (and populated materialized views) read in full. */
  tables: number;
  rows: number;
}

/**
 * Whether the drill can start a throwaway server: undefined when it can, else why not (the drill
 * then restores and checks the dump's files alone, and says so). Refuses early, before anything
 * is started, what the drill could not do at all: SQL checks without a server, or without a database named.
 */
export function checkDatabaseDrill(
  snapshot: SnapshotEntry,
  options: { database?: string; sql: string[] },
): string | undefined {
  const kind = databaseKindOf(snapshot)!;
  const why = whyNoScratchServer(kind);
  const short = snapshot.id.slice(0, 8);
  if (why && options.sql.length > 0)
    throw new AmberError(
      'SOURCE_TOOL_MISSING',
      `snapshot ${short} is a ${kind} backup, and --check-sql needs a throwaway server to run in: ${why}`,
      {
        hint: 'install the server binaries on the host that runs the drill (they are started on 127.0.0.1 only, in the scratch directory)',
      },
    );
  const databases = databasesOf(snapshot);
  if (options.database !== undefined && !databases.includes(options.database))
    throw new AmberError(
      'USAGE',
      `snapshot ${short} has no database ${options.database} (it has ${databases.join(', ') || 'none'})`,
    );
  if (options.sql.length > 0 && options.database === undefined && databases.length !== 1)
    throw new AmberError(
      'USAGE',
      `snapshot ${short} holds ${databases.length} databases: say which one --check-sql runs in with --database NAME (${databases.join(', ')})`,
    );
  return why;
}

/** Every database of the snapshot restored into the server; the dump bytes read from the repository. */
export async function restoreIntoServer(
  repo: Repository,
  snapshot: SnapshotEntry,
  server: ScratchServer,
  signal?: AbortSignal,
): Promise<{ databases: string[]; bytes: number }> {
  let bytes = 0;
  const databases = databasesOf(snapshot);
  for (const database of databases) {
    if (signal?.aborted) throw new AmberError('INTERRUPTED', 'the drill was interrupted');
    const result = await restoreDatabase({
      repo,
      snapshot,
      to: server.url(database),
      access: { password: server.password },
      database,
      // The throwaway server's own maintenance database of that name is empty: restored in its place.
      overwrite: database === 'postgres' || database === 'template1',
      throwaway: true,
      signal,
    });
    bytes += result.bytes;
  }
  return { databases, bytes };
}

/** Each restored database's tables read in full: the database answers, and every row is readable. */
export async function readBack(
  server: ScratchServer,
  databases: string[],
  signal?: AbortSignal,
): Promise<ReadBackDatabase[]> {
  const out: ReadBackDatabase[] = [];
  for (const name of databases) {
    let counts: number[];
    if (server.kind === 'postgresql') {
      // One count(*) per heap, run by psql's \gexec; names hex-encoded so no name can break a line.
      const lines = await psql(
        parsePostgresUrl(server.url(name)),
        { password: server.password },
        `select format('select %L, count(*) from %I.%I', encode(convert_to(n.nspname || '.' || c.relname, 'UTF8'), 'hex'), n.nspname, c.relname)
           from pg_class c join pg_namespace n on n.oid = c.relnamespace
          where (c.relkind = 'r' or (c.relkind = 'm' and c.relispopulated))
            and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg\\_%'
          order by 1 \\gexec\n`,
        { database: name, signal },
      );
      counts = lines
        .split('\n')
        .filter(Boolean)
        .map((line) => Number(line.slice(line.lastIndexOf('|') + 1)));
    } else {
      const target = parseMysqlUrl(server.url());
      const access = { password: server.password };
      const tables = (
        await mysql(
          target,
          access,
          `select hex(table_name) from information_schema.tables where table_schema = database() and table_type = 'BASE TABLE' order by 1;`,
          name,
          signal,
        )
      )
        .split('\n')
        .filter(Boolean)
        .map((hex) => Buffer.from(hex, 'hex').toString('utf8'));
      counts =
        tables.length === 0
          ? []
          : (
              await mysql(
                target,
                access,
                tables.map((table) => `select count(*) from ${identifier(name)}.${identifier(table)};\n`).join(''),
                name,
                signal,
              )
            )
              .split('\n')
              .filter(Boolean)
              .map(Number);
    }
    out.push({ name, tables: counts.length, rows: counts.reduce((a, b) => a + b, 0) });
  }
  return out;
}

/** One SQL check: it passes when the query runs without error and returns at least one row. */
export async function runSqlCheck(
  server: ScratchServer,
  database: string,
  query: string,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<{
  exit: number | null;
  timedOut: boolean;
  interrupted: boolean;
  seconds: number;
  output: string[];
}> {
  const startMs = performance.now();
  const timeout = AbortSignal.timeout(timeoutMs);
  const both = signal ? AbortSignal.any([signal, timeout]) : timeout;
  const text = /;\s*$/.test(query) ? `${query}\n` : `${query};\n`;
  try {
    // Untrimmed: each row ends its line, so a row holding '' or NULL still counts as a row.
    const output =
      server.kind === 'postgresql'
        ? await psql(parsePostgresUrl(server.url(database)), { password: server.password }, text, {
            database,
            signal: both,
            raw: true,
          })
        : await mysql(parseMysqlUrl(server.url()), { password: server.password }, text, database, both, true);
    const rows = output.endsWith('\n') ? output.slice(0, -1).split('\n') : output === '' ? [] : output.split('\n');
    return {
      exit: rows.length > 0 ? 0 : 1,
      timedOut: false,
      interrupted: false,
      seconds: (performance.now() - startMs) / 1000,
      output: rows.length > 0 ? rows.slice(-20) : ['the query returned no rows'],
    };
  } catch (error) {
    return {
      exit: null,
      timedOut: timeout.aborted,
      interrupted: signal?.aborted === true,
      seconds: (performance.now() - startMs) / 1000,
      output: [(error as Error).message],
    };
  }
}

/**
 * How a shell check reaches the restored database: the tools' own variables (PGHOST…, MYSQL_PWD)
 * and AMBER_DRILL_DATABASE_URL, the URL without its password.
 */
export function serverEnv(server: ScratchServer, database: string | undefined): Record<string, string> {
  const common = {
    AMBER_DRILL_DATABASE_URL: server.url(database),
    ...(database !== undefined ? { AMBER_DRILL_DATABASE: database } : {}),
  };
  return server.kind === 'postgresql'
    ? {
        ...common,
        PGHOST: server.host,
        PGPORT: String(server.port),
        PGUSER: server.user,
        PGPASSWORD: server.password,
        ...(database !== undefined ? { PGDATABASE: database } : {}),
      }
    : {
        ...common,
        MYSQL_HOST: server.host,
        MYSQL_TCP_PORT: String(server.port),
        MYSQL_PWD: server.password,
        AMBER_DRILL_DATABASE_USER: server.user,
      };
}
