// PostgreSQL as a source: a consistent logical dump of one database (or of every database, plus
// the roles) by PostgreSQL's own tools, streamed into the snapshot as plain SQL files, and the way
// back into a live server. pg_dump takes one repeatable-read snapshot per database, so a dump is
// consistent however the database is written meanwhile. Plain, uncompressed SQL dedups well from
// one day to the next (Amber chunks and compresses it). Credentials reach the tools through their
// environment (PGPASSWORD) or their own ~/.pgpass, never through their command line.
import { randomBytes } from 'node:crypto';
import type { Writable } from 'node:stream';
import { AmberError } from '../../core/errors.ts';
import type { SourceFile } from '../source-url.ts';
import {
  collect,
  completeOrFail,
  fileOfDatabase,
  runScript,
  runTool,
  splitStatements,
  statementHead,
  type ToolFamily,
  type DatabaseTarget,
  parseDatabaseUrl,
  PsqlRestrict,
} from './tool.ts';

export type PostgresTarget = DatabaseTarget;

/** postgresql://[USER@]HOST[:PORT][/DB] (also postgres://); a password in it is refused: it would show in `ps`. */
export function parsePostgresUrl(text: string): PostgresTarget {
  return parseDatabaseUrl(text, {
    product: 'PostgreSQL',
    schemes: ['postgresql', 'postgres'],
    defaultPort: 5432,
    credentials: 'set AMBER_SOURCE_PASSWORD, pass --source-password-file, or use ~/.pgpass',
    parameters: 'set PGSSLMODE and friends in the environment',
  });
}

export interface PostgresAccess {
  /** From AMBER_SOURCE_PASSWORD or --source-password-file; otherwise PGPASSWORD or ~/.pgpass as the tools read them. */
  password?: string;
}

function toolEnv(target: PostgresTarget, access: PostgresAccess, database?: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    PGHOST: target.host,
    PGPORT: String(target.port),
    ...(target.user ? { PGUSER: target.user } : {}),
    ...(access.password !== undefined ? { PGPASSWORD: access.password } : {}),
    PGDATABASE: database ?? target.database ?? 'postgres',
    PGCONNECT_TIMEOUT: process.env.PGCONNECT_TIMEOUT ?? '10',
    PGAPPNAME: 'amber',
  };
}

const POSTGRES: ToolFamily = {
  product: 'PostgreSQL',
  install: 'install the PostgreSQL client of the server’s major version or newer: apt-get install postgresql-client',
  probe: 'pg_isready -h HOST -p PORT',
  credentials: 'AMBER_SOURCE_PASSWORD, --source-password-file or ~/.pgpass',
  authFailed: /password authentication failed|no password supplied|authentication failed/i,
  unreachable: /could not connect|Connection refused|timeout expired|could not translate host/i,
};

const run = (
  target: PostgresTarget,
  access: PostgresAccess,
  tool: string,
  args: string[],
  database?: string,
  signal?: AbortSignal,
) => runTool(POSTGRES, target.display, tool, args, toolEnv(target, access, database), signal);

/**
 * psql with SQL on its standard input (variables with -v, never spliced into the SQL), stopping at
 * the first error; its unaligned, tuples-only output.
 */
export async function psql(
  target: PostgresTarget,
  access: PostgresAccess,
  sql: string,
  options: { database?: string; vars?: Record<string, string>; signal?: AbortSignal; raw?: boolean } = {},
): Promise<string> {
  const vars = Object.entries(options.vars ?? {}).flatMap(([name, value]) => ['-v', `${name}=${value}`]);
  return runScript(
    run(
      target,
      access,
      'psql',
      ['-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', ...vars],
      options.database,
      options.signal,
    ),
    sql,
    options.raw,
  );
}

/** psql older than August 2025's releases has no `\restrict`: it cannot run a dump safely. */
function restrictUnsupported(error: unknown): never {
  if (/invalid command \\restrict/.test((error as Error).message))
    throw new AmberError(
      'SOURCE_TOOL_MISSING',
      'this psql cannot lock its backslash commands (\\restrict, in PostgreSQL 13.22, 14.19, 15.14, 16.10, 17.6 and later): a dump could run shell commands through it',
      { hint: 'install a current PostgreSQL client (apt-get install postgresql-client)' },
    );
  throw error;
}

/** How many things of its own a database holds (0 for one just created from template0). */
const OBJECTS_SQL = `select
  (select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg\\_%')
  + (select count(*) from pg_proc p join pg_namespace n on n.oid = p.pronamespace
     where n.nspname not in ('pg_catalog', 'information_schema'))
  + (select count(*) from pg_type t join pg_namespace n on n.oid = t.typnamespace
     where n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg\\_%')
  + (select count(*) from pg_namespace where nspname not in ('public', 'information_schema') and nspname not like 'pg\\_%')
  + (select count(*) from pg_extension where extname <> 'plpgsql')
  + (select count(*) from pg_largeobject_metadata);`;

