// Worker thread: decrypts, decompresses and checks data blobs for restores and writes them into the
// file being restored (see decode-pool.ts). Descriptors belong to the process, so the main thread's
// open file is written here directly and the plaintext never travels back.
import { parentPort } from 'node:worker_threads';
import { isAmberError } from '../core/errors.ts';
import { decodeBlob, type BlobType } from '../repo/blob-codec.ts';
import { writeNonZero } from '../source/fs/sparse-write.ts';
import { serveTasks } from './worker-pool.ts';

export interface DecodeTask {
  id: Uint8Array;
  type: BlobType;
  compression: number;
  rawLength: number;
  sealed: Uint8Array;
  dataKey: Uint8Array;
  idKey: Uint8Array;
  where: string;
  fd: number;
  position: number;
}

/** A failure comes back as its code, so the main thread raises the same error it would have raised. */
/** `end`: the file offset just past the last byte written (see writeNonZero). */
export type DecodeReply = { end: number } | { problem: { code: string; message: string; errno: boolean } };

const buffer = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

// Keys arrive with every task as new arrays; one Buffer per distinct key keeps crypto's imported
// key objects (cached per Buffer) from being made again for every blob.
const keys = new Map<string, Buffer>();
function stableKey(bytes: Uint8Array): Buffer {
  const hex = buffer(bytes).toString('hex');
  let key = keys.get(hex);
  if (!key) keys.set(hex, (key = Buffer.from(bytes)));
  return key;
}

serveTasks<DecodeTask, DecodeReply>(parentPort!, (task) => {
  try {
    const plaintext = decodeBlob(
      { ...task, id: buffer(task.id) },
      buffer(task.sealed),
      { dataKey: stableKey(task.dataKey), idKey: stableKey(task.idKey) },
      task.where,
      { transient: true },
    );
    return { reply: { end: writeNonZero(task.fd, plaintext, task.position) } };
  } catch (error) {
    if (isAmberError(error)) return { reply: { problem: { code: error.code, message: error.message, errno: false } } };
    const code = (error as NodeJS.ErrnoException).code;
    if (typeof code === 'string')
      return { reply: { problem: { code, message: (error as Error).message, errno: true } } };
    throw error;
  }
});
