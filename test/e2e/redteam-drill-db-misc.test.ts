// Red team, database drills against a real PostgreSQL on 127.0.0.1, each test one attack that once
// broke the drill (now fixed):
//  - a --check-sql whose client forks (psql's \!) outlived --check-timeout: the drill waited for it;
//  - a query that returns a row holding '' or NULL was reported as "returned no rows";
//  - a whole-server snapshot with a database named "a/b" (legal in PostgreSQL) could not be drilled;
//  - a whole-server snapshot whose roles' SQL (globals.sql) fails passed the drill;
//  - --keep left the user's own --target directory with the mode the drill gave it (0711);
//  - a second SIGINT (Ctrl-C pressed twice) killed amber and left the throwaway server running.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BIN } from '../../src/testing/agent-fixture.ts';
import { PG_BIN, type PostgresServer, startPostgres, whyNoPostgres } from '../../src/testing/postgres-server.ts';
import { removeTree } from '../../src/testing/repo-fixture.ts';

describe('red team: database drill edge cases (PostgreSQL)', { skip: whyNoPostgres() }, () => {
  let pg: PostgresServer;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  const amber = (args: string[], extra: Record<string, string> = {}) => {
    const result = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...env, ...extra } });
    return { status: result.status, stdout: String(result.stdout), stderr: String(result.stderr) };
  };
  const record = (args: string[]) => JSON.parse(amber([...args, '--json']).stdout);
  const repoOf = (name: string) => {
    const repo = join(dir, name);
    assert.equal(amber(['init', '--repo', repo]).status, 0);
    return repo;
  };
  before(async () => {
    pg = await startPostgres();
    dir = mkdtempSync(join(tmpdir(), 'amber-redteam-drill-misc-'));
    chmodSync(dir, 0o711);
    env = {
      PATH: process.env.PATH,
      AMBER_PASSWORD: 'red team passphrase',
      AMBER_KDF_LOG_N: '10',
      AMBER_CACHE_DIR: join(dir, 'cache'),
      AMBER_SOURCE_PASSWORD: pg.password,
    };
    pg.sql('create database small;');
    pg.sql("create table t (id int, s text); insert into t values (1, ''), (2, null);", 'small');
  });
  after(async () => {
    // What a killed drill left running (the server it started) is stopped here.
    for (const line of spawnSync('pgrep', ['-af', join(dir, 'sigint')], { encoding: 'utf8' }).stdout.split('\n')) {
      const data = /-D (\S+)/.exec(line)?.[1];
      if (data)
        spawnSync('runuser', ['-u', 'postgres', '--', join(PG_BIN!, 'pg_ctl'), '-D', data, '-m', 'immediate', 'stop']);
    }
    await pg?.stop();
    if (dir) await removeTree(dir);
  });

  test('--check-timeout bounds a --check-sql whose client forked (psql \\!)', () => {
    const repo = repoOf('timeout');
    assert.equal(amber(['backup', '--repo', repo, pg.url('small')]).status, 0);
    const start = Date.now();
    const r = record([
      'drill',
      'run',
      'latest',
      '--repo',
      repo,
      '--check-sql',
      '\\! sleep 25',
      '--check-timeout',
      '2s',
    ]);
    const seconds = (Date.now() - start) / 1000;
    assert.equal(r.passed, false);
    assert.match(r.reasons[0], /did not finish within 2 s/);
    assert.ok(seconds < 15, `the drill said "did not finish within 2 s" but waited ${seconds} s for the query's child`);
  });

  test('a query that returns one row holding an empty string or NULL passes ("must return at least one row")', () => {
    const repo = repoOf('emptyrow');
    assert.equal(amber(['backup', '--repo', repo, pg.url('small')]).status, 0);
    const r = record([
      'drill',
      'run',
      'latest',
      '--repo',
      repo,
      '--check-sql',
      'select s from t where id = 1',
      '--check-sql',
      'select s from t where id = 2',
    ]);
    assert.deepEqual(
      r.checks.map((c: { exit: number; output: string[] }) => [c.exit, c.output[0]]),
      [
        [0, ''],
        [0, ''],
      ],
      `one row each, reported as ${JSON.stringify(r.checks.map((c: { output: string[] }) => c.output))}`,
    );
  });

  test('a whole-server snapshot with a database named "a/b" can be drilled', () => {
    pg.sql('create database "a/b";');
    const repo = repoOf('slash');
    const backup = amber(['backup', '--repo', repo, pg.url('')]);
    assert.equal(backup.status, 0, backup.stderr);
    const r = record(['drill', 'run', 'latest', '--repo', repo]);
    pg.sql('drop database "a/b";');
    assert.equal(r.passed, true, r.reasons.join('; '));
  });

  test('a whole-server snapshot whose roles (globals.sql) do not restore fails its drill', () => {
    const bin = join(dir, 'hostile-bin');
    mkdirSync(bin, { recursive: true });
    const real = spawnSync('sh', ['-c', 'command -v pg_dumpall'], { encoding: 'utf8' }).stdout.trim();
    writeFileSync(
      join(bin, 'pg_dumpall'),
      `#!/bin/sh\n"${real}" "$@" | grep -v '^-- PostgreSQL database cluster dump complete'\necho 'CREATE ROLE broken WITH NOSUCHOPTION;'\necho 'this is not SQL;'\necho '-- PostgreSQL database cluster dump complete'\n`,
    );
    chmodSync(join(bin, 'pg_dumpall'), 0o755);
    const repo = repoOf('globals');
    const backup = amber(['backup', '--repo', repo, pg.url('')], { PATH: `${bin}:${process.env.PATH}` });
    assert.equal(backup.status, 0, backup.stderr);
    const r = record(['drill', 'run', 'latest', '--repo', repo, '--database', 'small', '--check-sql', 'select 1']);
    assert.equal(r.passed, false, 'the drill passed although the roles\u2019 SQL failed to run in an empty server');
  });

  test('--keep puts back the mode of the user’s own --target directory', () => {
    const repo = repoOf('keep');
    assert.equal(amber(['backup', '--repo', repo, pg.url('small')]).status, 0);
    const target = join(dir, 'mine');
    mkdirSync(target, { mode: 0o700 });
    const r = record(['drill', 'run', 'latest', '--repo', repo, '--target', target, '--keep']);
    assert.equal(r.passed, true, r.reasons.join('; '));
    assert.equal((statSync(target).mode & 0o777).toString(8), '700');
  });

  test('Ctrl-C pressed twice during the restore leaves no throwaway server running', async () => {
    pg.sql('create database big;');
    pg.sql(
      "create table t (id int, pad text); insert into t select g, repeat('x', 200) from generate_series(1, 1500000) g;",
      'big',
    );
    const repo = repoOf('sigint-repo');
    assert.equal(amber(['backup', '--repo', repo, pg.url('big')]).status, 0);
    const target = join(dir, 'sigint');
    const child = spawn(process.execPath, [BIN, 'drill', 'run', 'latest', '--repo', repo, '--target', target], {
      env,
      stdio: 'ignore',
    });
    const exited = new Promise<number | string | null>((resolve) =>
      child.on('exit', (code, signal) => resolve(code ?? signal)),
    );
    // Into the restore: the server is up.
    for (let i = 0; i < 300 && !existsSync(join(target, 'postgresql', 'data', 'postmaster.pid')); i++) await sleep(100);
    await sleep(1500);
    child.kill('SIGINT');
    await sleep(20);
    child.kill('SIGINT');
    const how = await exited;
    await sleep(500);
    const left = spawnSync('pgrep', ['-af', target], { encoding: 'utf8' }).stdout.trim();
    assert.equal(left, '', `amber ended (${how}) and left running: ${left}`);
    assert.equal(existsSync(target), false, 'the restored data is left in the scratch space');
  });
});
