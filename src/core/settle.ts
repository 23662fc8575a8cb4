// Waiting for a group of concurrent operations without abandoning any: when one fails, the others
// still finish (they may hold a descriptor or shared memory) before the failure is raised.

/** Like Promise.all, but waits for every promise even after one fails, then fails with the first failure. */
export async function settleAll<T extends readonly unknown[] | []>(
  promises: T,
): Promise<{ -readonly [K in keyof T]: Awaited<T[K]> }> {
  const outcomes = await Promise.allSettled(promises);
  for (const outcome of outcomes) if (outcome.status === 'rejected') throw outcome.reason;
  return outcomes.map((outcome) => (outcome as PromiseFulfilledResult<unknown>).value) as {
    -readonly [K in keyof T]: Awaited<T[K]>;
  };
}
