// The isolated copy on the command line, as an operator runs it: `amber init --from-repo`, `amber
// copy` with its filters, `amber copy status`, `audit verify --anchors-from`, the usage errors, and
// a copy killed part-way and run again. Real processes of the real bin, real repositories on disk.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { liftAttributes, removeTree, seededBytes } from '../../src/testing/repo-fixture.ts';
import { compareTrees } from '../../src/testing/tree-compare.ts';

const BIN = fileURLToPath(new URL('../../bin/amber.js', import.meta.url));
const PRIMARY_PASS = 'the primary passphrase';
const COPY_PASS = 'the copy passphrase, another one';
const DAY = 86_400_000;
const MiB = 1024 * 1024;

let dir: string;

interface Run {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Starts the real bin; AMBER_PASSWORD is the copy's unless `password` says otherwise. */
function start(args: string[], options: { password?: string; env?: Record<string, string> } = {}) {
  const child = spawn(process.execPath, [BIN, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: process.env.PATH,
      AMBER_PASSWORD: options.password ?? COPY_PASS,
      AMBER_KDF_LOG_N: '10',
      AMBER_CACHE_DIR: join(dir, 'cache'),
      ...options.env,
    },
  });
  const run: Run = { status: null, signal: null, stdout: '', stderr: '' };
  child.stdout.setEncoding('utf8').on('data', (piece: string) => {
    run.stdout += piece;
  });
  child.stderr.setEncoding('utf8').on('data', (piece: string) => {
    run.stderr += piece;
  });
  const done = new Promise<Run>((resolve) =>
    child.on('close', (status, signal) => {
      run.status = status;
      run.signal = signal;
      resolve(run);
    }),
  );
  return { child: child as ChildProcess, done };
}

const amber = (args: string[], options?: { password?: string; env?: Record<string, string> }) =>
  start(args, options).done;

/** Runs a command that must succeed, with --json, and returns its output. */
async function json(args: string[], options?: { password?: string }) {
  const result = await amber([...args, '--json'], options);
  assert.equal(result.status, 0, `amber ${args.join(' ')}: ${result.stderr}`);
  return JSON.parse(result.stdout);
}

/** A command that must fail with `code` and exit `status`; returns its run. */
async function refused(args: string[], code: string, status: number, options?: { password?: string }) {
  const result = await amber(args, options);
  const what = `amber ${args.join(' ')}`;
  assert.equal(result.status, status, `${what} exits ${status}: ${result.stdout}${result.stderr}`);
  if (args.includes('--json')) assert.equal(JSON.parse(result.stderr).error.code, code, `${what} fails with ${code}`);
  else assert.match(result.stderr, new RegExp(`^error: .* \\[${code}\\]\\n`), `${what} fails with ${code}`);
  return result;
}

let passFile: string;
const from = (primary: string) => ['--from-repo', primary, '--from-password-file', passFile];

async function initPair(name: string, copyFlags: string[] = []) {
  const primary = join(dir, `${name}-primary`);
  const copy = join(dir, `${name}-copy`);
  await json(['init', '--repo', primary], { password: PRIMARY_PASS });
  const made = await json(['init', '--repo', copy, ...from(primary), ...copyFlags]);
  return { primary, copy, made };
}

async function backupAt(primary: string, args: string[]) {
  return json(['backup', '--repo', primary, ...args], { password: PRIMARY_PASS });
}

/** Bytes of every object file under a repository directory, temporary files left out. */
async function objectBytes(repo: string): Promise<{ files: number; bytes: number }> {
  let files = 0;
  let bytes = 0;
  for (const entry of await fs.readdir(repo, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || entry.parentPath.startsWith(join(repo, 'tmp'))) continue;
    files += 1;
    bytes += (await fs.stat(join(entry.parentPath, entry.name))).size;
  }
  return { files, bytes };
}

/** Object names under `repo/prefix/`, found by reading the directory itself. */
async function namesUnder(repo: string, prefix: string): Promise<string[]> {
  try {
    const entries = await fs.readdir(join(repo, prefix), { recursive: true, withFileTypes: true });
    return entries.filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name));
  } catch {
    return [];
  }
}

