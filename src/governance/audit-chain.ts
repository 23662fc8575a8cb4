// Checking the audit log as a hash DAG: every entry names the hash(es) of the entries it follows, so
// an edited entry no longer hashes to its name, a removed one leaves its successors pointing at
// nothing, a reordered or inserted one breaks the sequence numbers or the last checkpoint's count.
// Forks (two writers appending at once) are normal until the next append merges them; one still
// open behind the last checkpoint is reported.
import type { KeyId } from '../core/ids.ts';
import type { LoadedCheckpoint, LoadedEntry } from '../repo/audit-records.ts';

export interface ChainProblem {
  /** The entry's sequence number (from its name when it could not be read). */
  seq: number;
  name: string;
  problem: string;
}

export interface ChainReport {
  entries: number;
  heads: LoadedEntry[];
  /** The checkpoint the log was checked against (the latest valid one), if any. */
  checkpoint?: LoadedCheckpoint;
  problems: ChainProblem[];
}

/** Entries no other entry names as previous: where the next append continues (several = a fork). */
export function headsOf(entries: readonly LoadedEntry[]): LoadedEntry[] {
  const named = new Set(entries.flatMap(({ entry }) => entry.previous));
  return entries.filter(({ hash }) => !named.has(hash));
}

/** The entries `heads` lead back to (themselves included); hashes with no entry are reported. */
export function ancestorsOf(heads: readonly string[], byHash: ReadonlyMap<string, LoadedEntry>, missing?: (hash: string, from?: LoadedEntry) => void): Set<string> {
  const seen = new Set<string>();
  const stack: { hash: string; from?: LoadedEntry }[] = heads.map((hash) => ({ hash }));
  while (stack.length > 0) {
    const { hash, from } = stack.pop()!;
    if (seen.has(hash)) continue;
    const loaded = byHash.get(hash);
    if (!loaded) {
      missing?.(hash, from);
      continue;
    }
    seen.add(hash);
    for (const previous of loaded.entry.previous) stack.push({ hash: previous, from: loaded });
  }
  return seen;
}

export interface ChainContext {
  repositoryId: string;
  /** Keys the owner revoked: entries they signed after the revocation's own entry are reported. */
  revoked: ReadonlyMap<KeyId, { revokedAt: string }>;
}

export function checkChain(entries: readonly LoadedEntry[], checkpoints: readonly LoadedCheckpoint[], context: ChainContext): ChainReport {
  const problems: ChainProblem[] = [];
  const report = (loaded: { name: string; entry?: { seq: number }; seq?: number }, problem: string) =>
    problems.push({ seq: loaded.entry?.seq ?? loaded.seq ?? 0, name: loaded.name, problem });
  const byHash = new Map(entries.map((loaded) => [loaded.hash, loaded]));

  for (const loaded of entries) {
    const { entry } = loaded;
    if (entry.repository !== context.repositoryId) report(loaded, `belongs to repository ${entry.repository}, not this one (copied in)`);
    const previous = entry.previous.map((hash) => byHash.get(hash));
    previous.forEach((found, i) => {
      if (!found) report(loaded, `follows entry ${entry.previous[i].slice(0, 12)}, which is missing (removed)`);
    });
    if (entry.previous.length === 0 && entry.seq !== 1) report(loaded, `entry ${entry.seq} names no previous entry (inserted)`);
    const known = previous.filter((found) => found !== undefined);
    if (known.length === entry.previous.length && entry.previous.length > 0) {
      const expected = 1 + Math.max(...known.map((found) => found.entry.seq));
      if (entry.seq !== expected) report(loaded, `has sequence number ${entry.seq} but follows entry ${expected - 1} (reordered or inserted)`);
    }
  }
  checkRevokedSigners(entries, context, report);

  // Of the checkpoints at the highest level, the one that saw most: two full keys finishing at once
  // each seal the log (one follows every full-key operation), and the later one saw both entries.
  const top = checkpoints.at(-1)?.checkpoint.seq;
  const checkpoint = checkpoints.filter(({ checkpoint: { seq } }) => seq === top).sort((a, b) => b.checkpoint.entries - a.checkpoint.entries)[0];
  if (checkpoint) {
    const { heads, entries: count, seq } = checkpoint.checkpoint;
    // Behind a missing entry the walk cannot go on: what lies below it is not blamed for being unreachable.
    let blindBelowSeq = 0;
    const behind = ancestorsOf(heads, byHash, (hash, from) => {
      if (!from) report({ name: checkpoint.name, seq }, `the checkpoint names head ${hash.slice(0, 12)}, which is missing (log truncated)`);
      blindBelowSeq = Math.max(blindBelowSeq, from?.entry.seq ?? seq + 1);
    });
    if (behind.size !== count) {
      report({ name: checkpoint.name, seq }, `the checkpoint counts ${count} entries behind it, ${behind.size} found (entries removed or inserted)`);
    }
    // An entry at the checkpoint's own level that it does not cover was appended while it was being
    // written (a checkpoint follows every full-key operation, so two clients often meet there): that
    // is a fork at the top, which the next append merges, not history rewritten. Below it, it is.
    for (const loaded of entries) {
      if (loaded.entry.seq < seq && loaded.entry.seq >= blindBelowSeq && !behind.has(loaded.hash)) {
        report(loaded, `is not part of the log signed at checkpoint ${seq} (inserted later, or a fork never merged)`);
      }
    }
    if (checkpoint.checkpoint.repository !== context.repositoryId) report({ name: checkpoint.name, seq }, 'the checkpoint belongs to another repository');
  }
  problems.sort((a, b) => a.seq - b.seq || (a.name < b.name ? -1 : 1));
  return { entries: entries.length, heads: headsOf(entries), checkpoint, problems };
}

/** An entry a revoked key signed after the entry that revoked it (or, without one, after the revocation time). */
function checkRevokedSigners(entries: readonly LoadedEntry[], context: ChainContext, report: (loaded: LoadedEntry, problem: string) => void): void {
  if (context.revoked.size === 0) return;
  const revokedAtSeq = new Map<string, number>();
  for (const { entry } of entries) {
    if (entry.action === 'key.revoke' && context.revoked.has(entry.target as KeyId)) {
      revokedAtSeq.set(entry.target, Math.min(revokedAtSeq.get(entry.target) ?? Infinity, entry.seq));
    }
  }
  for (const loaded of entries) {
    const revocation = context.revoked.get(loaded.signerKeyId);
    if (!revocation) continue;
    const atSeq = revokedAtSeq.get(loaded.signerKeyId);
    const late = atSeq !== undefined ? loaded.entry.seq > atSeq : Date.parse(loaded.entry.time) > Date.parse(revocation.revokedAt);
    if (late) report(loaded, `is signed by key ${loaded.signerKeyId.slice(0, 8)} after its revocation`);
  }
}
