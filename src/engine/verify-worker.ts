// Worker thread: checks whole packs for verify --read-data (see pack-check.ts).
import { parentPort } from 'node:worker_threads';
import { asPackId } from '../core/ids.ts';
import { checkPack, type PackProblem } from './pack-check.ts';
import { serveTasks } from './worker-pool.ts';

export interface PackCheckTask {
  bytes: Uint8Array;
  packId: string;
  name: string;
  signerPublicKey?: Uint8Array;
  epochPairs: { publicKey: Uint8Array; privateKey: Uint8Array }[];
  idKey: Uint8Array;
}

export interface PackCheckReply {
  problems: PackProblem[];
  entries: { id: Uint8Array; type: 'data' | 'tree'; compression: number; offset: number; sealedLength: number; rawLength: number }[];
}

const buffer = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

serveTasks<PackCheckTask, PackCheckReply>(parentPort!, (task) => ({
  reply: checkPack({
    bytes: buffer(task.bytes),
    packId: asPackId(task.packId),
    name: task.name,
    signerPublicKey: task.signerPublicKey ? buffer(task.signerPublicKey) : undefined,
    epochPairs: task.epochPairs.map((pair) => ({ publicKey: buffer(pair.publicKey), privateKey: buffer(pair.privateKey) })),
    idKey: buffer(task.idKey),
  }),
}));
