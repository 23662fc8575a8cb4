// Red-team findings against the database sources, each against a real server on 127.0.0.1: a
// target name that is a client option, an existing database holding only a function dropped
// without --overwrite, and a whole-server restore that rewrites an existing role's password.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseMysqlUrl } from '../../src/source/database/mysql.ts';
import { parsePostgresUrl } from '../../src/source/database/postgresql.ts';
import { BIN } from '../../src/testing/agent-fixture.ts';
import { type MariadbServer, startMariadb, whyNoMariadb } from '../../src/testing/mariadb-server.ts';
import { PG_BIN, type PostgresServer, startPostgres, whyNoPostgres } from '../../src/testing/postgres-server.ts';
import { removeTree } from '../../src/testing/repo-fixture.ts';

function amberIn(dir: string, password: string) {
  return (args: string[], extra: Record<string, string> = {}) => {
    const result = spawnSync(process.execPath, [BIN, ...args], {
      encoding: 'utf8',
      env: {
        PATH: process.env.PATH,
        AMBER_PASSWORD: 'red team passphrase',
        AMBER_KDF_LOG_N: '10',
        AMBER_CACHE_DIR: join(dir, 'cache'),
        AMBER_SOURCE_PASSWORD: password,
        ...extra,
      },
    });
    return { status: result.status, stdout: String(result.stdout), stderr: String(result.stderr) };
  };
}

/** A directory with a fake TOOL first on PATH: the real one's output cut after BYTES, and exit 0. */
function cutShort(dir: string, tool: string, real: string, bytes: number): Record<string, string> {
  const bin = join(dir, `fake-${tool}`);
  mkdirSync(bin, { recursive: true });
  writeFileSync(join(bin, tool), `#!/bin/sh\n"${real}" "$@" | head -c ${bytes}\nexit 0\n`);
  chmodSync(join(bin, tool), 0o755);
  return { PATH: `${bin}:${process.env.PATH}` };
}

