// What the committed compat repositories contain: the source tree their snapshots were made from.
import { createHash } from 'node:crypto';

/** Deterministic contents: a short text is used as is; `{ seed, size }` expands to hash-chained bytes. */
type Content = string | { seed: string; size: number };

function bytes(content: Content): Buffer {
  if (typeof content === 'string') return Buffer.from(content);
  const out = Buffer.alloc(content.size);
  let block = createHash('sha256').update(content.seed).digest();
  for (let at = 0; at < out.length; at += block.length) {
    block.copy(out, at);
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

export const FIXTURE = {
  passphrase: 'compat fixture passphrase',
  writerPassphrase: 'compat fixture writer',
  /** Relative to the temporary folder the fixture was made in; snapshots record the absolute path. */
  sourceDir: 'source',
  files: {
    'notes.txt': 'Amber compatibility fixture.\n',
    'empty.txt': '',
    'docs/random.bin': { seed: 'random', size: 256 * 1024 + 17 },
    'docs/deep/text.txt': Array.from({ length: 200_000 }, (_, n) => `line ${n % 977}\n`).join(''),
  } as Record<string, Content>,
  later: 'written between the two backups\n',
  /** Version 2 only: what version 1 could not keep. */
  v2: {
    /** "café.txt" in Latin-1: not UTF-8. */
    latin1Name: Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x2e, 0x74, 0x78, 0x74]),
    latin1Content: 'a name that is not UTF-8\n',
    /** On notes.txt. */
    xattr: { name: 'user.amber.compat', value: Buffer.from([0x00, 0x01, 0xfe, 0xff]) },
    /** Access time of notes.txt, before 1970 and with nanoseconds (as utimes could set it). */
    atimeNs: -86_400_123_456_000n,
  },
  bytes,
};
