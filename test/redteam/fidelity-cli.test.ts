// Red team, issue 17 (fidelity): names as the CLI takes and shows them. Each test was a hole; it
// stays so the hole cannot open again.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { removeTree } from '../../src/testing/repo-fixture.ts';

const BIN = fileURLToPath(new URL('../../bin/amber.js', import.meta.url));
let dir = '';

/** Runs amber; `last`, when given, is one more argument as raw bytes (Node's spawn sends UTF-8 only). */
function amber(args: string[], last?: Buffer) {
  const [command, argv] =
    last === undefined
      ? [process.execPath, [BIN, ...args]]
      : ['/bin/sh', ['-c', 'exec "$@" "$(printf "$LAST")"', 'sh', process.execPath, BIN, ...args]];
  const result = spawnSync(command, argv, {
    env: {
      PATH: process.env.PATH,
      AMBER_PASSWORD: 'red team',
      AMBER_KDF_LOG_N: '10',
      AMBER_REPO: join(dir, 'repo'),
      AMBER_CACHE_DIR: join(dir, 'cache'),
      ...(last && { LAST: [...last].map((byte) => `\\${byte.toString(8).padStart(3, '0')}`).join('') }),
    },
  });
  return { status: result.status, stdout: result.stdout, stderr: String(result.stderr) };
}

/** The byte 0xE9 alone is not UTF-8: ls shows this name as `caf\xe9.txt`. */
const CAFE = Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x2e, 0x74, 0x78, 0x74]);
/** A name that is literally what ls shows for CAFE, a backslash included: ls shows it as `caf\\xe9.txt`. */
const LITERAL = 'caf\\xe9.txt';

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'amber-redteam-cli-'));
  mkdirSync(join(dir, 'src'));
  writeFileSync(Buffer.concat([Buffer.from(`${dir}/src/`), CAFE]), 'not UTF-8\n');
  writeFileSync(join(dir, 'src', LITERAL), 'a backslash\n');
  assert.equal(amber(['init']).status, 0);
  const backup = amber(['backup', join(dir, 'src')]);
  assert.equal(backup.status, 0, backup.stderr);
});

after(async () => {
  await removeTree(dir);
});

test('dump and --include give the entry ls shows by the name typed, not a file literally named like its escape', () => {
  const listed = String(amber(['ls', 'latest', join(dir, 'src')]).stdout);
  assert.match(listed, /\/caf\\xe9\.txt\n/);
  assert.match(listed, /\/caf\\\\xe9\.txt\n/);

  // Typed as ls shows them, each names its own file.
  const shownCafe = `${dir}/src/caf\\xe9.txt`;
  const shownLiteral = `${dir}/src/caf\\\\xe9.txt`;
  assert.equal(String(amber(['dump', 'latest', shownCafe]).stdout), 'not UTF-8\n');
  assert.equal(String(amber(['dump', 'latest', shownLiteral]).stdout), 'a backslash\n');

  for (const [shown, content] of [
    [shownCafe, 'not UTF-8\n'],
    [shownLiteral, 'a backslash\n'],
  ]) {
    const target = join(dir, `restore-${content.length}`);
    const restored = amber(['restore', 'latest', '--target', target, '--include', shown]);
    assert.equal(restored.status, 0, restored.stderr);
    const below = join(target, dir, 'src');
    const names = readdirSync(below, { encoding: 'buffer' });
    assert.equal(names.length, 1, `only the entry named: ${names.map(String)}`);
    assert.equal(readFileSync(Buffer.concat([Buffer.from(`${below}/`), names[0]]), 'utf8'), content);
  }
});

test('a restore target that is not UTF-8 on the command line is refused, not replaced by the path with U+FFFD', () => {
  const parent = Buffer.from(`${dir}/par\xff`, 'latin1');
  mkdirSync(parent);
  const refused = amber(['restore', 'latest', '--target'], Buffer.concat([parent, Buffer.from('/t')]));
  assert.equal(refused.status, 2, refused.stderr);
  assert.match(refused.stderr, /"[^"]*par\\xff\/t" is not valid UTF-8.*\[USAGE\]/);
  assert.deepEqual(readdirSync(parent), [], 'nothing restored below the parent named');
  assert.ok(
    !readdirSync(dir, { encoding: 'buffer' }).some((name) => name.equals(Buffer.from('par\uFFFD'))),
    'nor below the parent Node would have named',
  );
  // A path that is UTF-8 and holds U+FFFD itself is a path like any other.
  const real = join(dir, 'real\uFFFD');
  const restored = amber(['restore', 'latest', '--target'], Buffer.from(real));
  assert.equal(restored.status, 0, restored.stderr);
  assert.ok(readdirSync(real).length > 0);
});
