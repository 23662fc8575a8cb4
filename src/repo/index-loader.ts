// Builds the in-memory blob index from every index object an authorised key signed.
import type { Repository } from './repository.ts';
import { createBlobIndex, type BlobIndex } from './blob-index.ts';
import { readIndexPayload } from './index-file.ts';
import { readRecords, type RecordProblem } from './records.ts';
import { isAmberError } from '../core/errors.ts';

export interface LoadedIndex {
  index: BlobIndex;
  indexNames: string[];
  problems: RecordProblem[];
  /** Per pack, the end of its last indexed blob: a stored pack shorter than this plus a trailer is truncated. */
  packEnds: Map<string, number>;
}

export async function loadIndex(repo: Repository): Promise<LoadedIndex> {
  const problems: RecordProblem[] = [];
  const index = createBlobIndex();
  const records = await readRecords(repo.store, 'index', 'index', repo.authority.signingKeyFor, problems);
  const packEnds = new Map<string, number>();
  const indexNames: string[] = [];
  for (const { name, record } of records) {
    const trustedSigner = record.signerKeyId === repo.key.signer.keyId || record.signerKeyId === repo.authority.ownerKeyId;
    try {
      readIndexPayload(record.payload, repo.key.secrets.indexKey, name, (packId, entry) => {
        index.add(entry.id, { ...entry, packId, trusted: trustedSigner || repo.certifiedPacks.has(packId) });
        packEnds.set(packId, Math.max(packEnds.get(packId) ?? 0, entry.offset + entry.sealedLength));
      });
      indexNames.push(name);
    } catch (error) {
      // A signed index whose payload does not open is reported like any other bad record, not fatal.
      if (!isAmberError(error, 'OBJECT_CORRUPT')) throw error;
      problems.push({ name, problem: error.message, code: error.code });
    }
  }
  return { index, indexNames, problems, packEnds };
}
