// Builds the in-memory blob index from every index object an authorised key signed. Entries signed
// by this key or the owner are trusted for dedup (the owner re-signs writers' packs that a full
// verify read clean); other writers' entries are used for reading only.
import type { Repository } from './repository.ts';
import type { PackId } from '../core/ids.ts';
import { createBlobIndex, type BlobIndex, type BlobLocation } from './blob-index.ts';
import { readIndexPayload } from './index-file.ts';
import { readRecords, type RecordProblem } from './records.ts';
import { isAmberError } from '../core/errors.ts';
import { packName } from './layout.ts';
import { CONDEMNS, loadRecords } from './retention-records.ts';

export interface LoadedIndex {
  index: BlobIndex;
  indexNames: string[];
  problems: RecordProblem[];
  /** Per pack, the end of its last indexed blob: a stored pack shorter than this plus a trailer is truncated. */
  packEnds: Map<string, number>;
  /** Packs named by an index object that this key or the owner signed. */
  trustedPacks: Set<string>;
  /** Packs named by any index object read. The blob index keeps one location per blob, so a pack
   *  whose every blob is also stored elsewhere is named here but absent from `index.packIds`. */
  indexedPacks: Set<PackId>;
}

export interface LoadIndexOptions {
  /** Packs a backup may dedup against (default all): entries in others are kept for reading only,
   *  e.g. packs condemned by prune or held in another lock mode. */
  dedupable?: (packId: PackId) => boolean;
}

export async function loadIndex(repo: Repository, options: LoadIndexOptions = {}): Promise<LoadedIndex> {
  const dedupable = options.dedupable ?? (() => true);
  // Index objects are never rewritten, so they still name packs that prune condemned (and perhaps
  // deleted): such entries are kept only as a last resort, behind any other copy.
  const condemned = new Set(
    (await loadRecords(repo, CONDEMNS, [])).flatMap(({ value }) => value.objects.map(({ name }) => name)),
  );
  const problems: RecordProblem[] = [];
  const index = createBlobIndex();
  const records = await readRecords(repo.store, 'index', 'index', repo.authority.signingKeyFor, problems);
  const packEnds = new Map<string, number>();
  const indexNames: string[] = [];
  const trustedPacks = new Set<string>();
  const indexedPacks = new Set<PackId>();
  for (const { name, record } of records) {
    const trustedSigner =
      record.signerKeyId === repo.key.signer.keyId || record.signerKeyId === repo.authority.ownerKeyId;
    try {
      readIndexPayload(record.payload, repo.key.secrets.indexKey, name, (packId, entry) => {
        index.add(entry.id, {
          ...entry,
          packId,
          trusted: trustedSigner && dedupable(packId) && !condemned.has(packName(packId)),
        });
        if (trustedSigner) trustedPacks.add(packId);
        indexedPacks.add(packId);
        packEnds.set(packId, Math.max(packEnds.get(packId) ?? 0, entry.offset + entry.sealedLength));
      });
      indexNames.push(name);
    } catch (error) {
      // A signed index whose payload does not open is reported like any other bad record, not fatal.
      if (!isAmberError(error, 'OBJECT_CORRUPT')) throw error;
      problems.push({ name, problem: error.message, code: error.code });
    }
  }
  return { index, indexNames, problems, packEnds, trustedPacks, indexedPacks };
}

/** Every location any readable index object gives for one blob: the slow path after a failed read. */
export async function findAllLocations(repo: Repository, id: Uint8Array): Promise<BlobLocation[]> {
  const found: BlobLocation[] = [];
  const records = await readRecords(repo.store, 'index', 'index', repo.authority.signingKeyFor, []);
  for (const { name, record } of records) {
    try {
      readIndexPayload(record.payload, repo.key.secrets.indexKey, name, (packId, entry) => {
        if (Buffer.compare(entry.id, id) !== 0) return;
        const { type, compression, offset, sealedLength, rawLength } = entry;
        found.push({ packId, type, compression, offset, sealedLength, rawLength, trusted: false });
      });
    } catch (error) {
      if (!isAmberError(error, 'OBJECT_CORRUPT')) throw error;
    }
  }
  return found;
}
