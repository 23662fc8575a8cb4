// Helpers for engine tests: throwaway directories, fast-to-open repositories on the fs store,
// seeded incompressible bytes, and damaging stored objects the way a disk or an attacker would.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { createCipheriv, createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemClock } from '../core/clock.ts';
import { isAmberError, type AmberError, type ErrorCode } from '../core/errors.ts';
import type { ChunkerParams } from '../chunker/fastcdc.ts';
import { initRepository, openRepository, type Repository } from '../repo/repository.ts';
import type { Operation } from '../governance/operation.ts';
import { testOperation } from './operation.ts';
import { createFsStore } from '../storage/fs/fs-store.ts';
import type { Store } from '../storage/store.ts';

export const TEST_PASSPHRASE = 'correct horse battery staple';

/** Small chunks and packs, so a few MiB of data spread over many chunks and several packs. */
export const SMALL_CHUNKER: ChunkerParams = {
  minSizeBytes: 16 * 1024,
  avgSizeBytes: 64 * 1024,
  maxSizeBytes: 256 * 1024,
};

export async function makeTempDir(label: string): Promise<string> {
  return fs.mkdtemp(join(tmpdir(), `amber-${label}-`));
}

/** Runs chattr or lsattr; its output, or undefined where it is missing or fails. */
function attrTool(tool: 'chattr' | 'lsattr', args: string[]): Promise<string | undefined> {
  return new Promise((done) => {
    execFile(tool, args, { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } }, (error, stdout) =>
      done(error ? undefined : stdout),
    );
  });
}

/**
 * Lifts the immutable and append-only attributes the fs store puts on protected objects and their
 * directories, everywhere under `dir`: what root does before changing a repository by hand (tests
 * that damage one play that part). Where chattr is missing or may not, nothing was locked either.
 */
export async function liftAttributes(dir: string): Promise<void> {
  await attrTool('chattr', ['-R', '-i', '-a', '--', dir]);
}

/**
 * Removes a directory that may hold a repository. A plain recursive rm cannot remove protected
 * objects even as root, so the attributes are lifted first.
 */
export async function removeTree(dir: string): Promise<void> {
  await liftAttributes(dir);
  await fs.rm(dir, { recursive: true, force: true });
}

export interface TestRepoOptions {
  chunker?: ChunkerParams;
  packTargetBytes?: number;
  /** Wraps the fs store, e.g. in a faulty store. */
  wrap?: (store: Store) => Store;
  /** A repository this one will hold copies of (`amber init --from-repo`): its dedup secrets are taken. */
  copyOf?: Repository;
}

/** A new repository at `path` (scrypt kept cheap with logN 10). */
/** A new repository at `path` (scrypt kept cheap with logN 10), as an operation judged by wall time. */
export async function createTestRepo(path: string, options: TestRepoOptions = {}): Promise<Operation> {
  const store = (options.wrap ?? ((inner) => inner))(createFsStore(path));
  return testOperation(
    await initRepository({
      store,
      passphrase: TEST_PASSPHRASE,
      clock: systemClock,
      kdfLogN: 10,
      chunker: options.copyOf?.config.chunker ?? options.chunker,
      packTargetBytes: options.packTargetBytes,
      dedupSecrets: options.copyOf
        ? { idKey: options.copyOf.key.secrets.idKey, gearSeed: options.copyOf.key.secrets.gearSeed }
        : undefined,
    }),
  );
}

export async function openTestRepo(path: string, wrap?: (store: Store) => Store): Promise<Operation> {
  const store = (wrap ?? ((inner) => inner))(createFsStore(path));
  return testOperation(await openRepository({ store, passphrase: TEST_PASSPHRASE, clock: systemClock }));
}

