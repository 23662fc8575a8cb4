// Attacker tool (full key, maintainer token, modified client): condemn each named object in its own
// notice with no grace, then delete every one the vault accepted.
// usage: node forge-condemn.ts REPO_LOCATION NAME...
import { storeFor } from '../../src/storage/open-store.ts';
import { openRepository } from '../../src/repo/repository.ts';
import { systemClock } from '../../src/core/clock.ts';
import { CONDEMNS, putRecord } from '../../src/repo/retention-records.ts';
import { testOperation } from '../../src/testing/operation.ts';
const [location, ...names] = process.argv.slice(2);
const repo = testOperation(
  await openRepository({
    store: await storeFor(location),
    passphrase: process.env.AMBER_PASSWORD!,
    clock: systemClock,
  }),
);
for (const name of names) {
  try {
    await putRecord(repo, CONDEMNS, { time: new Date().toISOString(), graceMs: 0, objects: [{ name, sizeBytes: 1 }] });
    console.log('condemned', name);
  } catch (error) {
    console.log('refused  ', name, (error as Error).message.slice(0, 120));
    continue;
  }
  await new Promise((r) => setTimeout(r, 50));
  try {
    await repo.store.deleteExpired(name);
    console.log('DELETED  ', name);
  } catch (error) {
    console.log('not deleted', name, (error as Error).message.slice(0, 120));
  }
}