describe('red team: PostgreSQL', { skip: whyNoPostgres() }, () => {
  let pg: PostgresServer;
  let dir: string;
  let repo: string;
  let amber: ReturnType<typeof amberIn>;
  const ok = (args: string[]) => {
    const run = amber(args);
    assert.equal(run.status, 0, `amber ${args.join(' ')}: ${run.stdout}${run.stderr}`);
    return run;
  };
  before(async () => {
    pg = await startPostgres();
    dir = mkdtempSync(join(tmpdir(), 'amber-redteam-pg-'));
    repo = join(dir, 'repo');
    amber = amberIn(dir, pg.password);
    pg.sql('create database src;');
    pg.sql('create table t (id int); insert into t values (1);', 'src');
    ok(['init', '--repo', repo]);
    ok(['backup', '--repo', repo, pg.url('src')]);
  });
  after(async () => {
    await pg?.stop();
    if (dir) await removeTree(dir);
  });

  test('an existing database that holds only a function, a type or a schema is not dropped without --overwrite', () => {
    pg.sql('create database fn_only; create database type_only; create database schema_only;');
    pg.sql("create function precious() returns int language sql as 'select 42';", 'fn_only');
    pg.sql("create type mood as enum ('happy', 'sad');", 'type_only');
    pg.sql('create schema keep;', 'schema_only');
    for (const name of ['fn_only', 'type_only', 'schema_only']) {
      const run = amber(['restore', 'latest', '--repo', repo, '--to', pg.url(name)]);
      assert.notEqual(run.status, 0, `${name} was overwritten without --overwrite`);
      assert.match(run.stderr, /exists and holds/);
    }
    assert.equal(pg.sql('select precious()', 'fn_only'), '42');
    assert.equal(pg.sql("select count(*) from pg_type where typname = 'mood'", 'type_only'), '1');
    assert.equal(pg.sql("select count(*) from pg_namespace where nspname = 'keep'", 'schema_only'), '1');
    // An existing empty database is still restored into.
    pg.sql('create database empty_one;');
    ok(['restore', 'latest', '--repo', repo, '--to', pg.url('empty_one')]);
    assert.equal(pg.sql('select count(*) from t', 'empty_one'), '1');
  });

  test("a whole-server restore keeps an existing role's password and attributes", () => {
    pg.sql("create role victim login password 'at backup time';");
    const whole = JSON.parse(ok(['backup', '--repo', repo, pg.url(''), '--json']).stdout);
    pg.sql("alter role victim nologin password 'changed since';");
    const before = pg.sql("select rolcanlogin || ' ' || rolpassword from pg_authid where rolname = 'victim'");
    const superBefore = pg.sql(`select rolpassword from pg_authid where rolname = '${pg.user}'`);
    ok(['restore', whole.id, '--repo', repo, '--to', pg.url('from_whole'), '--database', 'src']);
    assert.equal(pg.sql("select rolcanlogin || ' ' || rolpassword from pg_authid where rolname = 'victim'"), before);
    assert.equal(pg.sql(`select rolpassword from pg_authid where rolname = '${pg.user}'`), superBefore);
    // A role that does not exist on the target is still created.
    pg.sql('drop role victim;');
    ok(['restore', whole.id, '--repo', repo, '--to', pg.url('from_whole2'), '--database', 'src']);
    assert.equal(pg.sql("select count(*) from pg_roles where rolname = 'victim'"), '1');
  });

  test('a restore with --overwrite that fails half-way leaves the database it replaced in place', () => {
    pg.sql('create role ghost nologin;');
    pg.sql('create database needs_ghost;');
    pg.sql('create table g (id int); grant select on g to ghost;', 'needs_ghost');
    const backup = JSON.parse(ok(['backup', '--repo', repo, pg.url('needs_ghost'), '--json']).stdout);
    pg.sql('drop database needs_ghost; drop role ghost;');
    pg.sql('create database precious;');
    pg.sql("create table keep (v text); insert into keep values ('still here');", 'precious');
    const run = amber(['restore', backup.id, '--repo', repo, '--to', pg.url('precious'), '--overwrite']);
    assert.notEqual(run.status, 0, 'the grant to a missing role fails the restore');
    assert.equal(pg.sql('select v from keep', 'precious'), 'still here');
  });

  test('a whole-server backup keeps a database whose name has a newline in it as one database', () => {
    pg.sql('create database "line\nbreak";');
    pg.sql('create table nl (id int); insert into nl values (7);', 'line\nbreak');
    const whole = JSON.parse(ok(['backup', '--repo', repo, pg.url(''), '--json']).stdout);
    const listed = JSON.parse(ok(['snapshots', '--repo', repo, '--json']).stdout).find(
      (s: { id: string }) => s.id === whole.id,
    );
    assert.ok(listed.source.databases.includes('line\nbreak'), JSON.stringify(listed.source.databases));
    ok(['restore', whole.id, '--repo', repo, '--to', pg.url('nl_copy'), '--database', 'line\nbreak']);
    assert.equal(pg.sql('select id from nl', 'nl_copy'), '7');
    pg.sql('drop database "line\nbreak";');
  });

  test('a pg_dump that exits 0 after writing only part of the dump writes no snapshot; the repository verifies', () => {
    pg.sql('create table big as select g from generate_series(1, 20000) g;', 'src');
    const count = () => JSON.parse(ok(['snapshots', '--repo', repo, '--json']).stdout).length;
    const before = count();
    const run = amber(
      ['backup', '--repo', repo, pg.url('src')],
      cutShort(dir, 'pg_dump', join(PG_BIN!, 'pg_dump'), 3000),
    );
    assert.notEqual(run.status, 0, `a cut-short dump was taken as a backup: ${run.stdout}`);
    assert.match(run.stderr, /cut short/);
    assert.equal(count(), before);
    ok(['verify', '--repo', repo]);
  });
});

