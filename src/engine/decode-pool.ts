// Decodes data blobs on worker threads for restores and writes them into their files there, so
// decryption, decompression, the id check and the write of several blobs run at once while the main
// thread walks the trees and creates files.
import { AmberError, type ErrorCode } from '../core/errors.ts';
import type { BlobDecoder } from '../repo/blob-reader.ts';
import type { DecodeReply, DecodeTask } from './decode-worker.ts';
import { createWorkerPool, defaultPoolSize } from './worker-pool.ts';

export function createDecodePool(size = defaultPoolSize()): BlobDecoder & { close(): Promise<void> } {
  const workers = createWorkerPool<DecodeTask, DecodeReply>(new URL('./decode-worker.ts', import.meta.url), size);
  return {
    async decodeAndWrite(ref, sealed, keys, where, fd, position) {
      const task: DecodeTask = { ...ref, sealed, dataKey: keys.dataKey, idKey: keys.idKey, where, fd, position };
      const owned = sealed.byteOffset === 0 && sealed.byteLength === sealed.buffer.byteLength;
      const reply = await workers.run(task, owned ? [sealed.buffer as ArrayBuffer] : []);
      if ('end' in reply) return reply.end;
      const { code, message, errno } = reply.problem;
      // A system error keeps its errno code, which the restore turns into its own message.
      if (errno) throw Object.assign(new Error(message), { code });
      throw new AmberError(code as ErrorCode, message, { details: { blob: ref.id.toString('hex'), object: where } });
    },
    close: () => workers.close(),
  };
}
