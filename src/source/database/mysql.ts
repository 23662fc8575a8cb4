// MariaDB and MySQL as a source: mariadb-dump (or mysqldump) in one consistent transaction
// (--single-transaction: InnoDB's snapshot) with routines, triggers and events, streamed into the
// snapshot as plain SQL, and the way back into a live server with the mariadb (mysql) client. The
// password reaches the tools through MYSQL_PWD in their environment, never their command line.
import { spawnSync } from 'node:child_process';
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
} from './tool.ts';

export type MysqlTarget = DatabaseTarget;

export interface MysqlAccess {
  password?: string;
}

const SYSTEM_SCHEMAS = ['information_schema', 'performance_schema', 'mysql', 'sys'];

const MARIADB: ToolFamily = {
  product: 'MariaDB',
  install: 'install the client: apt-get install mariadb-client (or MySQL’s mysql-client)',
  probe: 'mariadb-admin -h HOST -P PORT ping',
  credentials: 'AMBER_SOURCE_PASSWORD or --source-password-file',
  authFailed: /Access denied for user/i,
  unreachable: /Can't connect to|Connection refused|Unknown (MySQL|MariaDB) server host|Lost connection/i,
};

/** mysql://[USER@]HOST[:PORT][/DB] (also mariadb://); a password in it is refused: it would show in `ps`. */
export function parseMysqlUrl(text: string): MysqlTarget {
  return parseDatabaseUrl(text, {
    product: 'MySQL/MariaDB',
    schemes: ['mysql', 'mariadb'],
    defaultPort: 3306,
    credentials: 'set AMBER_SOURCE_PASSWORD or pass --source-password-file',
    parameters: 'the tools read no option file; TLS settings are not taken yet',
  });
}

/** mariadb-dump and mariadb where MariaDB's client is installed, else MySQL's mysqldump and mysql. */
const tools = (() => {
  let found: { dump: string; client: string } | undefined;
  return () => {
    if (!found) {
      const has = (tool: string) => !spawnSync(tool, ['--version']).error;
      found = has('mariadb-dump')
        ? { dump: 'mariadb-dump', client: 'mariadb' }
        : { dump: 'mysqldump', client: 'mysql' };
    }
    return found;
  };
})();

/**
 * --sandbox where the client has it (MariaDB 10.5.25, 10.6.18, 10.11.8, 11.0.6 and later); a
 * client without it cannot run a dump safely, so a restore with it is refused.
 */
let clientHasSandbox: boolean | undefined;
function sandbox(): string[] {
  const client = tools().client;
  clientHasSandbox ??= /--sandbox/.test(spawnSync(client, ['--help'], { encoding: 'utf8' }).stdout ?? '');
  if (!clientHasSandbox)
    throw new AmberError(
      'SOURCE_TOOL_MISSING',
      `the ${client} client here has no --sandbox: it cannot run a dump without letting the dump's client commands (system, source, tee) run`,
      { hint: 'install MariaDB’s client 10.5.25, 10.6.18, 10.11.8 or later (apt-get install mariadb-client)' },
    );
  return ['--sandbox'];
}

function connection(target: MysqlTarget): string[] {
  // The tools read no option file (a ~/.my.cnf could point them elsewhere): only what the URL says.
  return [
    '--no-defaults',
    '--protocol=TCP',
    `--host=${target.host}`,
    `--port=${target.port}`,
    ...(target.user ? [`--user=${target.user}`] : []),
  ];
}

function env(access: MysqlAccess): NodeJS.ProcessEnv {
  const { MYSQL_PWD: _drop, ...rest } = process.env;
  return { ...rest, ...(access.password !== undefined ? { MYSQL_PWD: access.password } : {}) };
}

