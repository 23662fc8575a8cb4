// A backup in a child process, for tests that kill it part-way or run it as another user.
//   node backup-child.ts '<json BackupChildRequest>'
// Drops privileges first (when asked), prints "ready" once the repository is open, then one line of
// JSON: the result, or { error } for an expected failure (exit status 2).
import { systemClock } from '../core/clock.ts';
import { isAmberError } from '../core/errors.ts';
import { backup } from '../engine/backup.ts';
import { testOperation } from './operation.ts';
import { openRepository } from '../repo/repository.ts';
import { createFsStore } from '../storage/fs/fs-store.ts';
import type { Store } from '../storage/store.ts';

export interface BackupChildRequest {
  repo: string;
  passphrase: string;
  paths: string[];
  /** Run as this user and group (setgid/setuid before the repository is opened). */
  uid?: number;
  gid?: number;
  /** The process SIGKILLs itself right after this many puts have completed. */
  killAfterPuts?: number;
  /** … or right after the first put of an object whose name starts with this (e.g. `grants/`). */
  killAfterPutOf?: string;
}

function killingStore(inner: Store, kill: (name: string, puts: number) => boolean): Store {
  let puts = 0;
  return {
    ...inner,
    async put(name, bytes, options) {
      await inner.put(name, bytes, options);
      if (kill(name, ++puts)) process.kill(process.pid, 'SIGKILL');
    },
  };
}

async function main(): Promise<void> {
  const request = JSON.parse(process.argv[2]) as BackupChildRequest;
  if (request.gid !== undefined) {
    process.setgroups?.([]);
    process.setgid?.(request.gid);
  }
  if (request.uid !== undefined) process.setuid?.(request.uid);
  const fsStore = createFsStore(request.repo);
  const { killAfterPuts, killAfterPutOf } = request;
  const store =
    killAfterPuts !== undefined
      ? killingStore(fsStore, (_, puts) => puts >= killAfterPuts)
      : killAfterPutOf !== undefined
        ? killingStore(fsStore, (name) => name.startsWith(killAfterPutOf))
        : fsStore;
  const repo = testOperation(await openRepository({ store, passphrase: request.passphrase, clock: systemClock }));
  process.stdout.write('ready\n');
  try {
    const result = await backup({ repo, paths: request.paths });
    process.stdout.write(
      `${JSON.stringify({
        snapshotId: result.snapshotId,
        partial: result.partial,
        flags: result.snapshot.flags,
        warnings: result.warnings,
        summary: result.snapshot.summary,
        uid: process.getuid?.(),
      })}\n`,
    );
  } catch (error) {
    if (!isAmberError(error)) throw error;
    process.stdout.write(`${JSON.stringify({ error: { code: error.code, message: error.message } })}\n`);
    process.exitCode = 2;
  }
}

await main();
