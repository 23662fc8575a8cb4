// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the strings here are source lines the check reads
// layout.ts is the only place that builds object names: no other production file under src/ may put a
// name together from a prefix of the format and an id (`snapshots/${id}`, PREFIX.data + hash, …).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PREFIX } from './layout.ts';

const SRC = fileURLToPath(new URL('..', import.meta.url));
const LAYOUT = fileURLToPath(new URL('./layout.ts', import.meta.url));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') ? [path] : [];
  });
}

const prefixes = Object.values(PREFIX)
  .map((prefix) => prefix.replace(/\/$/, ''))
  .join('|');
const HAND_BUILT = [
  // `snapshots/${id}`, `data/${id.slice(0, 2)}/${id}` (a prefix right before an interpolation)
  new RegExp(String.raw`(?<![\w/.$-])(?:${prefixes})/\$\{`),
  // 'snapshots/' + id
  new RegExp(String.raw`['"\`](?:${prefixes})/['"\`]\s*\+`),
  // `${PREFIX.snapshots}${id}`, `${PREFIX[kind]}${hash}`
  /\$\{PREFIX(?:\.\w+|\[[^\]]+\])\}\$\{/,
  // PREFIX.snapshots + id
  /\bPREFIX(?:\.\w+|\[[^\]]+\])\s*\+/,
];

/** Lines of a source that build an object name by hand, as `file:line: text`. */
function handBuiltNames(file: string, text: string): string[] {
  return text
    .split('\n')
    .flatMap((line, at) =>
      HAND_BUILT.some((pattern) => pattern.test(line)) ? [`${file}:${at + 1}: ${line.trim()}`] : [],
    );
}

test('the checks see each way of building a name by hand, and not a prefix alone or a message about one', () => {
  const built = [
    '`snapshots/${id}`',
    '`data/${id.slice(0, 2)}/${id}`',
    "'grants/' + hash",
    '`${PREFIX.snapshots}${id}`',
    '`${PREFIX[kind]}${hash}`',
    'PREFIX.audit + name',
  ];
  for (const line of built) assert.equal(handBuiltNames('x.ts', line).length, 1, line);
  const fine = [
    'store.list(PREFIX.snapshots)',
    "name.startsWith('keys/')",
    '`keys/ (key ${key.keyId})`',
    'snapshotName(id)',
    '`${where.prefix}/${name}`',
    "const DATA_READ = ['config', 'data/'];",
  ];
  for (const line of fine) assert.deepEqual(handBuiltNames('x.ts', line), [], line);
});

test('no production file under src/ but layout.ts builds an object name by hand', () => {
  const found = sourceFiles(SRC)
    .filter((file) => file !== LAYOUT)
    .flatMap((file) => handBuiltNames(relative(SRC, file), readFileSync(file, 'utf8')));
  assert.deepEqual(
    found,
    [],
    'build object names with the functions of src/repo/layout.ts (add one there if it is missing)',
  );
});
