// Attacker tool: with a full key (modified client), write a forget mark naming the given snapshots.
// usage: node forge-forget.ts REPO_LOCATION SNAPSHOT_ID...
import { storeFor } from '../../src/storage/open-store.ts';
import { openRepository } from '../../src/repo/repository.ts';
import { systemClock } from '../../src/core/clock.ts';
import { FORGETS, putRecord } from '../../src/repo/retention-records.ts';
import { testOperation } from '../../src/testing/operation.ts';
const [location, ...ids] = process.argv.slice(2);
const repo = testOperation(
  await openRepository({
    store: await storeFor(location),
    passphrase: process.env.AMBER_PASSWORD!,
    clock: systemClock,
  }),
);
const name = await putRecord(repo, FORGETS, { time: new Date().toISOString(), snapshots: ids, rule: 'keepLast=0' });
console.log('stored', name);
