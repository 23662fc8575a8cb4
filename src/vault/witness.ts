// The vault's witness: its own Ed25519 key, which a repository's owner accepts at `amber init`
// (an owner-signed `witnesses/` record), and with which the vault adds entries to that repository's
// audit log. Each entry sums up the mutating requests it answered since the last one — how many, by
// which tokens, and the Merkle root of their access-log lines — so every request is on the signed
// record with the identity that made it, while the log keeps one entry per burst of work.
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import type { Clock } from '../core/clock.ts';
import { isAmberError } from '../core/errors.ts';
import { merkleRoot } from '../core/merkle.ts';
import { generateSigningKeyPair } from '../crypto/index.ts';
import { keyIdOf, type Signer } from '../repo/signed-record.ts';
import { openRepositoryView } from '../repo/repository.ts';
import type { Store } from '../storage/store.ts';
import { appendAudit } from '../governance/audit-log.ts';
import { loadRetentionState, type RetentionClock } from '../governance/retention-state.ts';

/** The witness key, made on the vault's first start and kept (0600) in the data directory. */
export function loadWitnessKey(dataDir: string): Signer {
  const dir = join(dataDir, 'vault');
  const path = join(dir, 'witness.key');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  try {
    writeFileSync(path, JSON.stringify(hexPair(generateSigningKeyPair())), { mode: 0o600, flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const stored = JSON.parse(readFileSync(path, 'utf8')) as { publicKey: string; privateKey: string };
  const publicKey = Buffer.from(stored.publicKey, 'hex');
  return { keyId: keyIdOf(publicKey), publicKey, privateKey: Buffer.from(stored.privateKey, 'hex') };
}

const hexPair = ({ publicKey, privateKey }: { publicKey: Buffer; privateKey: Buffer }) => ({
  publicKey: publicKey.toString('hex'),
  privateKey: privateKey.toString('hex'),
});

export interface AccessLine {
  text: string;
  token: string;
  role: string;
  label: string;
  time: string;
}

/** Collects a repository's access-log lines and writes them into its audit log in one signed entry. */
export function createWitness(options: {
  signer: Signer;
  clock: Clock;
  retentionClock: RetentionClock;
  storeOf: (repo: string) => Store;
  flushAfterMs?: number;
  maxPending?: number;
}) {
  const pending = new Map<string, AccessLine[]>();
  const running = new Map<string, Promise<void>>();
  const timers = new Map<string, NodeJS.Timeout>();

  async function write(repo: string, lines: AccessLine[]): Promise<void> {
    const store = options.storeOf(repo);
    // Before `config` exists (the first uploads of an init) no owner can have accepted this vault yet.
    const view = await openRepositoryView(store).catch((error) => {
      if (isAmberError(error, 'REPO_NOT_FOUND')) return undefined;
      throw error;
    });
    if (!view) return;
    // Only a repository whose owner accepted this vault's key has it as a signer of its log.
    if (!view.authority.witnesses.some(({ publicKey }) => publicKey === options.signer.publicKey.toString('hex')))
      return;
    const tokens = new Map<string, { token: string; role: string; label: string; requests: number }>();
    for (const line of lines) {
      const known = tokens.get(line.token) ?? { token: line.token, role: line.role, label: line.label, requests: 0 };
      known.requests += 1;
      tokens.set(line.token, known);
    }
    const hashes = lines.map(({ text }) => createHash('sha256').update(text).digest('hex'));
    await appendAudit(
      {
        ...view,
        clock: options.clock,
        retentionClock: options.retentionClock,
        actor: 'vault',
        signer: options.signer,
        retentionState: () => loadRetentionState(view),
      },
      {
        action: 'vault.requests',
        target: repo,
        details: {
          requests: lines.length,
          from: lines[0].time,
          to: lines.at(-1)!.time,
          tokens: [...tokens.values()],
          accessLogRoot: merkleRoot(hashes),
          accessLogLast: hashes.at(-1)!,
        },
      },
    );
  }

  function flush(repo: string): Promise<void> {
    clearTimeout(timers.get(repo));
    timers.delete(repo);
    const lines = pending.get(repo) ?? [];
    pending.delete(repo);
    if (lines.length === 0) return running.get(repo) ?? Promise.resolve();
    // One append at a time per repository: the vault never forks its own entries.
    const next = (running.get(repo) ?? Promise.resolve())
      .then(() => write(repo, lines))
      .catch((error) => {
        process.stderr.write(
          `vault: the audit entry for ${lines.length} request(s) to ${repo} could not be written (they are in the access log): ${(error as Error).message}\n`,
        );
      });
    running.set(repo, next);
    return next;
  }

  return {
    /** Records a mutating request; `commit` (a snapshot, a hold, a deletion…) writes the entry now. */
    record(repo: string, line: AccessLine, commit: boolean): void {
      const lines = pending.get(repo) ?? [];
      lines.push(line);
      pending.set(repo, lines);
      if (commit || lines.length >= (options.maxPending ?? 256)) void flush(repo);
      else if (!timers.has(repo))
        timers.set(repo, setTimeout(() => void flush(repo), options.flushAfterMs ?? 30_000).unref());
    },
    flush,
    async close(): Promise<void> {
      await Promise.all([...pending.keys(), ...running.keys()].map((repo) => flush(repo)));
    },
  };
}