/** The role a statement of pg_dumpall's --globals-only is about: CREATE/ALTER/COMMENT ON ROLE r, GRANT … TO r. */
function roleOf(statement: string): string | undefined {
  const ident = '("(?:[^"]|"")*"|[^\\s;,]+)';
  const match =
    new RegExp(`^(?:CREATE|ALTER|COMMENT ON) ROLE\\s+${ident}`, 'i').exec(statement) ??
    new RegExp(`^GRANT\\s[\\s\\S]*?\\sTO\\s+${ident}`, 'i').exec(statement);
  if (!match) return undefined;
  const name = match[1];
  return name.startsWith('"') ? name.slice(1, -1).replace(/""/g, '"') : name;
}

export interface PostgresDescription {
  kind: 'postgresql';
  url: string;
  serverVersion: string;
  serverVersionNum: number;
  databases: string[];
  /** `plain`: pg_dump's SQL script, uncompressed. */
  format: 'plain';
  /**
   * The server's roles (but its pg_ ones): a dump of one database names its owners and grantees
   * without creating them, so a drill's throwaway server creates these first.
   */
  roles: string[];
}

export async function describePostgres(target: PostgresTarget, access: PostgresAccess): Promise<PostgresDescription> {
  const version = await psql(target, access, 'show server_version; show server_version_num;', {
    database: target.database ?? 'postgres',
  });
  const [serverVersion, num] = version.split('\n');
  const databases = target.database
    ? [target.database]
    : (
        await psql(
          target,
          access,
          // Each name hex-encoded, one a line: a name with a newline in it stays one name.
          "select encode(convert_to(datname, 'UTF8'), 'hex') from pg_database where datallowconn and not datistemplate order by datname;",
          { database: 'postgres' },
        )
      )
        .split('\n')
        .filter(Boolean)
        .map((hex) => Buffer.from(hex, 'hex').toString('utf8'));
  const roles: string[] = JSON.parse(
    (await psql(
      target,
      access,
      "select coalesce(json_agg(rolname order by rolname), '[]') from pg_roles where rolname !~ '^pg_';",
      { database: target.database ?? 'postgres' },
    )) || '[]',
  );
  return {
    kind: 'postgresql',
    url: target.display,
    serverVersion,
    serverVersionNum: Number(num),
    databases,
    format: 'plain',
    roles,
  };
}

/** The dump's files, one at a time: each database's SQL, and for a whole server the roles first. */
export async function* dumpPostgres(
  target: PostgresTarget,
  access: PostgresAccess,
  description: PostgresDescription,
): AsyncGenerator<SourceFile> {
  if (!target.database) {
    const globals = run(target, access, 'pg_dumpall', ['--globals-only', '--no-password'], 'postgres');
    yield {
      name: 'globals.sql',
      stream: completeOrFail(globals, /^-- PostgreSQL database cluster dump complete$/m, 'pg_dumpall', target.display),
      finished: globals.finished.then(() => {}),
    };
  }
  for (const database of description.databases) {
    const dump = run(
      target,
      access,
      'pg_dump',
      ['--format=plain', '--no-password', '--quote-all-identifiers'],
      database,
    );
    yield {
      name: fileOfDatabase(database),
      stream: completeOrFail(dump, /^-- PostgreSQL database dump complete$/m, 'pg_dump', target.display),
      finished: dump.finished.then(() => {}),
    };
  }
}

/**
 * Restores one database's dump into `database` on the target server: refuses an older server
 * than the dump's and an existing database that holds anything (unless `overwrite`, which drops
 * it first), creates it, and runs the SQL with psql in one transaction, stopping at the first error.
 */
