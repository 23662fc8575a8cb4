// Drills of database snapshots, against real servers: a PostgreSQL and a MariaDB snapshot are
// restored into a throwaway server Amber starts on 127.0.0.1 in the drill's scratch space, every
// table is read back, --check-sql queries run against it (one that returns no row, errs or hangs
// fails the drill), a --check reaches the server through the tools' own variables, and nothing of
// the server outlives the drill: its process and its directory are gone afterwards.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sourceCli } from '../../src/testing/cli-runner.ts';
import { type MariadbServer, startMariadb, whyNoMariadb } from '../../src/testing/mariadb-server.ts';
import { type PostgresServer, startPostgres, whyNoPostgres } from '../../src/testing/postgres-server.ts';
import { removeTree } from '../../src/testing/repo-fixture.ts';

let dir: string;
const runner = (password: () => string, passphrase: string) =>
  sourceCli({ dir: () => dir, passphrase, sourcePassword: password });

/** No process still runs with the drill's scratch directory in its command line (its throwaway server). */
function assertNothingRunsIn(path: string) {
  const found = spawnSync('pgrep', ['-f', path], { encoding: 'utf8' });
  assert.equal(found.stdout.trim(), '', `a process of the drill still runs in ${path}`);
}

describe('drills of PostgreSQL snapshots', { skip: whyNoPostgres() }, () => {
  let pg: PostgresServer;
  let repo: string;
  const { amber, ok } = runner(() => pg.password, 'the pg drill passphrase');
  before(async () => {
    pg = await startPostgres();
    dir = mkdtempSync(join(tmpdir(), 'amber-drill-db-test-'));
    chmodSync(dir, 0o711); // the servers' own users pass through it when root runs the drill
    repo = join(dir, 'pg-repo');
    // The database's objects belong to a role of their own and grant to another: a dump of one
    // database names them without creating them, so the throwaway server must make them first.
    pg.sql('create role shop_owner nologin; create role clerk nologin; create database shop owner shop_owner;');
    pg.sql(
      `set role shop_owner;
       create table customers (id serial primary key, name text not null unique);
       create table orders (id bigserial primary key, customer int references customers(id), qty int not null);
       create index orders_qty on orders (qty);
       create view big_orders as select o.id, c.name from orders o join customers c on c.id = o.customer where o.qty > 5;
       create materialized view never_filled as select count(*) from orders with no data;
       grant select on big_orders to clerk;
       insert into customers (name) select 'customer ' || g from generate_series(1, 300) g;
       insert into orders (customer, qty) select 1 + g % 300, 1 + g % 9 from generate_series(1, 4000) g;`,
      'shop',
    );
    ok(['init', '--repo', repo]);
    ok(['backup', '--repo', repo, pg.url('shop')]);
  });
  after(async () => {
    await pg?.stop();
  });

  test('a drill restores into a throwaway server, reads every table, runs the SQL checks, and leaves nothing running', () => {
    const target = join(dir, 'pg-drill-1');
    const run = ok([
      'drill',
      'run',
      'latest',
      '--repo',
      repo,
      '--target',
      target,
      '--check-sql',
      'select count(*) from orders',
      '--check-sql',
      'select name from big_orders where id = 5',
      '--check',
      'test "$(psql -XAtc "select count(*) from customers")" = 300 && test "$PGDATABASE" = shop',
      '--json',
    ]);
    const record = JSON.parse(run.stdout);
    assert.equal(record.passed, true, record.reasons.join('; '));
    assert.deepEqual(
      record.stages.map((s: { name: string }) => s.name),
      ['select', 'server', 'restore', 'verify', 'queries', 'checks', 'cleanup'],
    );
    assert.equal(record.database.kind, 'postgresql');
    assert.match(record.database.server, /^1\d\./);
    assert.deepEqual(record.database.databases, [{ name: 'shop', tables: 2, rows: 4300 }]);
    assert.deepEqual(record.checks[0].output, ['4000']);
    assert.deepEqual(record.checks[1].output, [pg.sql('select name from big_orders where id = 5', 'shop')]);
    assert.equal(record.checks[2].exit, 0, record.checks[2].output.join('\n'));
    assert.ok(record.restoredBytes > 50_000, `${record.restoredBytes} bytes of dump`);
    // The RTO covers the queries: it ends after them, before the shell check.
    const queries = record.stages.find((s: { name: string }) => s.name === 'queries');
    assert.ok(
      Date.parse(queries.start) + queries.seconds * 1000 <= Date.parse(record.time) + record.rtoSeconds * 1000 + 5,
    );
    assert.equal(existsSync(target), false, 'the scratch space is removed');
    assertNothingRunsIn(target);
    const kept = JSON.parse(ok(['drill', 'show', record.id.slice(0, 12), '--repo', repo, '--json']).stdout);
    assert.deepEqual(kept.database, record.database, 'the audit log keeps what the database answered');
    const shown = ok(['drill', 'show', record.id.slice(0, 12), '--repo', repo]).stdout;
    assert.match(
      shown,
      /restored 1 database\(s\) from .* into a throwaway PostgreSQL 1\d\.\d+: shop \(2 tables, 4300 rows read\)/,
    );
  });

  test('an SQL check that returns no row, errs, or outlasts --check-timeout fails the drill, and the server still goes', () => {
    const target = join(dir, 'pg-drill-2');
    const run = amber([
      'drill',
      'run',
      'latest',
      '--repo',
      repo,
      '--target',
      target,
      '--check-sql',
      'select id from orders where qty > 100',
      '--check-sql',
      'select * from no_such_table',
      '--check-sql',
      'select pg_sleep(60)',
      '--check-timeout',
      '2s',
    ]);
    assert.equal(run.status, 1, run.stderr);
    assert.match(
      run.stderr,
      /the check `sql: select id from orders where qty > 100` exited 1: the query returned no rows/,
    );
    assert.match(run.stderr, /no_such_table.*does not exist/);
    assert.match(run.stderr, /`sql: select pg_sleep\(60\)` did not finish within 2 s/);
    assert.match(run.stderr, /\[DRILL_FAILED\]/);
    assert.equal(existsSync(target), false);
    assertNothingRunsIn(target);
  });

  test('a whole-server snapshot: every database restored; --check-sql needs --database; the user’s empty target keeps its mode', () => {
    ok(['backup', '--repo', repo, pg.url('')]);
    const needs = amber(['drill', 'run', 'latest', '--repo', repo, '--check-sql', 'select 1']);
    assert.equal(needs.status, 2, needs.stderr);
    assert.match(needs.stderr, /holds \d+ databases: say which one --check-sql runs in with --database NAME/);
    const target = join(dir, 'pg-drill-3');
    mkdirSync(target, { mode: 0o700 });
    const run = ok([
      'drill',
      'run',
      'latest',
      '--repo',
      repo,
      '--target',
      target,
      '--database',
      'shop',
      '--check-sql',
      "select 1 from pg_roles where rolname = 'clerk'",
      '--json',
    ]);
    const record = JSON.parse(run.stdout);
    assert.equal(record.passed, true, record.reasons.join('; '));
    const names = record.database.databases.map((d: { name: string }) => d.name);
    assert.ok(names.includes('shop') && names.includes('postgres'), names.join(','));
    assert.equal(statSync(target).mode & 0o777, 0o700, 'the mode of the user’s directory is put back');
    assertNothingRunsIn(target);
  });

  test('--check-sql on a snapshot of files is refused, saying what checks files', () => {
    const files = join(dir, 'files');
    mkdirSync(files, { recursive: true });
    ok(['backup', '--repo', repo, files]);
    const run = amber(['drill', 'run', 'latest', '--repo', repo, '--check-sql', 'select 1']);
    assert.equal(run.status, 2, run.stderr);
    assert.match(run.stderr, /is a backup of files: --check-sql checks a database snapshot/);
  });
});

