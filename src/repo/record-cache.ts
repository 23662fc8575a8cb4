// Signed records are content-addressed and never change, so a record verified once need not be
// fetched and verified again: this local cache keeps the payload and signer of each, so a backup
// reads only the records written since its last run (one listing, no per-record round trip).
// It is an optimisation, never an authority: each line is MAC'd under a key derived from the
// repository's secrets (a local edit is ignored), a cached record counts only while the store still
// lists its name, and its signer's authority is checked again on every use.
import { appendFileSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { asKeyId, type KeyId } from '../core/ids.ts';

export interface CachedRecord {
  signerKeyId: KeyId;
  payload: Buffer;
}

export interface RecordCache {
  get(name: string): CachedRecord | undefined;
  remember(name: string, record: CachedRecord): void;
}

interface Line {
  n: string;
  s: string;
  p: string;
  m: string;
}

export function openRecordCache(path: string, macKey: Buffer): RecordCache {
  const mac = (name: string, signer: string, payload: string) =>
    createHmac('sha256', macKey).update(`${name}\0${signer}\0${payload}`).digest();
  let known: Map<string, CachedRecord> | undefined;
  const load = () => {
    known = new Map();
    let text = '';
    try {
      text = readFileSync(path, 'utf8');
    } catch {
      return known;
    }
    for (const line of text.split('\n')) {
      try {
        const { n, s, p, m } = JSON.parse(line) as Line;
        const expected = mac(n, s, p);
        const given = Buffer.from(m, 'hex');
        if (given.length === expected.length && timingSafeEqual(given, expected)) {
          known.set(n, { signerKeyId: asKeyId(s), payload: Buffer.from(p, 'base64') });
        }
      } catch {
        // a torn or edited line only costs one fetch
      }
    }
    return known;
  };
  return {
    get: (name) => (known ?? load()).get(name),
    remember(name, record) {
      const cache = known ?? load();
      if (cache.has(name)) return;
      cache.set(name, record);
      const p = record.payload.toString('base64');
      const line: Line = { n: name, s: record.signerKeyId, p, m: mac(name, record.signerKeyId, p).toString('hex') };
      try {
        mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
        appendFileSync(path, `${JSON.stringify(line)}\n`, { mode: 0o600 });
      } catch {
        // a cache that cannot be written only costs the next run the fetches
      }
    },
  };
}
