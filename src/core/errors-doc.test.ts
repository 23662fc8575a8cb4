// docs/errors.md lists every error code with the exit status the CLI gives it; this keeps the
// document, the catalogue and the exit-status table from drifting apart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ERROR_CODES, type ErrorCode } from './errors.ts';
import { EXIT, exitStatusFor } from '../cli/exit-status.ts';

const DOC_URL = new URL('../../docs/errors.md', import.meta.url);

/** Rows of the code table: the first cell is a code in backticks, the second its exit status. */
function documentedCodes(): Map<string, string> {
  const rows = new Map<string, string>();
  for (const line of readFileSync(DOC_URL, 'utf8').split('\n')) {
    const match = /^\|\s*`([A-Z][A-Z0-9_]*)`\s*\|\s*([^|]*?)\s*\|/.exec(line);
    if (!match) continue;
    assert.ok(!rows.has(match[1]), `docs/errors.md lists ${match[1]} twice`);
    rows.set(match[1], match[2]);
  }
  return rows;
}

test('docs/errors.md lists exactly the codes of ERROR_CODES', () => {
  const documented = [...documentedCodes().keys()].sort();
  const catalogue = Object.keys(ERROR_CODES).sort();
  assert.deepEqual(
    {
      missingFromDoc: catalogue.filter((code) => !documented.includes(code)),
      notInCatalogue: documented.filter((code) => !catalogue.includes(code)),
    },
    { missingFromDoc: [], notInCatalogue: [] },
  );
});

test('docs/errors.md gives each code the exit status the CLI uses', () => {
  for (const [code, status] of documentedCodes()) {
    if (!(code in ERROR_CODES)) continue;
    assert.match(status, /^\d+$/, `exit status of ${code} in docs/errors.md is not a number: "${status}"`);
    assert.equal(Number(status), exitStatusFor(code as ErrorCode), `exit status of ${code}`);
  }
});

test('docs/errors.md describes every exit status the CLI can give', () => {
  const text = readFileSync(DOC_URL, 'utf8');
  const described = new Set([...text.matchAll(/^\|\s*(\d+)\s*\|/gm)].map((match) => Number(match[1])));
  const used = new Set<number>([
    ...Object.values(EXIT),
    ...Object.keys(ERROR_CODES).map((code) => exitStatusFor(code as ErrorCode)),
  ]);
  for (const status of used)
    assert.ok(described.has(status), `exit status ${status} is not described in docs/errors.md`);
});
