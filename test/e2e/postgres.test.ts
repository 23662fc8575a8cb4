// PostgreSQL as a source, against a real PostgreSQL server (Debian's postgresql-15) started in a
// scratch directory on 127.0.0.1: a database with tables, indexes, a view, a sequence, a function
// and a role is backed up by URL and restored into a new database with identical rows and schema;
// a write load during the dump does not tear it; a server killed mid-dump fails the backup clearly
// and leaves the repository valid; an existing database is not overwritten without --overwrite.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BIN } from '../../src/testing/agent-fixture.ts';
import { PG_BIN, type PostgresServer, startPostgres, whyNoPostgres } from '../../src/testing/postgres-server.ts';
import { removeTree } from '../../src/testing/repo-fixture.ts';

const skip = whyNoPostgres();
let pg: PostgresServer;
let dir: string;
let repo: string;
const env = (extra: Record<string, string> = {}) => ({
  PATH: process.env.PATH,
  AMBER_PASSWORD: 'the postgres test passphrase',
  AMBER_KDF_LOG_N: '10',
  AMBER_CACHE_DIR: join(dir, 'cache'),
  AMBER_SOURCE_PASSWORD: pg.password,
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

/** Every table's rows as one checksum, and the schema as pg_dump prints it (without the database's own name). */
function fingerprint(database: string) {
  const tables = pg.sql("select tablename from pg_tables where schemaname = 'public' order by 1", database).split('\n');
  const rows = tables.map((table) => [
    table,
    pg.sql(
      `select count(*) || ':' || coalesce(md5(string_agg(t::text, '|' order by t::text)), '') from "${table}" t`,
      database,
    ),
  ]);
  const schema = spawnSync(join(PG_BIN!, 'pg_dump'), ['--schema-only', '--no-comments', '-d', database], {
    encoding: 'utf8',
    env: { ...process.env, PGHOST: pg.host, PGPORT: String(pg.port), PGUSER: pg.user, PGPASSWORD: pg.password },
  })
    // Comments, and the random key of pg_dump's \restrict guard, differ from one dump to the next.
    .stdout.replace(/^--.*$/gm, '')
    .replace(/^\\(un)?restrict .*$/gm, '');
  return { rows, schema };
}

describe('PostgreSQL sources', { skip }, () => {
  before(async () => {
    pg = await startPostgres();
    dir = mkdtempSync(join(tmpdir(), 'amber-pg-test-'));
    repo = join(dir, 'repo');
    pg.sql('create database shop; create role clerk nologin;');
    pg.sql(
      `create table customers (id serial primary key, name text not null unique, since date default current_date);
       create table orders (id bigserial primary key, customer int references customers(id), item text not null,
                            qty int check (qty > 0), note text);
       create index orders_item on orders (item);
       create sequence invoice_numbers start 1000;
       create view big_orders as select o.id, c.name, o.qty from orders o join customers c on c.id = o.customer where o.qty > 5;
       create function order_total(c int) returns bigint language sql stable as 'select coalesce(sum(qty), 0) from orders where customer = c';
       grant select on orders to clerk;
       insert into customers (name) select 'customer ' || g from generate_series(1, 500) g;
       insert into orders (customer, item, qty, note)
         select 1 + g % 500, 'item-' || (g % 97), 1 + g % 9, case when g % 10 = 0 then 'Grüße, ''quoted'' ☃' end
         from generate_series(1, 50000) g;
       select setval('invoice_numbers', 1234);
       create table accounts (id int primary key, balance int not null);
       insert into accounts select g, 1000 from generate_series(1, 100) g;`,
      'shop',
    );
    ok(['init', '--repo', repo]);
  });
  after(async () => {
    await pg?.stop();
    if (dir) await removeTree(dir);
  });

  test('a database backed up by URL restores into a new database with identical rows, views, indexes, sequences and functions', () => {
    const backup = JSON.parse(ok(['backup', '--repo', repo, pg.url('shop'), '--json']).stdout);
    assert.equal(backup.partial, false);
    const listed = JSON.parse(ok(['snapshots', '--repo', repo, '--json']).stdout).at(-1);
    assert.equal(listed.source.kind, 'postgresql');
    assert.deepEqual(listed.source.databases, ['shop']);
    assert.equal(listed.source.url, pg.url('shop'));
    assert.match(listed.source.serverVersion, /^15\./);
    assert.deepEqual(listed.paths, [pg.url('shop')]);
    const listing = ok(['ls', '--repo', repo, 'latest']).stdout;
    assert.match(listing, /^# postgresql:\/\/.*\/shop: PostgreSQL 15\.\d+, plain dump of shop /m);
    assert.match(listing, /\/postgresql\/shop\.sql/);

    const restored = JSON.parse(
      ok(['restore', 'latest', '--repo', repo, '--to', pg.url('shop_copy'), '--json']).stdout,
    );
    assert.equal(restored.database, 'shop_copy');
    assert.ok(restored.bytes > 1_000_000);
    const [a, b] = [fingerprint('shop'), fingerprint('shop_copy')];
    assert.deepEqual(b.rows, a.rows);
    assert.equal(b.schema, a.schema);
    assert.equal(pg.sql('select last_value from invoice_numbers', 'shop_copy'), '1234');
    assert.equal(pg.sql('select order_total(7)', 'shop_copy'), pg.sql('select order_total(7)', 'shop'));
    assert.equal(
      pg.sql('select count(*) from big_orders', 'shop_copy'),
      pg.sql('select count(*) from big_orders', 'shop'),
    );
    assert.equal(pg.sql("select has_table_privilege('clerk', 'orders', 'select')", 'shop_copy'), 't');
  });

  test('an existing database is not overwritten without --overwrite; an older dump restores, a password in the URL is refused', () => {
    const refused = amber(['restore', 'latest', '--repo', repo, '--to', pg.url('shop_copy')]);
    assert.equal(refused.status, 1, refused.stderr);
    assert.match(
      refused.stderr,
      /the database shop_copy on postgresql:\/\/.*\/shop_copy exists and holds \d+ object\(s\) \[TARGET_EXISTS\]/,
    );
    pg.sql('delete from orders where id < 100', 'shop_copy');
    ok(['restore', 'latest', '--repo', repo, '--to', pg.url('shop_copy'), '--overwrite']);
    assert.deepEqual(fingerprint('shop_copy').rows, fingerprint('shop').rows);
    const withPassword = amber(['backup', '--repo', repo, `postgresql://${pg.user}:secret@127.0.0.1:${pg.port}/shop`]);
    assert.equal(withPassword.status, 2);
    assert.match(withPassword.stderr, /has a password in it, which any user can read in `ps` \[USAGE\]/);
    const wrong = amber(['backup', '--repo', repo, pg.url('shop')], { AMBER_SOURCE_PASSWORD: 'wrong' });
    assert.equal(wrong.status, 1);
    assert.match(wrong.stderr, /password authentication failed .*\[SOURCE_AUTH_FAILED\]/);
    assert.doesNotMatch(wrong.stderr, /wrong/);
  });

  test('a write load during the backup does not tear the dump: the restored accounts keep their total', async () => {
    // Transfers move money between accounts in single transactions: any consistent state sums to 100,000.
    const load = spawn(join(PG_BIN!, 'psql'), ['-X', '-q', '-d', 'shop', '-v', 'ON_ERROR_STOP=1'], {
      env: { ...process.env, PGHOST: pg.host, PGPORT: String(pg.port), PGUSER: pg.user, PGPASSWORD: pg.password },
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    const transfers = Array.from(
      { length: 20_000 },
      (_, i) =>
        `begin; update accounts set balance = balance - 7 where id = ${1 + (i % 100)}; update accounts set balance = balance + 7 where id = ${1 + ((i * 37) % 100)}; insert into orders (customer, item, qty) values (1, 'load', 1); commit;`,
    ).join('\n');
    load.stdin.write(transfers);
    load.stdin.end();
    await sleep(200);
    const backup = JSON.parse(ok(['backup', '--repo', repo, pg.url('shop'), '--json']).stdout);
    await new Promise((resolve) => load.on('close', resolve));
    ok(['restore', backup.id, '--repo', repo, '--to', pg.url('shop_during')]);
    assert.equal(pg.sql('select sum(balance) from accounts', 'shop_during'), '100000');
    const loadRows = Number(pg.sql("select count(*) from orders where item = 'load'", 'shop_during'));
    assert.ok(loadRows > 0 && loadRows < 20_000, `the dump should fall inside the load (${loadRows} of its rows)`);
  });

  test('every database of the server and its roles, by postgresql://…/; restoring one of them by --database', () => {
    const whole = JSON.parse(ok(['backup', '--repo', repo, pg.url(''), '--json']).stdout);
    const listed = JSON.parse(ok(['snapshots', '--repo', repo, '--json']).stdout).find(
      (s: { id: string }) => s.id === whole.id,
    );
    assert.ok(listed.source.databases.includes('shop') && listed.source.whole === true);
    assert.match(ok(['ls', '--repo', repo, whole.id]).stdout, /\/postgresql\/globals\.sql/);
    const ambiguous = amber(['restore', whole.id, '--repo', repo, '--to', pg.url('x')]);
    assert.equal(ambiguous.status, 2);
    assert.match(ambiguous.stderr, /holds \d+ databases: say which with --database NAME/);
    const one = JSON.parse(
      ok(['restore', whole.id, '--repo', repo, '--to', pg.url('shop_from_whole'), '--database', 'shop', '--json'])
        .stdout,
    );
    assert.ok(one.rolesSkipped >= 1, 'the roles existed already and were kept');
    assert.equal(pg.sql('select count(*) from customers', 'shop_from_whole'), '500');
  });

  test('the policy file: a source by url, backed up and drilled by amber run as the agent would', async () => {
    writeFileSync(join(dir, 'pg.pass'), `${pg.password}\n`);
    const file = join(dir, 'policy.yaml');
    writeFileSync(
      file,
      `repositories:
  main: { repo: ${repo} }
sources:
  - name: shop
    url: ${pg.url('shop')}
    password-file: pg.pass
    repository: main
    schedule: every 1d
    retain: { daily: 35d }
    rto: 1h
    drill: { every: 7d, select: latest, check-sql: ['select count(*) from orders'], checks: ['test "$(psql -XAtc "select count(*) from customers")" = 500'] }
state-dir: state
`,
    );
    const run = amber(['run', 'shop', '--config', file, '--json'], { AMBER_SOURCE_PASSWORD: '' });
    assert.equal(run.status, 0, run.stderr);
    const backup = JSON.parse(run.stdout);
    assert.equal(backup.status, 'succeeded');
    assert.equal(backup.tier, 'daily');
    const listed = JSON.parse(ok(['snapshots', '--repo', repo, '--json']).stdout).find(
      (s: { id: string }) => s.id === backup.snapshot,
    );
    assert.equal(listed.source.kind, 'postgresql');
    writeFileSync(file, readFileSync(file, 'utf8').replace('password-file: pg.pass', 'password-file: gone.pass'));
    const missing = amber(['run', 'shop', '--config', file]);
    assert.equal(missing.status, 2, missing.stderr);
    assert.match(
      missing.stderr,
      /cannot read the password-file .*gone\.pass of source shop: ENOENT.*\[CONFIG_INVALID\]/,
    );
    const drill = JSON.parse(ok(['run', 'drill:shop', '--config', file, '--json']).stdout);
    assert.equal(drill.status, 'succeeded', JSON.stringify(drill.error));
    assert.equal(drill.snapshot, backup.snapshot);
    const record = JSON.parse(ok(['drill', 'show', drill.drill.drill.slice(0, 12), '--repo', repo, '--json']).stdout);
    assert.equal(record.checks[0].command, 'sql: select count(*) from orders');
    assert.equal(record.checks[0].output[0], pg.sql('select count(*) from orders', 'shop'));
    assert.equal(record.checks[1].exit, 0, record.checks[1].output.join('\n'));
  });

  test('a server that dies in the middle of the dump fails the backup clearly; no snapshot, a valid repository', async () => {
    pg.sql(
      `create table bulk as select g as id, repeat(md5(g::text), 20) as payload from generate_series(1, 400000) g;`,
      'shop',
    );
    const before = JSON.parse(ok(['snapshots', '--repo', repo, '--json']).stdout).length;
    const backup = spawn(process.execPath, [BIN, 'backup', '--repo', repo, pg.url('shop')], {
      env: env(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    backup.stderr.setEncoding('utf8').on('data', (piece: string) => {
      stderr += piece;
    });
    // Once pg_dump runs (it shows in pg_stat_activity), the server goes down hard.
    for (let i = 0; i < 200; i++) {
      const dumping = pg.sql(
        "select count(*) from pg_stat_activity where application_name = 'amber' and query like 'COPY%'",
      );
      if (dumping !== '0') break;
      await sleep(25);
    }
    pg.kill();
    const status = await new Promise<number | null>((resolve) => backup.on('close', resolve));
    assert.equal(status, 1, stderr);
    assert.match(stderr, /pg_dump on postgresql:\/\/.*\/shop failed .*\[SOURCE_(FAILED|UNREACHABLE)\]/);
    assert.equal(JSON.parse(ok(['snapshots', '--repo', repo, '--json']).stdout).length, before);
    ok(['verify', '--repo', repo]);
  });
});
