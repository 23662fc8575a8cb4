// Red team: audit entries and checkpoints were retained from the wall clock (repo.clock.nowMs()), not
// from the guarded clock's retentionBaseMs, so a host whose clock was set back wrote its audit entry
// with a retain-until date already past: on a store that keeps dates (S3, memory) the entry recording
// the change could be deleted at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Clock } from '../../src/core/clock.ts';
import { systemClock } from '../../src/core/clock.ts';
import { initRepository } from '../../src/repo/repository.ts';
import { createMemoryStore } from '../../src/storage/memory/memory-store.ts';
import { TEST_PASSPHRASE } from '../../src/testing/repo-fixture.ts';
import { appendAudit } from '../../src/governance/audit-log.ts';
import { testOperation, testRetentionClock } from '../../src/testing/operation.ts';

const DAY = 86_400_000;

test('an audit entry written with the wall clock set back is retained from the guarded clock, not deletable at once', async () => {
  const store = createMemoryStore('memory:audit-back', { clock: systemClock });
  const back: Clock = { ...systemClock, nowMs: () => Date.now() - 400 * DAY };
  const repo = await initRepository({ store, passphrase: TEST_PASSPHRASE, clock: back, kdfLogN: 10 });
  // The guarded clock never lowers retentionBaseMs when the wall clock moves back.
  const op = testOperation(repo, testRetentionClock(systemClock));
  const written = await appendAudit(op, { action: 'hold.add', target: 'x'.repeat(16), details: {} });
  const deleted = await store.deleteExpired(written.name).then(
    () => true,
    () => false,
  );
  assert.equal(deleted, false, `${written.name} was deletable as soon as it was written`);
});