export async function restorePostgres(options: {
  target: PostgresTarget;
  access: PostgresAccess;
  database: string;
  dumpVersionNum: number;
  overwrite: boolean;
  /** The dump's SQL, written into psql's standard input by the caller; resolves when all is written. */
  feed: (into: Writable) => Promise<void>;
  /** The roles' SQL, when the snapshot has them: applied first, an existing role being no error. */
  globals?: (into: Writable) => Promise<void>;
  /** Roles created (NOLOGIN, no password) where missing before the dump runs: a drill's throwaway server. */
  ensureRoles?: string[];
  /** Ends the restore (the staging database is dropped) when aborted. */
  signal?: AbortSignal;
  /** Any error of the roles' SQL fails the restore (an empty throwaway server, where nothing should). */
  strict?: boolean;
}): Promise<{ serverVersion: string; rolesSkipped: number }> {
  const { target, access, database } = options;
  // Connected to another database than the one restored: a database cannot be dropped from inside.
  const at = { ...target, database: database === 'postgres' ? 'template1' : 'postgres' };
  const [serverVersion, num] = (await psql(at, access, 'show server_version; show server_version_num;')).split('\n');
  if (Number(num) < options.dumpVersionNum)
    throw new AmberError(
      'SOURCE_FAILED',
      `the server at ${target.display} runs PostgreSQL ${serverVersion}, older than the dump's (${Math.floor(options.dumpVersionNum / 10000)}): a dump restores into the same major version or a newer one`,
      { hint: 'restore into a server of that version or newer' },
    );
  const exists = await psql(at, access, "select count(*) from pg_database where datname = :'name';", {
    vars: { name: database },
  });
  if (exists === '1') {
    // Anything of its own counts, not only tables: a function, a type, a schema, an extension or a large object.
    const objects = await psql({ ...target, database }, access, OBJECTS_SQL, { database });
    if (objects !== '0' && !options.overwrite)
      throw new AmberError(
        'TARGET_EXISTS',
        `the database ${database} on ${target.display} exists and holds ${objects} object(s)`,
        {
          hint: 'restore into a new database name, or pass --overwrite to drop it and restore in its place',
        },
      );
  }
  let rolesSkipped = 0;
  if (options.globals) {
    // Roles that exist already (the server the dump came from) are kept as they are: their
    // CREATE, ALTER (password, attributes), COMMENT and the memberships granted to them are left out.
    const existing = new Set<string>(
      JSON.parse((await psql(at, access, "select coalesce(json_agg(rolname), '[]') from pg_roles;")) || '[]'),
    );
    const kept: string[] = [];
    for (const statement of splitStatements(PsqlRestrict.script(await collect(options.globals)), false)) {
      const role = roleOf(statementHead(statement));
      if (role !== undefined && existing.has(role)) {
        if (/^CREATE\s/i.test(statementHead(statement))) rolesSkipped++;
        continue;
      }
      kept.push(statement);
    }
    // Into a live server, a role statement that fails (an attribute this server lacks) is passed
    // over; into an empty throwaway server nothing should fail, so anything that does fails the drill.
    const roles = run(at, access, 'psql', ['-X', '-q', '-v', `ON_ERROR_STOP=${options.strict ? 1 : 0}`], 'postgres');
    roles.stdout.resume();
    roles.stdin.end(kept.join(''));
    await roles.finished.catch(restrictUnsupported);
  }
  if (options.ensureRoles?.length) {
    // Each name a psql variable (:"role" quotes it), one statement each, in one script.
    const vars: Record<string, string> = {};
    const statements = options.ensureRoles.map((role, i) => {
      vars[`r${i}`] = role;
      return `select not exists (select from pg_roles where rolname = :'r${i}') as missing \\gset\n\\if :missing\ncreate role :"r${i}" nologin;\n\\endif\n`;
    });
    await psql(at, access, statements.join(''), { vars });
  }
  // Restored under a name of its own first, and put in place only when all of it went in: a
  // restore that fails half-way leaves the database it was to replace (with --overwrite) as it was.
  const staging = `amber_restore_${process.pid}_${randomBytes(6).toString('hex')}`;
  await psql(at, access, 'create database :"name" template template0;', { vars: { name: staging } });
  try {
    const restore = run(
      { ...target, database: staging },
      access,
      'psql',
      ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '--single-transaction'],
      staging,
      options.signal,
    );
    restore.stdout.resume();
    // The dump runs with psql's backslash commands locked (PsqlRestrict): a snapshot, which a
    // write-only key could have written, cannot run a shell command or touch a file here.
    const restricted = new PsqlRestrict();
    restricted.pipe(restore.stdin);
    restore.finished.catch(() => restricted.destroy());
    await Promise.all([
      (async () => {
        await options.feed(restricted);
        restricted.end();
      })(),
      restore.finished.catch(restrictUnsupported),
    ]);
    if (exists === '1')
      await psql(at, access, 'drop database if exists :"name" with (force);', { vars: { name: database } });
    // Fails, leaving nothing replaced, if a database of that name appeared meanwhile.
    await psql(at, access, 'alter database :"staging" rename to :"name";', { vars: { staging, name: database } });
  } catch (error) {
    await psql(at, access, 'drop database if exists :"name" with (force);', { vars: { name: staging } }).catch(
      () => {},
    );
    throw error;
  }
  return { serverVersion, rolesSkipped };
}
