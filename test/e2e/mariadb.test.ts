// MariaDB as a source, against a real MariaDB server (Debian's mariadb-server) started in a scratch
// directory on 127.0.0.1: a database with tables, indexes, a foreign key, a view, a function and a
// trigger is backed up by URL and restored into a new database with identical rows and schema; a
// write load during the dump does not tear it; a server killed mid-dump fails the backup clearly
// and leaves the repository valid; an existing database is not overwritten without --overwrite.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BIN } from '../../src/testing/agent-fixture.ts';
import { type MariadbServer, startMariadb, whyNoMariadb } from '../../src/testing/mariadb-server.ts';
import { removeTree } from '../../src/testing/repo-fixture.ts';

const skip = whyNoMariadb();
let db: MariadbServer;
let dir: string;
let repo: string;
const env = (extra: Record<string, string> = {}) => ({
  PATH: process.env.PATH,
  AMBER_PASSWORD: 'the mariadb test passphrase',
  AMBER_KDF_LOG_N: '10',
  AMBER_CACHE_DIR: join(dir, 'cache'),
  AMBER_SOURCE_PASSWORD: db.password,
  ...extra,
});
function amber(args: string[], extra?: Record<string, string>) {
  const result = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: env(extra) });
  return { status: result.status, stdout: String(result.stdout), stderr: String(result.stderr) };
}
function ok(args: string[]) {
  const run = amber(args);
  assert.equal(run.status, 0, `amber ${args.join(' ')}: ${run.stdout}${run.stderr}`);
  return run;
}

/** Row checksums of every table, and the schema as SHOW CREATE prints it. */
function fingerprint(database: string) {
  const tables = db
    .sql(
      `select table_name from information_schema.tables where table_schema = '${database}' and table_type = 'BASE TABLE' order by 1`,
    )
    .split('\n');
  const rows = tables.map((table) => db.sql(`checksum table \`${table}\``, database).split('\t')[1]);
  const schema = [
    ...tables.map((t) => db.sql(`show create table \`${t}\``, database).split('\t')[1]),
    db
      .sql('show create view big_orders', database)
      .split('\t')[1]
      .replace(/DEFINER=\S+ /, ''),
    db
      .sql('show create function order_total', database)
      .split('\t')[2]
      .replace(/DEFINER=\S+ /, ''),
    db.sql('show triggers', database).split('\t').slice(0, 5).join(' '),
  ];
  return { rows, schema };
}

