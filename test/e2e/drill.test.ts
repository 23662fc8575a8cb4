// Restore drills as an operator runs them: `amber drill run` on a real repository passes with
// figures that match the data; a failing check, damaged bytes in the repository and an RTO of 1 ms
// each fail it with the reason; the record is a signed entry of the audit log that `drill list`
// and `verify` catch when it is edited or forged, and that the store will not delete before its
// retention; the HTML report opens in headless Chromium and shows the drills.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, promises as fs, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { asKeyId } from '../../src/core/ids.ts';
import { sha256Hex } from '../../src/crypto/index.ts';
import { putAuditEntry } from '../../src/repo/audit-records.ts';
import { createFsStore } from '../../src/storage/fs/fs-store.ts';
import { BIN, waitFor } from '../../src/testing/agent-fixture.ts';
import { countColour, renderPage, whyNoChromium } from '../../src/testing/chromium.ts';
import { alterObjectFile, flipByte, removeTree, seededBytes } from '../../src/testing/repo-fixture.ts';

let dir: string;
let data: string;
let repo: string;
const env = () => ({
  PATH: process.env.PATH,
  AMBER_KDF_LOG_N: '10',
  AMBER_CACHE_DIR: join(dir, 'cache'),
  AMBER_PASSWORD_FILE: join(dir, 'pass'),
  TMPDIR: join(dir, 'tmp'),
});

function amber(args: string[], token = '') {
  const result = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    env: { ...env(), AMBER_VAULT_TOKEN: token },
  });
  return { status: result.status, stdout: String(result.stdout), stderr: String(result.stderr) };
}
function ok(args: string[], token = '') {
  const run = amber(args, token);
  assert.equal(run.status, 0, `amber ${args.join(' ')}: ${run.stdout}${run.stderr}`);
  return run;
}
const json = (args: string[]) => JSON.parse(ok([...args, '--json']).stdout);

const FILES: Record<string, Buffer> = {
  'ledger.db': seededBytes(2_500_000, 'ledger'),
  'notes/a.txt': Buffer.from('alpha\n'),
  'notes/empty': Buffer.alloc(0),
};
const TOTAL_BYTES = Object.values(FILES).reduce((sum, bytes) => sum + bytes.length, 0);

before(async () => {
  dir = await fs.mkdtemp(join(tmpdir(), 'amber-drill-'));
  mkdirSync(join(dir, 'tmp'));
  writeFileSync(join(dir, 'pass'), 'the drill test passphrase\n');
  data = join(dir, 'data');
  for (const [name, bytes] of Object.entries(FILES)) {
    mkdirSync(join(data, name, '..'), { recursive: true });
    writeFileSync(join(data, name), bytes);
  }
  symlinkSync('a.txt', join(data, 'notes', 'link'));
  await fs.chmod(join(data, 'notes'), 0o750);
  repo = join(dir, 'repo');
  ok(['init', '--repo', repo]);
  ok(['backup', '--repo', repo, data, '--quiet']);
  ok(['backup', '--repo', repo, data, '--quiet']);
});
after(() => removeTree(dir));

