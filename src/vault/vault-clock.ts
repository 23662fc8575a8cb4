// The vault's own guarded clock, which judges every expiry the vault decides (condemn notices,
// deletions) by its own time, never a client's.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openGuardedClock, type GuardedClock } from '../governance/guarded-clock.ts';

/**
 * The vault's own guarded clock: deletions never trust a wall clock that jumped. Its state is MAC'd
 * with a key kept beside it in the data directory (made on first start). A new vault anchors it on
 * first start; a vault that holds repositories but no clock state (removed, or a fresh key) trusts
 * no time until `amber vault clock confirm`, so emptying the state cannot make a forged clock count.
 */
export async function openVaultClock(dataDir: string): Promise<GuardedClock> {
  const dir = join(dataDir, 'vault');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const keyPath = join(dir, 'clock.key');
  try {
    writeFileSync(keyPath, randomBytes(32), { mode: 0o600, flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  let repositories: string[] = [];
  try {
    repositories = readdirSync(join(dataDir, 'repos'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  return openGuardedClock({
    statePath: join(dir, 'clock.json'),
    macKey: readFileSync(keyPath),
    firstUse: repositories.length === 0 ? 'anchor' : 'wait',
  });
}
