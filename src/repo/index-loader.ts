// Builds the in-memory blob index from every index object an authorised key signed.
import type { Repository } from './repository.ts';
import { createBlobIndex, type BlobIndex } from './blob-index.ts';
import { readIndexPayload } from './index-file.ts';
import { readRecords, type RecordProblem } from './records.ts';

export interface LoadedIndex {
  index: BlobIndex;
  indexNames: string[];
  problems: RecordProblem[];
}

export async function loadIndex(repo: Repository): Promise<LoadedIndex> {
  const problems: RecordProblem[] = [];
  const index = createBlobIndex();
  const records = await readRecords(repo.store, 'index', 'index', repo.authority.signingKeyFor, problems);
  for (const { name, record } of records) {
    const trustedSigner = record.signerKeyId === repo.key.signer.keyId || record.signerKeyId === repo.authority.ownerKeyId;
    readIndexPayload(record.payload, repo.key.secrets.indexKey, name, (packId, entry) => {
      index.add(entry.id, { ...entry, packId, trusted: trustedSigner || repo.certifiedPacks.has(packId) });
    });
  }
  return { index, indexNames: records.map(({ name }) => name), problems };
}