describe('MariaDB sources', { skip }, () => {
  before(async () => {
    db = await startMariadb();
    dir = mkdtempSync(join(tmpdir(), 'amber-mariadb-test-'));
    repo = join(dir, 'repo');
    db.sql(`create database shop character set utf8mb4; use shop;
      create table customers (id int auto_increment primary key, name varchar(100) not null unique) engine=innodb;
      create table orders (id bigint auto_increment primary key, customer int, item varchar(50) not null, qty int,
        note text, key orders_item (item), foreign key (customer) references customers(id)) engine=innodb;
      insert into customers (name) select concat('customer ', seq) from seq_1_to_500;
      insert into orders (customer, item, qty, note)
        select 1 + seq % 500, concat('item-', seq % 97), 1 + seq % 9, if(seq % 10 = 0, 'Grüße, ''quoted'' ☃', null) from seq_1_to_50000;
      create view big_orders as select o.id, c.name, o.qty from orders o join customers c on c.id = o.customer where o.qty > 5;
      create function order_total(c int) returns bigint reads sql data return (select coalesce(sum(qty), 0) from orders where customer = c);
      create trigger orders_qty before insert on orders for each row set new.qty = greatest(coalesce(new.qty, 1), 1);
      create table accounts (id int primary key, balance int not null) engine=innodb;
      insert into accounts select seq, 1000 from seq_1_to_100;`);
    ok(['init', '--repo', repo]);
  });
  after(async () => {
    await db?.stop();
    if (dir) await removeTree(dir);
  });

  test('a database backed up by URL restores into a new database with identical rows, indexes, view, function and trigger', () => {
    ok(['backup', '--repo', repo, db.url('shop')]);
    const listed = JSON.parse(ok(['snapshots', '--repo', repo, '--json']).stdout).at(-1);
    assert.equal(listed.source.kind, 'mysql');
    assert.deepEqual(listed.source.databases, ['shop']);
    assert.match(listed.source.serverVersion, /MariaDB/);
    const listing = ok(['ls', '--repo', repo, 'latest']).stdout;
    assert.match(listing, /^# mysql:\/\/.*\/shop: 10\.\d+\.\d+-MariaDB\S*, plain dump of shop /m);
    assert.match(listing, /\/mysql\/shop\.sql/);
    ok(['restore', 'latest', '--repo', repo, '--to', db.url('shop_copy')]);
    const [a, b] = [fingerprint('shop'), fingerprint('shop_copy')];
    assert.deepEqual(b.rows, a.rows);
    assert.deepEqual(b.schema, a.schema);
    assert.equal(db.sql('select order_total(7)', 'shop_copy'), db.sql('select order_total(7)', 'shop'));
  });

  test('an existing database is not overwritten without --overwrite; a wrong password says so; a password in the URL is refused', () => {
    const refused = amber(['restore', 'latest', '--repo', repo, '--to', db.url('shop_copy')]);
    assert.equal(refused.status, 1, refused.stderr);
    assert.match(
      refused.stderr,
      /the database shop_copy on mysql:\/\/.*\/shop_copy exists and holds \d+ object\(s\) \(tables, views, routines, events\) \[TARGET_EXISTS\]/,
    );
    db.sql('delete from orders where id < 100', 'shop_copy');
    ok(['restore', 'latest', '--repo', repo, '--to', db.url('shop_copy'), '--overwrite']);
    assert.deepEqual(fingerprint('shop_copy').rows, fingerprint('shop').rows);
    const wrong = amber(['backup', '--repo', repo, db.url('shop')], { AMBER_SOURCE_PASSWORD: 'not it' });
    assert.equal(wrong.status, 1);
    assert.match(wrong.stderr, /Access denied for user .*\[SOURCE_AUTH_FAILED\]/);
    const inUrl = amber(['backup', '--repo', repo, `mysql://${db.user}:secret@127.0.0.1:${db.port}/shop`]);
    assert.equal(inUrl.status, 2);
    assert.match(inUrl.stderr, /has a password in it/);
  });

  test('a write load during the backup does not tear the dump (one transaction): the restored accounts keep their total', async () => {
    const transfers = Array.from(
      { length: 20_000 },
      (_, i) =>
        `start transaction; update accounts set balance = balance - 7 where id = ${1 + (i % 100)}; update accounts set balance = balance + 7 where id = ${1 + ((i * 37) % 100)}; insert into orders (customer, item, qty) values (1, 'load', 1); commit;`,
    ).join('\n');
    const load = spawn(
      'mariadb',
      ['--no-defaults', '--protocol=TCP', '-h', '127.0.0.1', '-P', String(db.port), '-u', db.user, 'shop'],
      {
        env: { ...process.env, MYSQL_PWD: db.password },
        stdio: ['pipe', 'ignore', 'ignore'],
      },
    );
    load.stdin.end(transfers);
    await sleep(200);
    const backup = JSON.parse(ok(['backup', '--repo', repo, db.url('shop'), '--json']).stdout);
    await new Promise((resolve) => load.on('close', resolve));
    ok(['restore', backup.id, '--repo', repo, '--to', db.url('shop_during')]);
    assert.equal(db.sql('select sum(balance) from accounts', 'shop_during'), '100000');
    const loadRows = Number(db.sql("select count(*) from orders where item = 'load'", 'shop_during'));
    assert.ok(loadRows > 0 && loadRows < 20_000, `the dump should fall inside the load (${loadRows} of its rows)`);
  });

  test('a server killed in the middle of the dump fails the backup clearly; no snapshot, a valid repository', async () => {
    db.sql(
      'create table bulk (id int primary key, payload text) engine=innodb; insert into bulk select seq, repeat(md5(seq), 20) from seq_1_to_300000;',
      'shop',
    );
    const before = JSON.parse(ok(['snapshots', '--repo', repo, '--json']).stdout).length;
    const backup = spawn(process.execPath, [BIN, 'backup', '--repo', repo, db.url('shop')], {
      env: env(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    backup.stderr.setEncoding('utf8').on('data', (piece: string) => {
      stderr += piece;
    });
    for (let i = 0; i < 200; i++) {
      const dumping = db.sql(
        "select count(*) from information_schema.processlist where info like 'SELECT /*!40001 SQL_NO_CACHE */%'",
      );
      if (dumping !== '0') break;
      await sleep(25);
    }
    db.kill();
    const status = await new Promise<number | null>((resolve) => backup.on('close', resolve));
    assert.equal(status, 1, stderr);
    assert.match(stderr, /mariadb-dump on mysql:\/\/.*\/shop failed .*\[SOURCE_(FAILED|UNREACHABLE)\]/);
    assert.equal(JSON.parse(ok(['snapshots', '--repo', repo, '--json']).stdout).length, before);
    ok(['verify', '--repo', repo]);
  });
});