describe('drills of MariaDB snapshots', { skip: whyNoMariadb() }, () => {
  let db: MariadbServer;
  let repo: string;
  const { amber, ok } = runner(() => db.password, 'the mariadb drill passphrase');
  before(async () => {
    db = await startMariadb();
    if (!dir) {
      dir = mkdtempSync(join(tmpdir(), 'amber-drill-db-test-'));
      chmodSync(dir, 0o711);
    }
    repo = join(dir, 'maria-repo');
    // A view that runs as an account of its own (SQL SECURITY DEFINER): on a server without that
    // account it cannot be read; the drill creates the accounts the snapshot names.
    db.sql(`create user 'app'@'%' identified by 'app secret'; create database shop; use shop;
      create table customers (id int auto_increment primary key, name varchar(100) not null) engine=innodb;
      create table orders (id bigint auto_increment primary key, customer int, qty int, key (qty)) engine=innodb;
      insert into customers (name) select concat('customer ', seq) from seq_1_to_200;
      insert into orders (customer, qty) select 1 + seq % 200, 1 + seq % 9 from seq_1_to_3000;
      create definer='app'@'%' sql security definer view big_orders as select o.id, c.name from orders o join customers c on c.id = o.customer where o.qty > 5;
      grant select on shop.* to 'app'@'%';`);
    ok(['init', '--repo', repo]);
    ok(['backup', '--repo', repo, db.url('shop')]);
  });
  after(async () => {
    await db?.stop();
    if (dir) await removeTree(dir);
  });

  test('a drill restores into a throwaway MariaDB, the definer’s view answers, and nothing is left running', () => {
    const snapshot = JSON.parse(ok(['snapshots', '--repo', repo, '--json']).stdout).at(-1);
    assert.deepEqual(snapshot.source.definers, [['app', '%']]);
    const target = join(dir, 'maria-drill-1');
    const run = ok([
      'drill',
      'run',
      'latest',
      '--repo',
      repo,
      '--target',
      target,
      '--check-sql',
      'select count(*) from big_orders',
      '--check',
      'test "$(mariadb --no-defaults --protocol=TCP -u "$AMBER_DRILL_DATABASE_USER" -N -B -e "select count(*) from shop.customers")" = 200',
      '--json',
    ]);
    const record = JSON.parse(run.stdout);
    assert.equal(record.passed, true, record.reasons.join('; '));
    assert.equal(record.database.kind, 'mysql');
    assert.match(record.database.server, /MariaDB/);
    assert.deepEqual(record.database.databases, [{ name: 'shop', tables: 2, rows: 3200 }]);
    assert.equal(record.checks[0].output[0], db.sql('select count(*) from big_orders', 'shop'));
    assert.equal(record.checks[1].exit, 0, record.checks[1].output.join('\n'));
    assert.equal(existsSync(target), false);
    assertNothingRunsIn(target);
  });

  test('an interrupted restore or a failing query leaves no server behind', () => {
    const target = join(dir, 'maria-drill-2');
    const run = amber([
      'drill',
      'run',
      'latest',
      '--repo',
      repo,
      '--target',
      target,
      '--check-sql',
      'select nonsense(',
    ]);
    assert.equal(run.status, 1, run.stderr);
    assert.match(run.stderr, /the check `sql: select nonsense\(` failed: .*ERROR 1064/);
    assert.equal(existsSync(target), false);
    assertNothingRunsIn(target);
  });
});
