// Worker thread: walks a source tree depth first, in the order a backup visits it, and sends each
// directory's listing (names and lstat metadata) ahead of need. The syscalls of the metadata path
// run here, on another core, while the backup compares and stores. A shared counter bounds how many
// entries may wait unconsumed (see directory-lister.ts).
import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { createExcludeMatcher } from '../source/fs/excludes.ts';
import { readListing } from '../source/fs/listing.ts';

const { excludes, progress, windowEntries } = workerData as {
  excludes: string[];
  progress: SharedArrayBuffer;
  windowEntries: number;
};
const exclude = createExcludeMatcher(excludes);
/** [0] entries sent, [1] entries consumed by the backup. */
const counters = new Int32Array(progress);

parentPort!.on('message', ({ root }: { root: string }) => {
  const pending = [root];
  while (pending.length > 0) {
    const dir = pending.pop()!;
    const listing = readListing(dir);
    // Wait while the backup is a full window behind.
    for (let sent = Atomics.load(counters, 0); sent - Atomics.load(counters, 1) > windowEntries; ) {
      Atomics.wait(counters, 1, Atomics.load(counters, 1), 1000);
    }
    Atomics.add(counters, 0, listing.entries.length + 1);
    parentPort!.postMessage(listing);
    const subdirs: string[] = [];
    for (const entry of listing.entries) {
      if (!('meta' in entry) || entry.meta.type !== 'dir') continue;
      const path = join(dir, entry.name);
      if (!exclude(path, entry.name, true)) subdirs.push(path);
    }
    // Reversed onto the stack, so they come off in the order the backup descends into them.
    for (let n = subdirs.length - 1; n >= 0; n--) pending.push(subdirs[n]);
  }
  parentPort!.postMessage({ done: root });
});