/** SQL through the client, stopping at the first error; its tab-separated rows, without a header. */
export async function sql(
  target: MysqlTarget,
  access: MysqlAccess,
  text: string,
  database?: string,
  signal?: AbortSignal,
  raw = false,
): Promise<string> {
  const args = [
    ...connection(target),
    '-N',
    '-B',
    '--connect-timeout=10',
    ...(database ? [`--database=${database}`] : []),
  ];
  return runScript(runTool(MARIADB, target.display, tools().client, args, env(access), signal), text, raw);
}

/** A name as a quoted identifier: backticks around it, a backtick in it doubled. */
export const identifier = (name: string) => `\`${name.replace(/`/g, '``')}\``;
/** A string literal: quotes around it, quotes and backslashes escaped. */
export const literal = (text: string) => `'${text.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;

/** A quoted or bare name of an account statement, unquoted. */
function unquoteName(name: string): string {
  if (name.startsWith('`')) return name.slice(1, -1).replace(/``/g, '`');
  if (name.startsWith("'") || name.startsWith('"'))
    return name
      .slice(1, -1)
      .replace(/\\(.)/g, '$1')
      .replace(new RegExp(`${name[0]}${name[0]}`, 'g'), name[0]);
  return name;
}

/** The accounts ([user, host]) an account statement of a users dump names: CREATE USER a, ALTER USER a, GRANT … TO a, SET DEFAULT ROLE … FOR a. */
function accountsOf(statement: string): [string, string][] {
  const body = statement.replace(/^\/\*[M!]*\d*\s*/, '');
  if (!/^(?:CREATE\s+USER|ALTER\s+USER|GRANT|REVOKE|SET\s+DEFAULT\s+ROLE)\b/i.test(body)) return [];
  const name = '`(?:[^`]|``)*`|\'(?:[^\'\\\\]|\\\\.|\'\')*\'|"(?:[^"\\\\]|\\\\.|"")*"|[\\w.$-]+';
  const pattern = new RegExp(
    `\\b(?:TO|FOR|FROM|USER(?:\\s+IF\\s+NOT\\s+EXISTS)?)\\s+(${name})(?:\\s*@\\s*(${name}))?`,
    'gi',
  );
  return [...body.matchAll(pattern)].map((m) => [unquoteName(m[1]), m[2] === undefined ? '' : unquoteName(m[2])]);
}

export interface MysqlDescription {
  kind: 'mysql';
  url: string;
  serverVersion: string;
  databases: string[];
  format: 'plain';
  /**
   * The accounts ([user, host]) its views, routines, triggers and events run as (their DEFINER): a
   * dump of one database names them without creating them, so a drill's throwaway server creates them first.
   */
  definers: [string, string][];
}

export async function describeMysql(target: MysqlTarget, access: MysqlAccess): Promise<MysqlDescription> {
  const serverVersion = await sql(target, access, 'select version();');
  const databases = target.database
    ? [target.database]
    : // Each name hex-encoded: the client's batch output would escape a newline, tab or backslash in one.
      (await sql(target, access, 'select hex(schema_name) from information_schema.schemata order by schema_name;'))
        .split('\n')
        .filter(Boolean)
        .map((hex) => Buffer.from(hex, 'hex').toString('utf8'))
        .filter((name) => !SYSTEM_SCHEMAS.includes(name));
  const schemas = databases.map(literal).join(', ') || "''";
  const definers = (
    await sql(
      target,
      access,
      `select distinct hex(definer) from (
        select definer from information_schema.views where table_schema in (${schemas})
        union select definer from information_schema.routines where routine_schema in (${schemas})
        union select definer from information_schema.triggers where trigger_schema in (${schemas})
        union select definer from information_schema.events where event_schema in (${schemas})) d;`,
    )
  )
    .split('\n')
    .filter(Boolean)
    .map((hex) => Buffer.from(hex, 'hex').toString('utf8'))
    // user@host, the user part possibly holding an @ itself; a role (no host) is left out.
    .filter((definer) => definer.includes('@'))
    .map((definer): [string, string] => [
      definer.slice(0, definer.lastIndexOf('@')),
      definer.slice(definer.lastIndexOf('@') + 1),
    ]);
  return { kind: 'mysql', url: target.display, serverVersion, databases, format: 'plain', definers };
}

const DUMP_OPTIONS = [
  '--single-transaction',
  '--routines',
  '--triggers',
  '--events',
  '--hex-blob',
  '--quick',
  '--skip-dump-date',
  '--default-character-set=utf8mb4',
];

export async function* dumpMysql(
  target: MysqlTarget,
  access: MysqlAccess,
  description: MysqlDescription,
): AsyncGenerator<SourceFile> {
  if (!target.database) {
    // Users and their grants, as portable SQL (MariaDB 10.11+); for MySQL, the mysql schema's dump.
    const users = runTool(
      MARIADB,
      target.display,
      tools().dump,
      [...connection(target), '--system=users', '--insert-ignore'],
      env(access),
    );
    yield {
      name: 'users.sql',
      stream: completeOrFail(users, /^-- Dump completed/m, tools().dump, target.display),
      finished: users.finished.then(() => {}),
    };
  }
  for (const database of description.databases) {
    const dump = runTool(
      MARIADB,
      target.display,
      tools().dump,
      [...connection(target), ...DUMP_OPTIONS, '--', database],
      env(access),
    );
    yield {
      name: fileOfDatabase(database),
      stream: completeOrFail(dump, /^-- Dump completed/m, tools().dump, target.display),
      finished: dump.finished.then(() => {}),
    };
  }
}

/** Major and minor of a version string ("10.11.18-MariaDB-0+deb12u1" → [10, 11]), for "not older than". */
function majorMinor(version: string): [number, number] {
  const [major, minor] = version.split(/[.-]/).map(Number);
  return [major || 0, minor || 0];
}

/**
 * Restores a database's dump into `database`: refuses a server older than the dump's (by major and
 * minor version) and an existing database with any table unless `overwrite` (which drops it),
 * creates it, and runs the SQL with the client, stopping at the first error. DDL commits as it goes
 * in MySQL, so a restore that fails drops the database it created rather than leave it half-done.
 */
export async function restoreMysql(options: {
  target: MysqlTarget;
  access: MysqlAccess;
  database: string;
  dumpVersion: string;
  overwrite: boolean;
  feed: (into: Writable) => Promise<void>;
  globals?: (into: Writable) => Promise<void>;
  /**
   * Accounts created (locked: no login) where missing and granted the restored database before the
   * dump runs, so the views and routines they define work: a drill's throwaway server.
   */
  ensureAccounts?: [string, string][];
  /** Ends the restore (what it created is dropped) when aborted. */
  signal?: AbortSignal;
  /** Any error of the users' SQL fails the restore (an empty throwaway server, where nothing should). */
  strict?: boolean;
}): Promise<{ serverVersion: string; rolesSkipped: number }> {
  const { target, access, database } = options;
  const at = { ...target, database: undefined };
  const serverVersion = await sql(at, access, 'select version();');
  const [haveMajor, haveMinor] = majorMinor(serverVersion);
  const [wantMajor, wantMinor] = majorMinor(options.dumpVersion);
  if (haveMajor < wantMajor || (haveMajor === wantMajor && haveMinor < wantMinor))
    throw new AmberError(
      'SOURCE_FAILED',
      `the server at ${target.display} runs ${serverVersion}, older than the dump's ${options.dumpVersion}`,
      { hint: 'restore into a server of that version or newer' },
    );
  // Anything of its own counts, not only tables and views: a routine or an event too.
  const objects = await sql(
    at,
    access,
    `select (select count(*) from information_schema.tables where table_schema = ${literal(database)})
      + (select count(*) from information_schema.routines where routine_schema = ${literal(database)})
      + (select count(*) from information_schema.events where event_schema = ${literal(database)});`,
  );
  const exists =
    (await sql(
      at,
      access,
      `select count(*) from information_schema.schemata where schema_name = ${literal(database)};`,
    )) === '1';
  if (exists && objects !== '0' && !options.overwrite)
    throw new AmberError(
      'TARGET_EXISTS',
      `the database ${database} on ${target.display} exists and holds ${objects} object(s) (tables, views, routines, events)`,
      {
        hint: 'restore into a new database name, or pass --overwrite to drop it and restore in its place',
      },
    );
  let rolesSkipped = 0;
  if (options.globals) {
    // Users and roles that exist already are kept as they are: the statements that would change
    // them (a GRANT … IDENTIFIED BY PASSWORD sets the password, ALTER USER, SET DEFAULT ROLE) are left out.
    const existing = new Set(
      (await sql(at, access, 'select hex(user), hex(host) from mysql.user;'))
        .split('\n')
        .filter(Boolean)
        .map((line) => {
          const [user, host] = line.split('\t').map((hex) => Buffer.from(hex ?? '', 'hex').toString('utf8'));
          return JSON.stringify([user, host]);
        }),
    );
    const kept: string[] = [];
    for (const statement of splitStatements(await collect(options.globals), true)) {
      const head = statementHead(statement);
      if (accountsOf(head).some((account) => existing.has(JSON.stringify(account)))) {
        if (/^CREATE\s+USER/i.test(head)) rolesSkipped++;
        continue;
      }
      kept.push(statement);
    }
    // Into a live server an account statement that fails is passed over (--force); into an empty
    // throwaway server nothing should fail, so anything that does fails the drill.
    const users = runTool(
      MARIADB,
      target.display,
      tools().client,
      [...connection(at), ...sandbox(), ...(options.strict ? [] : ['--force'])],
      env(access),
    );
    users.stdout.resume();
    users.stdin.end(kept.join(''));
    await users.finished.catch((error: unknown) => {
      if (options.strict) throw error;
    });
  }
  /** Creates `name` and runs the dump into it; a failure drops what it created. */
  const restoreInto = async (name: string) => {
    await sql(at, access, `create database ${identifier(name)} character set utf8mb4;`);
    if (options.ensureAccounts?.length)
      await sql(
        at,
        access,
        options.ensureAccounts
          .map(
            ([user, host]) =>
              `create user if not exists ${literal(user)}@${literal(host)} account lock;\ngrant all on ${identifier(name)}.* to ${literal(user)}@${literal(host)};\n`,
          )
          .join(''),
      );
    // --database=NAME, never NAME alone: a name such as "--init-command=…" would be an option.
    const restore = runTool(
      MARIADB,
      target.display,
      tools().client,
      // --sandbox: the client's own commands (system, source, tee, pager) are refused, so a dump,
      // which a write-only key could have written, cannot run a shell command or touch a file here.
      [...connection(at), ...sandbox(), `--database=${name}`],
      env(access),
      options.signal,
    );
    restore.stdout.resume();
    try {
      await Promise.all([
        (async () => {
          await options.feed(restore.stdin);
          restore.stdin.end();
        })(),
        restore.finished,
      ]);
    } catch (error) {
      await sql(at, access, `drop database if exists ${identifier(name)};`).catch(() => {});
      throw error;
    }
  };
  if (!exists) {
    await restoreInto(database);
    return { serverVersion, rolesSkipped };
  }
  // --overwrite: MariaDB cannot rename a database, so the dump is first restored into a staging
  // database. Only once that succeeded is the original dropped and the dump restored in its place;
  // should that second pass fail, the staging copy is kept and named, so nothing is lost either way.
  const staging = `amber_restore_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  await restoreInto(staging);
  await sql(at, access, `drop database ${identifier(database)};`);
  try {
    await restoreInto(database);
  } catch (error) {
    throw new AmberError(
      'SOURCE_FAILED',
      `the restore into ${database} on ${target.display} failed after the original was replaced: ${(error as Error).message}`,
      {
        hint: `the restored data is complete in the database ${staging}: rename its tables into place or restore again`,
      },
    );
  }
  await sql(at, access, `drop database ${identifier(staging)};`).catch(() => {});
  return { serverVersion, rolesSkipped };
}
