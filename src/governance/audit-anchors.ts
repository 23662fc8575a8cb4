// Cross-anchored history: every `amber copy` run records, in the copy's own audit log, the primary's
// log as it found it (heads, entry count, newest checkpoint). The copy's log is out of the primary's
// reach, so whoever later rewrites the primary's history — removes entries, replaces them, or forks
// the log from an earlier point — cannot make it agree with what the copy saw.
import type { RepositoryView } from '../repo/repository.ts';
import { parseSequencedName } from '../repo/layout.ts';
import { ancestorsOf, headsOf, readAuditLog, type AuditLog } from './audit-log.ts';

export const ANCHOR_ACTION = 'copy.anchor';

export interface AnchorProblem {
  /** The copy's audit entry that holds the anchor. */
  anchor: string;
  /** When the copy saw the primary's log so. */
  time: string;
  problem: string;
}

export interface AnchorCheck {
  copy: { repository: string; location: string };
  /** Anchors of this primary found in the copy's log. */
  anchors: number;
  newest: { time: string; entries: number; heads: string[] } | null;
  problems: AnchorProblem[];
}

interface AnchorDetails {
  repository?: unknown;
  entries?: unknown;
  heads?: unknown;
  checkpoint?: { name?: unknown } | null;
}

/**
 * Checks the primary's log against every anchor of it in the copy's log: each head the copy saw must
 * still be an entry of the primary, on the history its current heads lead back to; the log must
 * hold at least as many entries as then; and the checkpoint then newest must still be there.
 */
export async function checkAnchors(
  primary: RepositoryView,
  copy: RepositoryView,
  log?: AuditLog,
): Promise<AnchorCheck> {
  // Read from the stores themselves: local caches are for speed, not for proof.
  const primaryLog = log ?? (await readAuditLog({ ...primary, recordCache: undefined }));
  const copyLog = await readAuditLog({ ...copy, recordCache: undefined });
  const repositoryId = primary.config.repositoryId;
  const anchors = copyLog.entries.filter(
    ({ entry }) =>
      entry.action === ANCHOR_ACTION &&
      entry.target === repositoryId &&
      (entry.details as AnchorDetails).repository === repositoryId,
  );
  const byName = new Map(primaryLog.entries.map((loaded) => [loaded.name, loaded]));
  const byHash = new Map(primaryLog.entries.map((loaded) => [loaded.hash, loaded]));
  const current = ancestorsOf(
    headsOf(primaryLog.entries).map(({ hash }) => hash),
    byHash,
  );
  const checkpoints = new Set(primaryLog.checkpoints.map(({ name }) => name));
  const problems: AnchorProblem[] = [];
  for (const { name, entry } of anchors) {
    const details = entry.details as AnchorDetails;
    const report = (problem: string) => problems.push({ anchor: name, time: entry.time, problem });
    const heads = Array.isArray(details.heads) ? details.heads.filter((head) => typeof head === 'string') : [];
    for (const head of heads) {
      const found = byName.get(head);
      if (!found) report(`the primary's entry ${head}, its newest when the copy looked, is gone`);
      else if (!current.has(found.hash))
        report(`the primary's entry ${head} is no longer on its history (the log was forked from an earlier point)`);
    }
    // Every entry there was then lies behind the heads the copy saw. One below their level that does
    // not was added to that history afterwards: a branch forked from an earlier entry, backdated and
    // merged, which a new checkpoint then seals. (At the heads' own level a writer that listed the log
    // just before the copy looked may still land: a fork at the top, as checkpoints allow.)
    const headHashes = heads.flatMap((head) => byName.get(head)?.hash ?? []);
    const top = Math.max(0, ...heads.map((head) => parseSequencedName('audit', head)?.seq ?? 0));
    const seen = ancestorsOf(headHashes, byHash);
    const inserted = primaryLog.entries.filter(({ entry, hash }) => entry.seq < top && !seen.has(hash));
    if (headHashes.length === heads.length && inserted.length > 0)
      report(
        `the primary's entry ${inserted[0].name}${inserted.length > 1 ? ` and ${inserted.length - 1} more` : ''} lie${inserted.length > 1 ? '' : 's'} below what the copy saw but ${inserted.length > 1 ? 'were' : 'was'} not part of it (inserted into that history)`,
      );
    if (typeof details.entries === 'number' && primaryLog.entries.length < details.entries)
      report(`the primary's log held ${details.entries} entries then and holds ${primaryLog.entries.length} now`);
    const checkpoint = details.checkpoint?.name;
    if (typeof checkpoint === 'string' && !checkpoints.has(checkpoint))
      report(`the primary's checkpoint ${checkpoint}, its newest then, is gone`);
  }
  const newest = anchors.at(-1);
  const newestDetails = newest?.entry.details as AnchorDetails | undefined;
  return {
    copy: { repository: copy.config.repositoryId, location: copy.store.location },
    anchors: anchors.length,
    newest: newest
      ? {
          time: newest.entry.time,
          entries: typeof newestDetails?.entries === 'number' ? newestDetails.entries : 0,
          heads: Array.isArray(newestDetails?.heads) ? (newestDetails.heads as string[]) : [],
        }
      : null,
    problems,
  };
}
