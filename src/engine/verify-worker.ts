// Worker thread: checks a group of one pack's blobs for verify --read-data (see pack-check.ts). The
// pack's bytes are shared memory the main thread read them into; nothing is copied.
import { parentPort } from 'node:worker_threads';
import type { PackEntry } from '../repo/pack.ts';
import { checkPackBlobs, type VerifyProblem } from './pack-check.ts';
import { serveTasks } from './worker-pool.ts';

export interface BlobCheckTask {
  bytes: Uint8Array;
  entries: (Omit<PackEntry, 'id'> & { id: Uint8Array })[];
  dataKey: Uint8Array;
  idKey: Uint8Array;
  name: string;
}

const buffer = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

serveTasks<BlobCheckTask, VerifyProblem[]>(parentPort!, (task) => ({
  reply: checkPackBlobs(
    buffer(task.bytes),
    task.entries.map((entry) => ({ ...entry, id: buffer(entry.id) })),
    { dataKey: buffer(task.dataKey), idKey: buffer(task.idKey) },
    task.name,
  ),
}));
