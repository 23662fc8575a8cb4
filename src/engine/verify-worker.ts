// Worker thread: checks whole packs for verify --read-data (see pack-check.ts).
import { parentPort } from 'node:worker_threads';
import { asPackId } from '../core/ids.ts';
import { checkPack, type PackProblem } from './pack-check.ts';

export interface PackCheckTask {
  seq: number;
  bytes: Uint8Array;
  packId: string;
  name: string;
  signerPublicKey?: Uint8Array;
  epochPairs: { publicKey: Uint8Array; privateKey: Uint8Array }[];
  idKey: Uint8Array;
}

export interface PackCheckReply {
  seq: number;
  problems: PackProblem[];
  /** id(32) ‖ offset ‖ sealed length ‖ raw length ‖ type ‖ compression, per entry, as plain objects. */
  entries: { id: Uint8Array; type: 'data' | 'tree'; compression: number; offset: number; sealedLength: number; rawLength: number }[];
  error?: string;
}

const buffer = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

parentPort!.on('message', (task: PackCheckTask) => {
  try {
    const result = checkPack({
      bytes: buffer(task.bytes),
      packId: asPackId(task.packId),
      name: task.name,
      signerPublicKey: task.signerPublicKey ? buffer(task.signerPublicKey) : undefined,
      epochPairs: task.epochPairs.map((pair) => ({ publicKey: buffer(pair.publicKey), privateKey: buffer(pair.privateKey) })),
      idKey: buffer(task.idKey),
    });
    parentPort!.postMessage({ seq: task.seq, problems: result.problems, entries: result.entries } satisfies PackCheckReply);
  } catch (error) {
    parentPort!.postMessage({ seq: task.seq, problems: [], entries: [], error: (error as Error).message } satisfies PackCheckReply);
  }
});
