// The restore sanity check and repository sizes: a manifest of a tree (paths, types, permission
// bits, sizes, SHA-256 of contents, symlink targets) built by streaming every file, and a `du -sb`.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { forEachLimited } from './tree-write.ts';

export interface ManifestEntry {
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'other';
  mode: number;
  sizeBytes: number;
  /** SHA-256 of a file's bytes, or a symlink's target. */
  content: string;
}

async function* walk(root: string, relative = ''): AsyncGenerator<{ path: string; full: string }> {
  const entries = await readdir(join(root, relative), { withFileTypes: true });
  for (const entry of entries) {
    const path = relative ? `${relative}/${entry.name}` : entry.name;
    yield { path, full: join(root, path) };
    if (entry.isDirectory()) yield* walk(root, path);
  }
}

function hashFile(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(path, { highWaterMark: 1 << 20 })
      .on('data', (data) => hash.update(data))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')));
  });
}

export async function treeManifest(root: string): Promise<ManifestEntry[]> {
  const entries: ManifestEntry[] = [];
  for await (const { path, full } of walk(root)) {
    const stat = await lstat(full);
    const type = stat.isFile() ? 'file' : stat.isDirectory() ? 'dir' : stat.isSymbolicLink() ? 'symlink' : 'other';
    entries.push({
      path,
      type,
      mode: stat.mode & 0o7777,
      sizeBytes: type === 'file' || type === 'symlink' ? stat.size : 0,
      content: type === 'symlink' ? await readlink(full) : '',
    });
  }
  await forEachLimited(
    entries.filter((entry) => entry.type === 'file'),
    8,
    async (entry) => {
      entry.content = await hashFile(join(root, entry.path));
    },
  );
  return entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** Human-readable differences between two manifests, at most `limit` of them. */
export function diffManifests(expected: ManifestEntry[], actual: ManifestEntry[], limit = 10): string[] {
  const differences: string[] = [];
  const byPath = new Map(actual.map((entry) => [entry.path, entry]));
  for (const want of expected) {
    const got = byPath.get(want.path);
    byPath.delete(want.path);
    if (!got) differences.push(`missing: ${want.path}`);
    else if (got.type !== want.type) differences.push(`${want.path}: ${got.type} instead of ${want.type}`);
    else if (got.sizeBytes !== want.sizeBytes)
      differences.push(`${want.path}: ${got.sizeBytes} bytes instead of ${want.sizeBytes}`);
    else if (got.content !== want.content)
      differences.push(`${want.path}: different ${want.type === 'symlink' ? 'link target' : 'contents'}`);
    else if (got.mode !== want.mode)
      differences.push(`${want.path}: mode ${got.mode.toString(8)} instead of ${want.mode.toString(8)}`);
    if (differences.length >= limit) return differences;
  }
  for (const extra of byPath.keys()) {
    differences.push(`unexpected: ${extra}`);
    if (differences.length >= limit) break;
  }
  return differences;
}

/** Apparent size of everything under `root`, files and directories, like `du -sb`. */
export async function diskUsageBytes(root: string): Promise<number> {
  let total = (await lstat(root)).size;
  for await (const { full } of walk(root)) total += (await lstat(full)).size;
  return total;
}
