// Worker thread for scan.ts: walks the sources' metadata and reports running totals.
import { lstatSync, readdirSync, type Dirent } from 'node:fs';
import { join, resolve } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { createExcludeMatcher } from '../source/fs/excludes.ts';

const { paths, excludes } = workerData as { paths: string[]; excludes: string[] };
const exclude = createExcludeMatcher(excludes);
const pending = paths.map((path) => resolve(path));
let files = 0;
let bytes = 0;
let reported = 0;
while (pending.length > 0) {
  const path = pending.pop()!;
  const stats = lstatSync(path, { throwIfNoEntry: false });
  if (stats?.isFile()) {
    files += 1;
    bytes += stats.size;
  } else if (stats?.isDirectory()) {
    let entries: Dirent[] = [];
    try {
      entries = readdirSync(path, { withFileTypes: true });
    } catch {
      // unreadable directories are reported by the backup itself
    }
    for (const entry of entries) {
      const child = join(path, entry.name);
      if (!exclude(child, entry.name, entry.isDirectory())) pending.push(child);
    }
  }
  if (files - reported >= 1000) {
    parentPort!.postMessage({ files, bytes, done: false });
    reported = files;
  }
}
parentPort!.postMessage({ files, bytes, done: true });