describe('amber drill', () => {
  test('a drill of a real snapshot passes with figures that match the data, and is recorded, signed, in the audit log', () => {
    const result = json([
      'drill',
      'run',
      'latest',
      '--repo',
      repo,
      '--rto',
      '1h',
      '--source',
      'finance',
      '--check',
      `test "$(cat "$AMBER_DRILL_TARGET${data}/notes/a.txt")" = alpha && echo "snapshot $AMBER_DRILL_SNAPSHOT ok"`,
    ]);
    assert.equal(result.passed, true, result.reasons.join('; '));
    assert.deepEqual(result.reasons, []);
    assert.equal(result.selection.mode, 'latest');
    assert.equal(result.selection.candidates, 2);
    assert.equal(result.restoredBytes, TOTAL_BYTES, 'every byte of every file read back');
    assert.equal(result.restoredFiles, 3);
    assert.deepEqual(
      result.stages.map((s: { name: string; result: string }) => `${s.name}:${s.result}`),
      ['select:ok', 'restore:ok', 'verify:ok', 'checks:ok', 'cleanup:ok'],
    );
    assert.ok(result.rtoSeconds > 0 && result.rtoObjectiveSeconds === 3600);
    assert.ok(result.rpoSeconds >= 0);
    assert.equal(result.checks[0].exit, 0);
    assert.deepEqual(result.checks[0].output, [`snapshot ${result.snapshot} ok`]);
    assert.equal(existsSync(result.target), false, 'the scratch space is removed');
    assert.deepEqual(
      readdirSync(join(dir, 'tmp')).filter((name) => name.startsWith('amber-drill-')),
      [],
    );

    const listed = json(['drill', 'list', '--repo', repo]);
    assert.equal(listed.drills[0].id, result.id);
    assert.equal(listed.drills[0].signer, 'owner');
    assert.deepEqual(listed.tampered, []);
    const shown = json(['drill', 'show', result.id.slice(0, 8), '--repo', repo]);
    assert.equal(shown.restoredBytes, TOTAL_BYTES);
    assert.equal(shown.entry, result.entry);
    const audit = ok(['audit', 'log', '--repo', repo]).stdout;
    assert.match(audit, /drill/);
  });

  test('a check that exits non-zero fails the drill, and so does an RTO of 1 ms: exit 1 with the reason', () => {
    const failed = amber(['drill', 'run', 'latest', '--repo', repo, '--check', 'echo "table missing" >&2; exit 4']);
    assert.equal(failed.status, 1, failed.stderr);
    assert.match(
      failed.stderr,
      /the check `echo "table missing" >&2; exit 4` exited 4: table missing .*\[DRILL_FAILED\]/,
    );
    const slow = amber(['drill', 'run', 'latest', '--repo', repo, '--rto', '1ms', '--json']);
    assert.equal(slow.status, 1);
    const record = JSON.parse(slow.stdout);
    assert.equal(record.passed, false);
    assert.match(
      record.reasons.join('\n'),
      /^objective missed: the RTO achieved was [\d.]+ s, the objective 0\.001 s$/m,
    );
    const timedOut = JSON.parse(
      amber(['drill', 'run', 'latest', '--repo', repo, '--check', 'sleep 30', '--check-timeout', '1s', '--json'])
        .stdout,
    );
    assert.equal(timedOut.checks[0].timedOut, true);
    assert.match(timedOut.reasons[0], /did not finish within 1 s/);
    const listed = json(['drill', 'list', '--repo', repo]);
    assert.deepEqual(
      listed.drills.slice(0, 3).map((d: { passed: boolean }) => d.passed),
      [false, false, false],
    );
  });

  test('a drill restores only into empty space', async () => {
    const busy = join(dir, 'busy');
    mkdirSync(busy);
    writeFileSync(join(busy, 'precious'), 'do not touch');
    const refused = amber(['drill', 'run', 'latest', '--repo', repo, '--target', busy]);
    assert.equal(refused.status, 2, refused.stderr);
    assert.match(refused.stderr, /is not an empty directory; a drill restores only into empty space/);
    assert.equal(await fs.readFile(join(busy, 'precious'), 'utf8'), 'do not touch');
    const kept = json(['drill', 'run', 'latest', '--repo', repo, '--target', join(dir, 'kept'), '--keep']);
    assert.equal(kept.kept, true);
    assert.deepEqual(await fs.readFile(join(dir, 'kept', data, 'ledger.db')), FILES['ledger.db']);
  });

  test('damaged bytes in the repository fail the drill and name the object', async () => {
    const damaged = join(dir, 'damaged-repo');
    ok(['init', '--repo', damaged]);
    ok(['backup', '--repo', damaged, data, '--quiet']);
    const packs = readdirSync(join(damaged, 'data'), { recursive: true, withFileTypes: true }).filter((e) =>
      e.isFile(),
    );
    // The largest pack holds the ledger's data.
    const sizes = await Promise.all(packs.map(async (e) => (await fs.stat(join(e.parentPath, e.name))).size));
    const pack = packs[sizes.indexOf(Math.max(...sizes))];
    await flipByte(join(pack.parentPath, pack.name));
    const run = amber(['drill', 'run', 'latest', '--repo', damaged, '--json']);
    assert.equal(run.status, 1, run.stderr);
    const record = JSON.parse(run.stdout);
    assert.equal(record.passed, false);
    assert.match(record.reasons.join('\n'), new RegExp(pack.name.slice(0, 16)));
    assert.match(record.reasons.join('\n'), /ledger\.db/);
  });

  test('an edited drill record and a forged one are reported by drill list and verify', async () => {
    const target = join(dir, 'tamper-repo');
    ok(['init', '--repo', target]);
    ok(['backup', '--repo', target, data, '--quiet']);
    const first = json(['drill', 'run', 'latest', '--repo', target]);
    const second = json(['drill', 'run', 'latest', '--repo', target]);

    const store = createFsStore(target);
    // A passed drill turned into … whatever the editor wanted: any byte changed breaks its hash.
    await alterObjectFile(join(target, first.entry), (bytes) =>
      Buffer.from(bytes.toString('latin1').replace('"restoredFiles":3', '"restoredFiles":4'), 'latin1'),
    );
    // A drill nobody ran, signed by a key the repository never authorised.
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
    const forged = await putAuditEntry(
      store,
      {
        repository: second.repository,
        seq: 999,
        time: new Date().toISOString(),
        actor: 'mallory',
        action: 'drill',
        target: second.snapshot,
        details: { ...second, id: undefined, passed: true, source: 'forged' },
        previous: [],
      },
      {
        keyId: asKeyId(sha256Hex(raw)),
        publicKey: raw,
        privateKey: privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(-32),
      },
    );
    const listed = amber(['drill', 'list', '--repo', target, '--json']);
    assert.equal(listed.status, 1, listed.stderr);
    assert.equal(JSON.parse(listed.stderr).error.code, 'AUDIT_TAMPERED');
    const { drills, tampered } = JSON.parse(listed.stdout);
    assert.deepEqual(
      drills.map((d: { id: string }) => d.id),
      [second.id],
      'only the intact drill is shown as a drill',
    );
    const names = tampered.map((t: { name: string }) => t.name);
    assert.ok(names.includes(first.entry), JSON.stringify(tampered));
    assert.ok(names.includes(forged.name), JSON.stringify(tampered));
    // The intact drill after the edited one is shown, and its place in the broken chain said.
    const after = tampered.find((t: { name: string }) => t.name === second.entry);
    assert.match(after.problem, /^follows entry [0-9a-f]{12}, which is missing/);
    const verified = amber(['verify', '--repo', target]);
    assert.equal(verified.status, 1, verified.stdout + verified.stderr);
    assert.match(verified.stdout + verified.stderr, new RegExp(first.entry.replace('audit/', '')));
  });

  test('at the isolated copy, with the primary gone: the drill proves recovery from the copy alone', async () => {
    const primary = join(dir, 'primary-for-copy');
    ok(['init', '--repo', primary]);
    ok(['backup', '--repo', primary, data, '--quiet']);
    const copy = join(dir, 'copy-repo');
    const from = ['--from-repo', primary, '--from-password-file', join(dir, 'pass')];
    ok(['init', '--repo', copy, ...from]);
    ok(['copy', '--repo', copy, ...from, '--quiet']);
    await removeTree(primary);
    assert.equal(existsSync(primary), false);
    const result = json(['drill', 'run', 'latest', '--repo', copy, '--source', 'finance@copy']);
    assert.equal(result.passed, true, result.reasons.join('; '));
    assert.equal(result.restoredBytes, TOTAL_BYTES);
    const atCopy = json(['drill', 'list', '--repo', copy]);
    assert.deepEqual(
      atCopy.drills.map((d: { id: string }) => d.id),
      [result.id],
    );
  });

  test('at a vault: the record cannot be deleted before its retention, and a drill with a reader token records at the site that ran it', async () => {
    const vaultData = join(dir, 'vault');
    const token = (role: string) =>
      JSON.parse(
        ok(['vault', 'token', 'create', '--data', vaultData, '--role', role, '--repo', 'fin', '--json']).stdout,
      ).token as string;
    const [admin, writer, reader, maintainer] = ['admin', 'writer', 'reader', 'maintainer'].map(token);
    const vault = spawn(process.execPath, [BIN, 'vault', 'serve', '--data', vaultData, '--listen', '127.0.0.1:0'], {
      env: env(),
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    try {
      let stderr = '';
      vault.stderr!.on('data', (chunk) => {
        stderr += chunk;
      });
      const url = await waitFor('the vault', () => /at (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr)?.[1]);
      const fin = `${url}/fin`;
      ok(['init', '--repo', fin], admin);
      ok(['backup', '--repo', fin, data, '--quiet'], writer);
      const drilled = JSON.parse(ok(['drill', 'run', 'latest', '--repo', fin, '--json'], admin).stdout);
      assert.equal(drilled.passed, true, drilled.reasons.join('; '));

      const objects = `${url}/v1/repos/fin/objects`;
      const refused = await fetch(`${objects}/${drilled.entry}`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${maintainer}` },
      });
      assert.ok(refused.status >= 400, `DELETE of the drill record answered ${refused.status}`);
      const still = await fetch(`${objects}/${drilled.entry}`, { headers: { authorization: `Bearer ${admin}` } });
      assert.equal(still.status, 200, 'the drill record is still there');

      // The copy site drills the primary with a reader token; the record goes to its own repository.
      writeFileSync(join(dir, 'reader.token'), `${reader}\n`);
      const site = join(dir, 'site-repo');
      ok(['init', '--repo', site]);
      const remote = JSON.parse(
        ok([
          'drill',
          'run',
          'latest',
          '--repo',
          site,
          '--from-repo',
          fin,
          '--from-token-file',
          join(dir, 'reader.token'),
          '--from-password-file',
          join(dir, 'pass'),
          '--json',
        ]).stdout,
      );
      assert.equal(remote.passed, true, remote.reasons.join('; '));
      assert.equal(remote.repository, drilled.repository, 'the record names the repository drilled');
      const atSite = JSON.parse(ok(['drill', 'list', '--repo', site, '--json']).stdout);
      assert.deepEqual(
        atSite.drills.map((d: { id: string }) => d.id),
        [remote.id],
      );
      const atVault = JSON.parse(ok(['drill', 'list', '--repo', fin, '--json'], admin).stdout);
      assert.deepEqual(
        atVault.drills.map((d: { id: string }) => d.id),
        [drilled.id],
      );
    } finally {
      vault.kill('SIGTERM');
    }
  });

  test('the report: JSON per source, CSV, and an HTML page that headless Chromium shows with its drill rows', {
    skip: whyNoChromium(),
  }, () => {
    const report = json(['drill', 'report', '--repo', repo, '--since', '1d', '--format', 'json']);
    const finance = report.sources.find((s: { source: string }) => s.source === 'finance');
    assert.equal(finance.drills, 1);
    assert.equal(finance.lastResult, 'passed');
    assert.equal(finance.rtoObjectiveSeconds, 3600);
    const csv = ok(['drill', 'report', '--repo', repo, '--format', 'csv']).stdout.trim().split('\r\n');
    assert.equal(csv[0].split(',')[0], 'id');
    assert.equal(csv.length, report.drills.length + 1);

    const page = join(dir, 'drills.html');
    ok(['drill', 'report', '--repo', repo, '--format', 'html', '--output', page]);
    const { dom, png } = renderPage(page);
    const rows = [...dom.matchAll(/<tr class="(passed|failed)" data-drill="([0-9a-f]{64})">/g)];
    assert.equal(rows.length, report.drills.length);
    assert.deepEqual(rows.map((r) => r[2]).sort(), report.drills.map((d: { id: string }) => d.id).sort());
    assert.ok(rows.some((r) => r[1] === 'failed') && rows.some((r) => r[1] === 'passed'));
    // Painted, not just present: the failed rows' background and the chart's green dot are on the screen.
    assert.ok(png.width === 1280 && png.height === 1400);
    assert.ok(countColour(png, [0xff, 0xeb, 0xe9]) > 1000, 'no failed row is painted');
    assert.ok(countColour(png, [0x1a, 0x7f, 0x37]) > 10, 'no passed dot in the chart');
  });
});
