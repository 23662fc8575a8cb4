// Red team, database drills: what a snapshot's dump can make the drill host do. A drill feeds the
// snapshot's dump to psql / the mariadb client on the drill host (as root, when root runs it) and
// restores it as the throwaway server's superuser. Whoever can write a snapshot (a write-only key
// on a backed-up host, a hacked pg_dump there) controls that dump, so:
//  1. a dump holding client meta-commands (psql `\!`, mariadb `\!`/`system`) must not run them:
//     psql runs under Amber's own `\restrict KEY`, the mariadb client with --sandbox;
//  2. code of the restored database that runs during the restore (a CHECK constraint's function
//     doing COPY … TO PROGRAM as the throwaway superuser) runs as an account that owns nothing of
//     the host's (not root, not `postgres`), without Amber's environment (no AMBER_PASSWORD).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sourceCli } from '../../src/testing/cli-runner.ts';
import { type MariadbServer, startMariadb, whyNoMariadb } from '../../src/testing/mariadb-server.ts';
import { type PostgresServer, startPostgres, whyNoPostgres } from '../../src/testing/postgres-server.ts';
import { removeTree } from '../../src/testing/repo-fixture.ts';

function amberIn(dir: string, password: string) {
  return sourceCli({ dir: () => dir, passphrase: 'red team passphrase', sourcePassword: () => password }).amber;
}

/** A fake TOOL first on PATH: the real one's dump with LINES added before its "complete" line (a hostile backup host). */
function hostileDumper(dir: string, tool: string, real: string, strip: string, lines: string, last: string) {
  const bin = join(dir, `hostile-${tool}`);
  mkdirSync(bin, { recursive: true });
  writeFileSync(
    join(bin, tool),
    `#!/bin/sh\n"${real}" "$@" | grep -v -e '${strip}' -e '${last}'\nprintf '%s\\n' '${lines}' '${last}'\n`,
  );
  chmodSync(join(bin, tool), 0o755);
  return { PATH: `${bin}:${process.env.PATH}` };
}

const which = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();

describe('red team: a PostgreSQL dump tries to run code on the drill host', { skip: whyNoPostgres() }, () => {
  let pg: PostgresServer;
  let dir: string;
  let repo: string;
  let amber: ReturnType<typeof amberIn>;
  const marker = join(tmpdir(), `redteam-drill-db-pg-${process.pid}`);
  before(async () => {
    pg = await startPostgres();
    dir = mkdtempSync(join(tmpdir(), 'amber-redteam-drill-pg-'));
    chmodSync(dir, 0o711);
    repo = join(dir, 'repo');
    amber = amberIn(dir, pg.password);
    assert.equal(amber(['init', '--repo', repo]).status, 0);
  });
  after(async () => {
    await pg?.stop();
    if (dir) await removeTree(dir);
    rmSync(`${marker}-meta`, { force: true });
    rmSync(`${marker}-copy`, { force: true });
  });

  test('a dump with a psql meta-command (\\!) cannot run a shell command on the drill host', () => {
    pg.sql('create database meta;');
    pg.sql('create table t (id int); insert into t values (1);', 'meta');
    const env = hostileDumper(
      dir,
      'pg_dump',
      which('pg_dump'),
      '^\\\\\\(un\\)\\?restrict ',
      `\\! id > ${marker}-meta`,
      '-- PostgreSQL database dump complete',
    );
    const backup = amber(['backup', '--repo', repo, pg.url('meta')], env);
    assert.equal(backup.status, 0, backup.stderr);
    const drill = amber(['drill', 'run', 'latest', '--repo', repo, '--json']);
    // Expected: the dump's client meta-commands refused (psql's \restrict, or the dump vetted), the drill failed.
    assert.equal(
      existsSync(`${marker}-meta`),
      false,
      `the drill ran the dump's shell command as ${existsSync(`${marker}-meta`) ? readFileSync(`${marker}-meta`, 'utf8').trim() : '?'} (drill exit ${drill.status})`,
    );
  });

  test('a genuine dump whose code runs during the restore (COPY TO PROGRAM as the throwaway superuser) runs it as an account that owns nothing: not root, not postgres, without Amber’s environment', () => {
    // What the host's own clusters hold: a file of the postgres account that only it can read.
    const secret = join(dir, 'cluster-secret');
    writeFileSync(secret, 'the host cluster secret\n', { mode: 0o600 });
    const uid = Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout);
    if (Number.isInteger(uid)) chownSync(secret, uid, uid);
    pg.sql('create role app login; create database app_db owner app;');
    pg.sql(
      `set role app;
       create function public.ok(x int) returns boolean language plpgsql as $f$
       begin
         if (select rolsuper from pg_catalog.pg_roles where rolname = current_user) then
           execute 'copy (select 1) to program ''(id; cat ${secret}; env) > ${marker}-copy 2>&1''';
         end if;
         return true;
       end $f$;
       create table t (x int check (public.ok(x)));
       insert into t values (1), (2);`,
      'app_db',
    );
    const backup = amber(['backup', '--repo', repo, pg.url('app_db')]);
    assert.equal(backup.status, 0, backup.stderr);
    amber(['drill', 'run', 'latest', '--repo', repo, '--json']);
    const seen = existsSync(`${marker}-copy`) ? readFileSync(`${marker}-copy`, 'utf8') : '';
    assert.ok(seen.includes('uid='), `the restored code did run inside the throwaway server: ${seen}`);
    assert.doesNotMatch(seen, /uid=0\(|\(postgres\)/, 'not as root, not as the account of the host’s clusters');
    assert.doesNotMatch(seen, /the host cluster secret/);
    assert.doesNotMatch(seen, /AMBER_PASSWORD|red team passphrase/i, 'nothing of Amber’s environment');
  });
});

describe('red team: a MariaDB dump tries to run code on the drill host', { skip: whyNoMariadb() }, () => {
  let db: MariadbServer;
  let dir: string;
  let repo: string;
  let amber: ReturnType<typeof amberIn>;
  const marker = join(tmpdir(), `redteam-drill-db-maria-${process.pid}`);
  before(async () => {
    db = await startMariadb();
    dir = mkdtempSync(join(tmpdir(), 'amber-redteam-drill-maria-'));
    chmodSync(dir, 0o711);
    repo = join(dir, 'repo');
    amber = amberIn(dir, db.password);
    assert.equal(amber(['init', '--repo', repo]).status, 0);
  });
  after(async () => {
    await db?.stop();
    if (dir) await removeTree(dir);
    rmSync(marker, { force: true });
  });

  test('a dump with a client command (\\!) cannot run a shell command on the drill host', () => {
    db.sql('create database meta; create table meta.t (id int); insert into meta.t values (1);');
    const env = hostileDumper(
      dir,
      'mariadb-dump',
      which('mariadb-dump'),
      'enable the sandbox mode',
      `\\! id > ${marker}`,
      '-- Dump completed',
    );
    const backup = amber(['backup', '--repo', repo, db.url('meta')], env);
    assert.equal(backup.status, 0, backup.stderr);
    const drill = amber(['drill', 'run', 'latest', '--repo', repo, '--json']);
    assert.equal(
      existsSync(marker),
      false,
      `the drill ran the dump's shell command as ${existsSync(marker) ? readFileSync(marker, 'utf8').trim() : '?'} (drill exit ${drill.status})`,
    );
  });
});
