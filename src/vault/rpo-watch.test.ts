// Red-team test of the vault's RPO watch: a vault clock that ran ahead while a writer stored a
// snapshot, then was put right, must not keep the objective "met" until the clock catches up.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AmberEvent } from '../ops/notify/event.ts';
import { createRpoWatch } from './rpo-watch.ts';

const HOUR = 3_600_000;
const YEAR = 365 * 24 * HOUR;

test('a last snapshot stamped by a clock that ran ahead does not silence rpo.missed once the clock is right', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'amber-rpo-watch-'));
  try {
    const now = Date.parse('2026-06-01T00:00:00Z');
    const events: AmberEvent[] = [];
    const token = { id: 'w1', role: 'writer' as const, repo: 'finance', label: 'db1', created: '' };
    // The snapshot came while the vault's clock was a year ahead…
    const ahead = createRpoWatch({
      dataDir,
      objectives: [{ repo: 'finance', rpoMs: 2 * HOUR }],
      notify: (event) => events.push(event),
      nowMs: now + YEAR,
    });
    ahead.snapshotStored('finance', token, now + YEAR);
    ahead.check(now + YEAR);
    // …the clock is put right and the vault restarted; no writer comes again.
    const watch = createRpoWatch({
      dataDir,
      objectives: [{ repo: 'finance', rpoMs: 2 * HOUR }],
      notify: (event) => events.push(event),
      nowMs: now,
    });
    watch.check(now);
    watch.check(now + 3 * HOUR);
    assert.deepEqual(
      events.map((event) => event.type),
      ['rpo.missed'],
      'the objective read as met for a year with no snapshot',
    );
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a damaged last-snapshots.json with wrong types does not crash the watch nor hide a miss', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'amber-rpo-watch-'));
  try {
    mkdirSync(join(dataDir, 'vault'));
    writeFileSync(
      join(dataDir, 'vault', 'last-snapshots.json'),
      JSON.stringify({ writers: { finance: { w1: { label: 'db1', lastMs: 'soon' } } }, since: 7, missed: 'x' }),
    );
    const now = Date.parse('2026-06-01T00:00:00Z');
    const events: AmberEvent[] = [];
    const watch = createRpoWatch({
      dataDir,
      objectives: [{ repo: 'finance', rpoMs: 2 * HOUR }],
      notify: (event) => events.push(event),
      nowMs: now,
    });
    watch.check(now + 3 * HOUR);
    assert.deepEqual(
      events.map((event) => event.type),
      ['rpo.missed'],
    );
    watch.families(now + 3 * HOUR);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
