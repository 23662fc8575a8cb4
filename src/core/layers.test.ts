// Dependencies point down the layers of docs/architecture.md: a module never imports from a layer
// above its own, and production code never imports test support.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('..', import.meta.url));
const RANK: Record<string, number> = {
  core: 0,
  chunker: 1,
  crypto: 1,
  storage: 2,
  source: 2,
  repo: 3,
  governance: 4,
  engine: 5,
  protection: 6,
  insight: 7,
  ops: 8,
  vault: 9,
  cli: 10,
  web: 10,
  testing: 11,
};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') ? [path] : [];
  });
}

const layerOf = (path: string) => relative(SRC, path).split('/')[0];

test('every import under src/ points to the same or a lower layer', () => {
  const violations: string[] = [];
  for (const file of sourceFiles(SRC)) {
    const from = layerOf(file);
    assert.ok(
      from in RANK,
      `${relative(SRC, file)} is in a folder with no layer; add it to RANK and docs/architecture.md`,
    );
    for (const [, spec] of readFileSync(file, 'utf8').matchAll(/^\s*(?:import|export)\s[^'"]*['"](\.[^'"]+)['"]/gm)) {
      const to = layerOf(resolve(dirname(file), spec));
      if (RANK[to] > RANK[from]) violations.push(`${relative(SRC, file)} (${from}) imports ${spec} (${to})`);
    }
  }
  assert.deepEqual(violations, []);
});

test('the CLI parses and renders only: no command writes an audit entry or loads retention state itself', () => {
  const offenders: string[] = [];
  for (const file of sourceFiles(join(SRC, 'cli'))) {
    const text = readFileSync(file, 'utf8');
    for (const name of ['appendAudit', 'loadRetentionState', 'putRecord', 'openGuardedClock']) {
      if (text.includes(name)) offenders.push(`${relative(SRC, file)} uses ${name}`);
    }
  }
  assert.deepEqual(offenders, []);
});