async function writeFiles(root: string, label: string, sizes: number[]): Promise<void> {
  await fs.mkdir(join(root, 'sub'), { recursive: true });
  for (const [n, size] of sizes.entries())
    await fs.writeFile(join(root, n % 2 ? 'sub' : '', `${label}-${n}.bin`), seededBytes(size, `${label}-${n}`));
  await fs.writeFile(join(root, 'notes.txt'), `${label}: the same words again and again\n`.repeat(2000));
  await fs.symlink('notes.txt', join(root, 'link'));
}

/** Restores `id` from `repo` and compares every path it backed up with the source, byte for byte. */
async function restoreAndCompare(repo: string, id: string, paths: string[]): Promise<void> {
  const target = join(dir, `restore-${id.slice(0, 12)}-${Math.random().toString(36).slice(2, 8)}`);
  const restored = await amber(['restore', '--repo', repo, id, '--target', target]);
  assert.equal(restored.status, 0, restored.stderr);
  for (const path of paths) assert.deepEqual(await compareTrees(path, join(target, path)), [], `${path} of ${id}`);
  await removeTree(target);
}

before(async () => {
  dir = await fs.mkdtemp(join(tmpdir(), 'amber-copy-cli-'));
  passFile = join(dir, 'primary.pass');
  await fs.writeFile(passFile, `${PRIMARY_PASS}\n`);
});

after(() => removeTree(dir));

