// Operations for tests: a repository opened in a test runs with a retention clock the test chooses.
// The unguarded clock (plain wall time) lives here only: production code always judges retention by
// the guarded clock (governance/guarded-clock.ts), which a caller cannot forget to pass.
import type { Clock } from '../core/clock.ts';
import type { Repository } from '../repo/repository.ts';
import { operationOn, type Operation } from '../governance/operation.ts';
import type { RetentionClock } from '../governance/retention-state.ts';

/** The unguarded clock (`unguardedClock` before it moved here): plain wall time of `clock` for both retention times, a fake clock tests move as they like. */
export function testRetentionClock(clock: Clock): RetentionClock {
  return { retentionBaseMs: () => clock.nowMs(), deletionNowMs: () => clock.nowMs() };
}

/** `repo` as an operation judged by `retentionClock` (default: the repository's own clock, unguarded). */
export function testOperation(
  repo: Repository,
  retentionClock: RetentionClock = testRetentionClock(repo.clock),
): Operation {
  return operationOn(repo, retentionClock);
}
