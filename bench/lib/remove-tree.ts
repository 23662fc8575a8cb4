// Removing a run's repositories between repetitions. Amber's fs store makes protected objects
// immutable and their directories append-only (chattr), which `rm -r` cannot remove even as root, so
// the attributes are lifted first. (The same as removeTree in src/testing/repo-fixture.ts, kept here
// because the benchmark drives Amber only through its CLI and imports nothing from src/.)
import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';

export async function removeTree(dir: string): Promise<void> {
  // Fails harmlessly where chattr is missing or may not, and there nothing was made immutable either.
  await new Promise<void>((done) => execFile('chattr', ['-R', '-i', '-a', '--', dir], () => done()));
  await rm(dir, { recursive: true, force: true });
}