describe('amber copy on the command line', { concurrency: true }, () => {
  // fs → fs: provenance, the copy's own lock, the primary gone. These four run in order.
  describe('a copy of two snapshots', { concurrency: false }, () => {
    const main = { primary: '', copy: '', first: '', second: '', srcA: '', srcB: '', primaryId: '' };

    test('init --from-repo makes a copy; amber copy brings both snapshots with provenance and the copy’s own lock', async () => {
      main.srcA = join(dir, 'main-a');
      main.srcB = join(dir, 'main-b');
      await writeFiles(main.srcA, 'a', [400_000, 1_200_000, 90_000]);
      await writeFiles(main.srcB, 'b', [700_000, 30_000]);
      const { primary, copy, made } = await initPair('main', ['--lock-mode', 'compliance', '--default-retain', '90d']);
      Object.assign(main, { primary, copy });
      assert.equal(made.policy.defaultMode, 'compliance');
      assert.equal(made.policy.defaultRetentionMs, 90 * DAY);
      main.primaryId = made.copyOf.repositoryId;
      assert.notEqual(made.repositoryId, main.primaryId, 'the copy is a repository of its own');

      // The primary keeps the default policy: 30 days, governance.
      const first = await backupAt(primary, [main.srcA, '--tag', 'daily', '--host', 'db1']);
      const second = await backupAt(primary, [
        main.srcA,
        main.srcB,
        '--tag',
        'daily',
        '--tag',
        'weekly',
        '--host',
        'db1',
      ]);
      main.first = first.id;
      main.second = second.id;
      assert.equal(first.retention.mode, 'governance');

      const copied = await json(['copy', '--repo', copy, ...from(primary)]);
      assert.deepEqual(
        copied.copied.map((c: { source: string }) => c.source),
        [first.id, second.id],
      );
      assert.deepEqual([copied.failed, copied.ignored, copied.alreadyCopied], [[], [], 0]);
      assert.equal(copied.primary.repository, main.primaryId);

      const listed = await json(['snapshots', '--repo', copy]);
      assert.equal(listed.length, 2);
      for (const [n, source] of [first, second].entries()) {
        const entry = listed[n];
        const { copiedFrom } = entry;
        assert.equal(copiedFrom.repository, main.primaryId);
        assert.equal(copiedFrom.snapshot, source.id);
        assert.equal(copiedFrom.location, primary);
        assert.equal(copiedFrom.host, 'db1');
        assert.equal(copiedFrom.signer, 'owner', "the primary's owner key signed it there");
        assert.deepEqual(copiedFrom.paths, n === 0 ? [main.srcA] : [main.srcA, main.srcB]);
        assert.deepEqual(copiedFrom.tags, n === 0 ? ['daily'] : ['daily', 'weekly']);
        assert.equal(copiedFrom.time, entry.time, 'the copy keeps the time of the backup');
        assert.deepEqual(entry.paths, copiedFrom.paths);
        assert.deepEqual(entry.tags, copiedFrom.tags);
        assert.equal(entry.signer, 'owner', "the copy's own owner key signed the copy");
        // What the primary gave it is kept as information: 30 days, governance.
        assert.equal(copiedFrom.retention.mode, 'governance');
        const primaryDays = (Date.parse(copiedFrom.retention.until) - Date.parse(copiedFrom.time)) / DAY;
        assert.ok(Math.abs(primaryDays - 30) < 0.01, `the primary's retention is 30 days, not ${primaryDays}`);
        // The copy's lock is its own policy's: 90 days, compliance, from when it arrived.
        assert.equal(entry.retention.mode, 'compliance');
        const copyDays = (Date.parse(entry.retention.until) - Date.parse(copiedFrom.copiedAt)) / DAY;
        assert.ok(Math.abs(copyDays - 90) < 0.01, `the copy's lock is 90 days from its arrival, not ${copyDays}`);
        assert.ok(copied.copied[n].copy === entry.id);
      }

      const text = await amber(['snapshots', '--repo', copy]);
      assert.equal(text.status, 0, text.stderr);
      for (const [n, source] of [first, second].entries())
        assert.match(
          text.stdout,
          new RegExp(
            `^${listed[n].shortId}  .*  \\(copy of ${source.id.slice(0, 8)} from ${main.primaryId.slice(0, 8)}\\)$`,
            'm',
          ),
        );
      const atPrimary = await amber(['snapshots', '--repo', primary], { password: PRIMARY_PASS });
      assert.doesNotMatch(atPrimary.stdout, /copy of/, 'snapshots of the primary are no copies');
    });

    test('a second amber copy with nothing new adds under 1 % to the copy', async () => {
      const before = await objectBytes(main.copy);
      const again = await json(['copy', '--repo', main.copy, ...from(main.primary)]);
      assert.deepEqual([again.copied, again.alreadyCopied, again.failed], [[], 2, []]);
      const after = await objectBytes(main.copy);
      const added = after.bytes - before.bytes;
      assert.ok(added >= 0 && added < before.bytes / 100, `a second copy added ${added} bytes to ${before.bytes}`);
      assert.ok(after.files - before.files <= 3, `${after.files - before.files} new objects: the run's anchor only`);
    });

    test('audit verify --anchors-from the copy passes, and fails once the primary’s newest history is removed', async (t) => {
      const verify = (extra: string[] = []) =>
        amber(['audit', 'verify', '--repo', main.primary, ...extra], { password: '' });
      const anchored = await verify(['--anchors-from', main.copy]);
      assert.equal(anchored.status, 0, anchored.stdout + anchored.stderr);
      assert.match(anchored.stdout, /checked against 2 anchors in the copy at .*: the history the copy saw is intact/);

      // Root at the primary removes the newest audit entry and the newest checkpoint: what remains is
      // a log consistent in itself.
      const newest = async (prefix: string) => (await fs.readdir(join(main.primary, prefix))).sort().at(-1)!;
      const entry = await newest('audit');
      const checkpoint = await newest('checkpoints');
      await liftAttributes(join(main.primary, 'audit'));
      await liftAttributes(join(main.primary, 'checkpoints'));
      await fs.rm(join(main.primary, 'audit', entry));
      await fs.rm(join(main.primary, 'checkpoints', checkpoint));

      const plain = await verify();
      t.diagnostic(`plain audit verify at the altered primary exits ${plain.status}`);
      const caught = await verify(['--anchors-from', main.copy]);
      assert.equal(caught.status, 1, caught.stdout + caught.stderr);
      assert.match(
        caught.stderr,
        /^error: the audit log was rewritten after the copy at .* saw it on .*\[AUDIT_TAMPERED\]\n/,
      );
      assert.match(
        caught.stdout,
        new RegExp(`the primary's entry audit/${entry}, its newest when the copy looked, is gone`),
      );
      assert.match(
        caught.stdout,
        new RegExp(`the primary's checkpoint checkpoints/${checkpoint}, its newest then, is gone`),
      );
    });

    test('with the primary deleted, the copy restores both snapshots bit for bit, verifies, and its locks and log hold', async () => {
      const listed = await json(['snapshots', '--repo', main.copy]);
      await removeTree(main.primary);
      await assert.rejects(fs.access(main.primary));

      await restoreAndCompare(main.copy, listed[0].id, [main.srcA]);
      await restoreAndCompare(main.copy, listed[1].shortId, [main.srcA, main.srcB]);

      const verify = await amber(['verify', '--repo', main.copy, '--read-data']);
      assert.equal(verify.status, 0, verify.stdout + verify.stderr);
      assert.match(verify.stdout, /no problems found/);
      const locks = await json(['lock', 'status', '--repo', main.copy]);
      assert.equal(locks.length, 2);
      for (const status of locks) {
        assert.equal(status.covered, true, JSON.stringify(status.gaps));
        assert.equal(status.lock.mode, 'compliance');
        assert.equal(status.liftableBy, 'nobody (compliance)');
      }
      const audit = await amber(['audit', 'verify', '--repo', main.copy]);
      assert.equal(audit.status, 0, audit.stdout + audit.stderr);
      assert.match(audit.stdout, /the audit log is intact/);
    });
  });

  // --- filters and the lag -------------------------------------------------------------------------

  test('--snapshot, --host, --tag and --path copy only the snapshots that match', async () => {
    const p1 = join(dir, 'filter-p1');
    const p2 = join(dir, 'filter-p2');
    await writeFiles(p1, 'p1', [50_000]);
    await writeFiles(p2, 'p2', [60_000]);
    const { primary, copy } = await initPair('filter');
    // Five snapshots of two hosts, two paths and two tags, backed up at once (concurrent backups are safe).
    const [b1, b2, b3, b4, b5] = await Promise.all([
      backupAt(primary, [p1, '--host', 'h1', '--tag', 'a']),
      backupAt(primary, [p1, '--host', 'h2', '--tag', 'a', '--tag', 'b']),
      backupAt(primary, [p2, '--host', 'h1', '--tag', 'b']),
      backupAt(primary, [p2, '--host', 'h2']),
      backupAt(primary, [p1, '--host', 'h1', '--tag', 'b']),
    ]);
    const [s1, s2, s3, s4, s5] = [b1, b2, b3, b4, b5].map(({ id }) => id);
    const copyWith = async (filter: string[], expected: string[], already: number) => {
      const result = await json(['copy', '--repo', copy, ...from(primary), ...filter]);
      // Copies are made oldest first; these snapshots were backed up at once, so compare them as sets.
      assert.deepEqual(
        result.copied.map((c: { source: string }) => c.source).sort(),
        [...expected].sort(),
        filter.join(' '),
      );
      assert.equal(result.alreadyCopied, already, filter.join(' '));
    };
    await copyWith(['--snapshot', s3.slice(0, 10)], [s3], 0);
    await copyWith(['--host', 'h2'], [s2, s4], 0);
    await copyWith(['--tag', 'a'], [s1], 1); // s2 is there already
    await copyWith(['--path', p1, '--tag', 'b'], [s5], 1); // s2 again; s1 has no tag b
    const held = (await json(['snapshots', '--repo', copy])).map(
      (entry: { copiedFrom: { snapshot: string } }) => entry.copiedFrom.snapshot,
    );
    assert.deepEqual(held.sort(), [s1, s2, s3, s4, s5].sort());

    const unknown = await refused(
      ['copy', '--repo', copy, ...from(primary), '--snapshot', 'deadbeef'],
      'SNAPSHOT_NOT_FOUND',
      1,
    );
    assert.match(unknown.stderr, new RegExp(`no snapshot deadbeef at the primary ${primary}`));
    await refused(['copy', '--repo', copy, ...from(primary), '--snapshot', 'not-an-id'], 'USAGE', 2);

    // --- the lag: a snapshot the copy lacks, older than the bound --------------------------------
    await fs.writeFile(join(p1, 'latest.txt'), 'the newest file\n');
    const s6 = await backupAt(primary, [p1, '--host', 'h1']);
    // Let the new snapshot grow older than the bound (1 s) before the status looks.
    const age = Date.now() - Date.parse(s6.time);
    if (age < 1500) await sleep(1500 - age);
    const lagging = await refused(
      ['copy', 'status', '--repo', copy, ...from(primary), '--max-lag', '1s', '--json'],
      'COPY_LAG',
      1,
    );
    const rows = JSON.parse(lagging.stdout);
    for (const row of rows)
      assert.deepEqual(Object.keys(row).sort(), ['copy', 'host', 'lagSeconds', 'missing', 'paths', 'primary']);
    assert.equal(rows.length, 4, 'one row per host and paths');
    const behind = rows.find((row: { host: string; paths: string[] }) => row.host === 'h1' && row.paths[0] === p1);
    assert.deepEqual(behind.primary, { snapshot: s6.id, time: s6.time });
    assert.equal(behind.copy.source, b1.time > b5.time ? s1 : s5, 'the newest copy of h1 and the first path');
    assert.equal(behind.missing, 1);
    assert.ok(behind.lagSeconds >= 1, `lag ${behind.lagSeconds}`);
    for (const row of rows) if (row !== behind) assert.deepEqual([row.missing, row.lagSeconds], [0, 0]);
    const text = await refused(['copy', 'status', '--repo', copy, ...from(primary), '--max-lag', '1s'], 'COPY_LAG', 1);
    assert.match(text.stdout, /lag: .*, 1 snapshot not at the copy {2}OVER$/m);

    await copyWith([], [s6.id], 5);
    const caughtUp = await json(['copy', 'status', '--repo', copy, ...from(primary), '--max-lag', '1s']);
    assert.ok(
      caughtUp.every((row: { lagSeconds: number; missing: number }) => row.lagSeconds === 0 && row.missing === 0),
    );
  });

  // --- usage errors ----------------------------------------------------------------------------------

  test('copy refuses a missing primary, a wrong primary passphrase, a copy not made for it and itself', async () => {
    const { primary, copy } = await initPair('usage');
    const none = await refused(['copy', '--repo', copy], 'USAGE', 2);
    assert.match(none.stderr, /no primary repository given .*\nhint: pass --from-repo/);

    const wrongPass = join(dir, 'wrong.pass');
    await fs.writeFile(wrongPass, 'not the primary passphrase\n');
    const wrong = await refused(
      ['copy', '--repo', copy, '--from-repo', primary, '--from-password-file', wrongPass],
      'WRONG_PASSWORD',
      12,
    );
    assert.match(wrong.stderr, new RegExp(`^error: .*${primary}.* \\(the primary\\)`));
    assert.match(wrong.stderr, /hint: .*--from-password-file/, 'the hint names the primary’s passphrase options');
    const missing = await refused(['copy', '--repo', copy, '--from-repo', primary], 'PASSWORD_REQUIRED', 2);
    assert.match(missing.stderr, /hint: .*AMBER_FROM_PASSWORD.*--from-password-file/);

    // Init with a wrong primary passphrase leaves nothing behind.
    const orphan = join(dir, 'usage-orphan');
    await refused(
      ['init', '--repo', orphan, '--from-repo', primary, '--from-password-file', wrongPass],
      'WRONG_PASSWORD',
      12,
    );
    await assert.rejects(fs.access(orphan), 'no copy was created');

    const stranger = join(dir, 'usage-stranger');
    await json(['init', '--repo', stranger]);
    const incompatible = await refused(['copy', '--repo', stranger, ...from(primary)], 'COPY_INCOMPATIBLE', 1);
    assert.match(
      incompatible.stderr,
      /was not made to hold copies of .*\nhint: .*`amber init --repo COPY --from-repo PRIMARY`/,
    );

    const itself = await refused(['copy', '--repo', primary, ...from(primary)], 'USAGE', 2, { password: PRIMARY_PASS });
    assert.match(itself.stderr, /are the same repository/);
    await refused(['copy', 'status', '--repo', copy], 'USAGE', 2);
    await refused(
      ['copy', '--repo', copy, '--from-repo', join(dir, 'nowhere'), '--from-password-file', passFile],
      'REPO_NOT_FOUND',
      10,
    );
  });

  // --- SIGKILL and resume ----------------------------------------------------------------------------

  test('amber copy killed at several points completes when run again; the copy verifies and restores bit for bit', {
    concurrency: true,
  }, async (t) => {
    const big = join(dir, 'kill-big');
    const more = join(dir, 'kill-more');
    // Incompressible: 17 MiB for the first snapshot (more than one 16 MiB pack), 5 MiB more for the second.
    await writeFiles(big, 'big', [8 * MiB, 6 * MiB, 3 * MiB]);
    await writeFiles(more, 'more', [3 * MiB, 2 * MiB]);
    const primary = join(dir, 'kill-primary');
    await json(['init', '--repo', primary], { password: PRIMARY_PASS });
    const first = (await backupAt(primary, [big])).id;
    const second = (await backupAt(primary, [big, more])).id;

    const points = [
      { label: 'after the first pack', prefix: 'data' },
      { label: 'after the first grant', prefix: 'grants' },
      { label: 'after the first snapshot object', prefix: 'snapshots' },
    ];
    await Promise.all(
      points.map(({ label, prefix }, n) =>
        t.test(`killed ${label}`, async (sub) => {
          const copy = join(dir, `kill-copy-${n}`);
          await json(['init', '--repo', copy, ...from(primary)]);
          const existing = new Set(await namesUnder(copy, prefix));
          const run = start(['copy', '--repo', copy, ...from(primary)]);
          let finished = false;
          void run.done.then(() => {
            finished = true;
          });
          // Deterministic: the kill follows the object's appearance, whatever the time it took.
          while (!finished && (await namesUnder(copy, prefix)).every((name) => existing.has(name))) await sleep(2);
          run.child.kill('SIGKILL');
          const killed = await run.done;
          assert.equal(
            killed.signal,
            'SIGKILL',
            `the copy was still running ${label}: ${killed.stdout}${killed.stderr}`,
          );

          // What the copy lists after the kill are whole copies only, oldest first; the next run copies the rest.
          const held = (await json(['snapshots', '--repo', copy])).map(
            (entry: { copiedFrom: { snapshot: string } }) => entry.copiedFrom.snapshot,
          );
          assert.deepEqual(held, [first, second].slice(0, held.length));
          if (prefix === 'snapshots') assert.equal(held.length, 1, 'the first copy was committed');
          sub.diagnostic(`killed ${label}: ${held.length} of 2 snapshots were copied`);
          const again = await json(['copy', '--repo', copy, ...from(primary)]);
          assert.deepEqual(
            again.copied.map((c: { source: string }) => c.source),
            [first, second].slice(held.length),
          );
          assert.equal(again.alreadyCopied, held.length);

          // A run killed between storing objects and making them immutable leaves them open; the next
          // run protects again the packs it reuses, not the metadata (config, keys, index) an earlier
          // grant covers, so lock status may show gaps until `amber verify` finishes their protection,
          // which is what its hint says to run (the same holds for backups: reported, not the copy's).
          const early = await amber(['lock', 'status', '--repo', copy, '--json']);
          if (early.status !== 0) {
            const gaps = JSON.parse(early.stdout).flatMap((status: { gaps: { name: string }[] }) =>
              status.gaps.map(({ name }) => name),
            );
            sub.diagnostic(`before amber verify, lock status found gaps: ${[...new Set(gaps)].join(', ')}`);
          }
          const repair = await amber(['verify', '--repo', copy]);
          assert.equal(repair.status, 0, repair.stdout + repair.stderr);
          // Before --read-data: that certifies the killed run's leftover pack, and lock status may then
          // judge a snapshot by that pack, which no grant names (reported, not the copy's doing either).
          const locks = await json(['lock', 'status', '--repo', copy]);
          assert.equal(locks.length, 2);
          assert.ok(
            locks.every((status: { covered: boolean }) => status.covered),
            JSON.stringify(locks),
          );
          const verify = await amber(['verify', '--repo', copy, '--read-data']);
          assert.equal(verify.status, 0, verify.stdout + verify.stderr);
          assert.match(verify.stdout, /no problems found/);
          const listed = await json(['snapshots', '--repo', copy]);
          assert.equal(listed.length, 2);
          await restoreAndCompare(copy, listed[0].id, [big]);
          await restoreAndCompare(copy, listed[1].id, [big, more]);
          await removeTree(copy);
        }),
      ),
    );
  });
});
