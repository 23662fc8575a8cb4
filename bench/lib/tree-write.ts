// Writes a planned tree to disk with streaming writes, and caches it between runs: a tree is reused
// when its directory holds a completion marker for the same seed, size and generator version.
import { existsSync } from 'node:fs';
import { mkdir, open, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { contentChunks, type Content } from './content.ts';
import type { TreePlan } from './tree-plan.ts';

/** Bump when the generator's output changes, so stale cached trees are not reused. */
export const GENERATOR_VERSION = 1;
const WRITERS = 8;

/** Writes `content` to `path` (created or truncated) a piece at a time. */
export async function writeContent(
  path: string,
  content: Content,
  mode: number,
  flags: 'w' | 'a' = 'w',
): Promise<void> {
  const handle = await open(path, flags, mode);
  try {
    for (const piece of contentChunks(content)) await handle.write(piece);
    if (flags === 'w') await handle.chmod(mode);
  } finally {
    await handle.close();
  }
}

/** Overwrites bytes of an existing file from `offset` on with `content`, keeping its other bytes. */
export async function overwriteContent(path: string, offset: number, content: Content): Promise<void> {
  const handle = await open(path, 'r+');
  try {
    let position = offset;
    for (const piece of contentChunks(content)) {
      await handle.write(piece, 0, piece.length, position);
      position += piece.length;
    }
  } finally {
    await handle.close();
  }
}

/** Runs `task` over `items` with at most `limit` in flight. */
export async function forEachLimited<T>(
  items: readonly T[],
  limit: number,
  task: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await task(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

export async function writeTree(plan: TreePlan, root: string): Promise<void> {
  await mkdir(root, { recursive: true });
  for (const dir of plan.dirs) await mkdir(join(root, dir), { recursive: true, mode: 0o755 });
  await forEachLimited(plan.files, WRITERS, (file) => writeContent(join(root, file.path), file.content, file.mode));
  for (const link of plan.links) await symlink(link.target, join(root, link.path));
}

export interface CachedTree {
  root: string;
  generated: boolean;
  seconds: number;
}

function cacheName(plan: TreePlan): string {
  return `tree-g${GENERATOR_VERSION}-${plan.seed.replace(/[^A-Za-z0-9_-]/g, '_')}-${plan.sizeBytes}`;
}

/** The tree for `plan` under `workDir`, generated unless a complete cached copy is there already. */
export async function ensureTree(plan: TreePlan, workDir: string, fresh: boolean): Promise<CachedTree> {
  const dir = join(workDir, cacheName(plan));
  const marker = join(dir, 'complete.json');
  const root = join(dir, 'tree');
  if (!fresh && existsSync(marker)) {
    const recorded = JSON.parse(await readFile(marker, 'utf8')) as { summary: TreePlan['summary'] };
    if (JSON.stringify(recorded.summary) === JSON.stringify(plan.summary))
      return { root, generated: false, seconds: 0 };
  }
  const started = performance.now();
  await rm(dir, { recursive: true, force: true });
  await writeTree(plan, root);
  await writeFile(
    marker,
    JSON.stringify(
      { seed: plan.seed, sizeBytes: plan.sizeBytes, generatorVersion: GENERATOR_VERSION, summary: plan.summary },
      null,
      2,
    ),
  );
  return { root, generated: true, seconds: (performance.now() - started) / 1000 };
}
