// A Merkle root over a set of names (RFC 6962 style: leaves and nodes hashed with different prefixes,
// so a node can never pass for a leaf). One audit entry per backup carries the root of the names it
// stored, so a later reader can prove that a given object was part of that backup.
import { createHash } from 'node:crypto';

const hash = (...parts: Buffer[]) => {
  const h = createHash('sha256');
  for (const part of parts) h.update(part);
  return h.digest();
};

/** Root of the sorted, de-duplicated names; the hash of nothing for an empty set. */
export function merkleRoot(names: Iterable<string>): string {
  let level: Buffer[] = [...new Set(names)].sort().map((name) => hash(Buffer.from([0]), Buffer.from(name, 'utf8')));
  if (level.length === 0) return hash().toString('hex');
  while (level.length > 1) {
    const next: Buffer[] = [];
    for (let i = 0; i < level.length; i += 2) {
      next.push(i + 1 < level.length ? hash(Buffer.from([1]), level[i], level[i + 1]) : level[i]);
    }
    level = next;
  }
  return level[0].toString('hex');
}