describe('red team: MariaDB', { skip: whyNoMariadb() }, () => {
  let db: MariadbServer;
  let dir: string;
  let repo: string;
  let amber: ReturnType<typeof amberIn>;
  const ok = (args: string[]) => {
    const run = amber(args);
    assert.equal(run.status, 0, `amber ${args.join(' ')}: ${run.stdout}${run.stderr}`);
    return run;
  };
  before(async () => {
    db = await startMariadb();
    dir = mkdtempSync(join(tmpdir(), 'amber-redteam-maria-'));
    repo = join(dir, 'repo');
    amber = amberIn(dir, db.password);
    db.sql('create database src; create table src.t (id int); insert into src.t values (1);');
    ok(['init', '--repo', repo]);
    ok(['backup', '--repo', repo, db.url('src')]);
  });
  after(async () => {
    await db?.stop();
    if (dir) await removeTree(dir);
  });

  test('a target database named like a client option is a name, not an option', () => {
    db.sql('create database victim; create table victim.t (id int);');
    const name = '--init-command=drop database victim';
    ok(['restore', 'latest', '--repo', repo, '--to', db.url(encodeURIComponent(name))]);
    assert.equal(db.sql("select count(*) from information_schema.schemata where schema_name = 'victim'"), '1');
    assert.equal(db.sql(`select count(*) from \`${name}\`.t`), '1', 'restored into the database of that name');
  });

  test('an existing database that holds only a routine or an event is not dropped without --overwrite', () => {
    db.sql('create database fn_only; create function fn_only.precious() returns int return 42;');
    const run = amber(['restore', 'latest', '--repo', repo, '--to', db.url('fn_only')]);
    assert.notEqual(run.status, 0, 'fn_only was overwritten without --overwrite');
    assert.match(run.stderr, /exists and holds/);
    assert.equal(db.sql('select fn_only.precious()'), '42');
  });

  test('a restore with --overwrite whose dump fails leaves the database it was to replace in place', () => {
    db.sql('create database precious; create table precious.t (i int); insert into precious.t values (7);');
    // A client that fails whenever it is given a database to restore into: the dump "does not load".
    const bin = join(dir, 'failing-client');
    mkdirSync(bin, { recursive: true });
    writeFileSync(
      join(bin, 'mariadb'),
      '#!/bin/sh\nfor a in "$@"; do case "$a" in --database=*) cat >/dev/null; echo "ERROR 1064: broken dump" >&2; exit 1;; esac; done\nexec /usr/bin/mariadb "$@"\n',
    );
    chmodSync(join(bin, 'mariadb'), 0o755);
    const run = amber(['restore', 'latest', '--repo', repo, '--to', db.url('precious'), '--overwrite'], {
      PATH: `${bin}:${process.env.PATH}`,
    });
    assert.equal(run.status, 1, run.stderr);
    assert.match(run.stderr, /broken dump/);
    assert.equal(db.sql('select i from precious.t'), '7', 'the original is untouched');
    assert.equal(
      db.sql("select count(*) from information_schema.schemata where schema_name like 'amber_restore_%'"),
      '0',
    );
  });

  test("a whole-server restore keeps an existing user's password", () => {
    db.sql("create user 'victim'@'%' identified by 'at backup time';");
    const whole = JSON.parse(ok(['backup', '--repo', repo, db.url(''), '--json']).stdout);
    db.sql("alter user 'victim'@'%' identified by 'changed since';");
    const before = db.sql("select authentication_string from mysql.user where user = 'victim'");
    ok(['restore', whole.id, '--repo', repo, '--to', db.url('from_whole'), '--database', 'src']);
    assert.equal(db.sql("select authentication_string from mysql.user where user = 'victim'"), before);
  });

  test('a mariadb-dump that exits 0 after writing only part of the dump writes no snapshot; the repository verifies', () => {
    db.sql(
      'set max_recursive_iterations = 100000; create table src.big as with recursive s(n) as (select 1 union all select n + 1 from s where n < 20000) select n from s;',
    );
    const count = () => JSON.parse(ok(['snapshots', '--repo', repo, '--json']).stdout).length;
    const before = count();
    const run = amber(
      ['backup', '--repo', repo, db.url('src')],
      cutShort(dir, 'mariadb-dump', '/usr/bin/mariadb-dump', 3000),
    );
    assert.notEqual(run.status, 0, `a cut-short dump was taken as a backup: ${run.stdout}`);
    assert.match(run.stderr, /cut short/);
    assert.equal(count(), before);
    ok(['verify', '--repo', repo]);
  });
});

describe('red team: source URLs', () => {
  test('a URL that does not parse never shows its password in the error', () => {
    assert.throws(
      () => parsePostgresUrl('postgresql://u:sekrit@127.0.0.1:99999/db'),
      (error: Error) => !error.message.includes('sekrit') && /u:\*\*\*@/.test(error.message),
    );
    assert.throws(
      () => parseMysqlUrl('mysql://u:sekrit@[::1/db'),
      (error: Error) => !error.message.includes('sekrit'),
    );
  });
  test('parameters name the URL (not "null"); malformed escapes and NUL bytes are clear usage errors', () => {
    assert.throws(
      () => parsePostgresUrl('postgresql://h/db?sslmode=disable'),
      /URL postgresql:\/\/h\/db has parameters/,
    );
    assert.throws(() => parseMysqlUrl('mariadb://h/db#x'), /URL mariadb:\/\/h\/db has parameters/);
    for (const url of ['postgresql://h/%ZZ', 'postgresql://h/a%00b', 'postgresql://a%00@h/x'])
      assert.throws(
        () => parsePostgresUrl(url),
        (error: Error & { code?: string }) => error.code === 'USAGE',
      );
    assert.throws(
      () => parseMysqlUrl('mysql://h/%E0%A4%A'),
      (error: Error & { code?: string }) => error.code === 'USAGE',
    );
  });
  test('an international host reaches the tools in ASCII; IPv6 without brackets', () => {
    assert.equal(parsePostgresUrl('postgresql://u@bücher.example/db').host, 'xn--bcher-kva.example');
    assert.equal(parseMysqlUrl('mariadb://u@[::1]:3307/x').host, '::1');
  });
});