/** `sizeBytes` of AES-CTR keystream keyed by `label`: incompressible, and the same label gives the same bytes. */
export function seededBytes(sizeBytes: number, label: string): Buffer {
  const key = createHash('sha256').update(`amber-test:${label}`).digest();
  return createCipheriv('aes-256-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(sizeBytes));
}

/** mulberry32: a small seeded generator of numbers in [0, 1). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Rewrites a stored (read-only) object file in place with `change` applied to its bytes. A protected
 * object is immutable: like root by hand, this lifts the attribute for the change and sets it again.
 */
export async function alterObjectFile(path: string, change: (bytes: Buffer) => Buffer): Promise<void> {
  const immutable = (await attrTool('lsattr', ['-d', '--', path]))?.split(' ')[0].includes('i') ?? false;
  if (immutable) await attrTool('chattr', ['-i', '--', path]);
  try {
    await fs.chmod(path, 0o644);
    await fs.writeFile(path, change(await fs.readFile(path)));
    await fs.chmod(path, 0o444);
  } finally {
    if (immutable) await attrTool('chattr', ['+i', '--', path]);
  }
}

/** Flips the lowest bit of the byte at `offset` (default: the middle) of a stored object file. */
export async function flipByte(path: string, offset?: number): Promise<number> {
  let at = 0;
  await alterObjectFile(path, (bytes) => {
    at = offset ?? Math.floor(bytes.length / 2);
    bytes[at] ^= 0x01;
    return bytes;
  });
  return at;
}

export async function listNames(store: Store, prefix: string): Promise<string[]> {
  const names: string[] = [];
  for await (const { name } of store.list(prefix)) names.push(name);
  return names.sort();
}

/** Awaits `promise`, asserts it rejects with an AmberError of `code`, and returns the error. */
export async function rejectsWithCode(promise: Promise<unknown>, code: ErrorCode): Promise<AmberError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(isAmberError(error), `expected an AmberError ${code}, got ${String(error)}`);
    assert.equal(error.code, code, `expected ${code}, got ${error.code}: ${error.message}`);
    return error;
  }
  assert.fail(`expected a rejection with ${code}, but it resolved`);
}

/** Every file below `root` (relative path → SHA-256 of its content, or "dir"/"symlink → target"). */
export async function fingerprintTree(root: string): Promise<Map<string, string>> {
  const result = new Map<string, string>();
  const visit = async (dir: string, relative: string): Promise<void> => {
    for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      const name = relative ? `${relative}/${entry.name}` : entry.name;
      if (entry.isDirectory()) {
        result.set(name, 'dir');
        await visit(path, name);
      } else if (entry.isSymbolicLink()) {
        result.set(name, `symlink → ${await fs.readlink(path)}`);
      } else {
        result.set(
          name,
          createHash('sha256')
            .update(await fs.readFile(path))
            .digest('hex'),
        );
      }
    }
  };
  await visit(root, '');
  return result;
}

export const NOBODY = 65534;

/**
 * Root reads every file, so tests of unreadable sources run a child as the unprivileged user nobody.
 * That needs root and a Node binary nobody may execute (a checkout under a private folder is not);
 * otherwise the reason, for `test(…, { skip })`.
 */
export function whyNobodyCannotRun(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root to switch to the user nobody';
  const probe = spawnSync(process.execPath, ['-e', '0'], { uid: NOBODY, gid: NOBODY, stdio: 'ignore' });
  return probe.status === 0 ? undefined : `the user nobody cannot run ${process.execPath} here`;
}

/** Points write-only keys' local caches (engine/writer-cache.ts) at a folder of the test's own. */
export function useTemporaryWriterCache(dir: string): void {
  process.env.AMBER_CACHE_DIR = join(dir, 'writer-cache');
}

/**
 * A throwaway directory removed after the test, holding a fresh repository at `repo/` and the
 * writer cache of any write-only key the test adds.
 */
export async function createScratchRepo(
  t: { after(fn: () => unknown): void },
  label: string,
  options: TestRepoOptions = {},
) {
  const dir = await makeTempDir(label);
  useTemporaryWriterCache(dir);
  t.after(() => removeTree(dir));
  const repoPath = join(dir, 'repo');
  return { dir, repoPath, owner: await createTestRepo(repoPath, options) };
}
