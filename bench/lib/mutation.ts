// One day of changes on the benchmark tree, about 5 % of its bytes: database pages and text files
// rewritten in place, logs appended to, new files (an upload folder and scattered new sources), and
// some files deleted. Deterministic from the seed; applied in place to a copy of the cached tree, so
// every unchanged file keeps its inode, size, mtime and ctime as a real server's would.
import { unlink, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Content } from './content.ts';
import { createRandom, type Random } from './random.ts';
import type { PlannedFile, TreePlan } from './tree-plan.ts';
import { forEachLimited, overwriteContent, writeContent } from './tree-write.ts';

export interface Mutation {
  deletes: string[];
  overwrites: { path: string; offset: number; content: Content }[];
  appends: { path: string; content: Content }[];
  creates: { path: string; content: Content; mode: number }[];
  newDirs: string[];
  summary: MutationSummary;
}

export interface MutationSummary {
  filesDeleted: number;
  bytesDeleted: number;
  filesOverwritten: number;
  bytesOverwritten: number;
  filesAppended: number;
  bytesAppended: number;
  filesCreated: number;
  bytesCreated: number;
  /** Deleted + overwritten + appended + created bytes as a share of the tree. */
  changedShare: number;
}

const PAGE_BYTES = 64 << 10;

/** What the steps of a day share: the randomness, the tree, the files already touched, the tallies. */
interface Day {
  random: Random;
  plan: TreePlan;
  total: number;
  candidates: PlannedFile[];
  touched: Set<string>;
  m: Mutation;
  bytes: { deleted: number; overwritten: number; appended: number; created: number };
}

const changed = (day: Day) => day.bytes.deleted + day.bytes.overwritten + day.bytes.appended + day.bytes.created;

/** An untouched file from `files` (marked touched), or undefined after a bounded number of tries. */
function pickUntouched(
  day: Day,
  files: PlannedFile[],
  accept: (file: PlannedFile) => boolean = () => true,
): PlannedFile | undefined {
  for (let tries = 0; tries < 64 && files.length > 0; tries++) {
    const file = day.random.pick(files);
    if (day.touched.has(file.path) || !accept(file)) continue;
    day.touched.add(file.path);
    return file;
  }
  return undefined;
}

/** At least 0.5 % of the files and of the bytes are deleted. */
function planDeletes(day: Day): void {
  while (day.bytes.deleted < day.total * 0.005 || day.m.deletes.length < day.plan.files.length * 0.005) {
    const file = pickUntouched(day, day.candidates, (f) => f.content.sizeBytes <= day.total * 0.002);
    if (!file) return;
    day.m.deletes.push(file.path);
    day.bytes.deleted += file.content.sizeBytes;
  }
}

/** Rewritten in place: database pages in the disk image (1 %), then ranges of text files (0.5 %). */
function planOverwrites(day: Day): void {
  const image = day.plan.files.find((f) => f.nature === 'image' && f.role === 'large');
  for (let i = 0; image && image.content.sizeBytes > PAGE_BYTES && day.bytes.overwritten < day.total * 0.01; i++) {
    const offset = day.random.int(0, Math.floor(image.content.sizeBytes / PAGE_BYTES)) * PAGE_BYTES;
    day.m.overwrites.push({
      path: image.path,
      offset,
      content: { kind: 'random', seed: `page:${i}`, sizeBytes: PAGE_BYTES },
    });
    day.bytes.overwritten += PAGE_BYTES;
  }
  // An edited document is usually rewritten in large part, not a byte here and there.
  const texts = day.candidates.filter(
    (f) => f.nature !== 'binary' && f.nature !== 'image' && f.content.sizeBytes >= 2048,
  );
  while (day.bytes.overwritten < day.total * 0.015) {
    const file = pickUntouched(day, texts);
    if (!file) return;
    const size = file.content.sizeBytes;
    const length = Math.min(size, Math.round(size * (0.2 + 0.8 * day.random.float())));
    const offset = day.random.int(0, size - length + 1);
    day.m.overwrites.push({
      path: file.path,
      offset,
      content: { kind: 'text', style: 'prose', seed: `edit:${file.path}`, sizeBytes: length },
    });
    day.bytes.overwritten += length;
  }
}

/** Log files grow (1.5 %). */
function planAppends(day: Day): void {
  const logs = day.candidates.filter((f) => f.nature === 'log');
  while (day.bytes.appended < day.total * 0.015) {
    const file = pickUntouched(day, logs);
    if (!file) return;
    const sizeBytes = Math.round(day.random.logUniform(4 << 10, Math.max(8 << 10, day.total * 0.002)));
    day.m.appends.push({
      path: file.path,
      content: { kind: 'text', style: 'log', seed: `append:${file.path}`, sizeBytes },
    });
    day.bytes.appended += sizeBytes;
  }
}

/** An upload folder of photos and exports (1 %), then new source files among the old up to 5 % in all. */
function planCreates(day: Day): void {
  const uploads = 'home/alice/uploads-2024-05-18';
  day.m.newDirs.push(uploads);
  for (let i = 0; day.bytes.created < day.total * 0.01; i++) {
    const sizeBytes = Math.round(day.random.logUniform(16 << 10, Math.max(32 << 10, day.total * 0.002)));
    const photo = day.random.chance(0.5);
    const content: Content = photo
      ? { kind: 'random', seed: `upload:${i}`, sizeBytes }
      : { kind: 'text', style: 'csv', seed: `upload:${i}`, sizeBytes };
    day.m.creates.push({
      path: `${uploads}/${photo ? `IMG_${1000 + i}.jpg` : `export-${i}.csv`}`,
      content,
      mode: 0o644,
    });
    day.bytes.created += sizeBytes;
  }
  // New sources make up the rest of the 5 %, whatever the other steps fell short by.
  const sources = day.candidates.filter((f) => f.nature === 'source');
  for (let i = 0; changed(day) < day.total * 0.05 && sources.length > 0; i++) {
    const neighbour = day.random.pick(sources).path;
    const sizeBytes = Math.max(1, Math.round(day.random.logNormal(2500, 1)));
    day.m.creates.push({
      path: `${neighbour.slice(0, neighbour.lastIndexOf('/'))}/new_${i}.ts`,
      content: { kind: 'text', style: 'source', seed: `new:${i}`, sizeBytes },
      mode: 0o644,
    });
    day.bytes.created += sizeBytes;
  }
}

export function planMutation(plan: TreePlan): Mutation {
  const m: Mutation = { deletes: [], overwrites: [], appends: [], creates: [], newDirs: [], summary: undefined! };
  const day: Day = {
    random: createRandom(`mutation:${plan.seed}:${plan.sizeBytes}`),
    plan,
    total: plan.summary.totalBytes,
    candidates: plan.files.filter((f) => f.role !== 'large'),
    touched: new Set(),
    m,
    bytes: { deleted: 0, overwritten: 0, appended: 0, created: 0 },
  };
  planDeletes(day);
  planOverwrites(day);
  planAppends(day);
  planCreates(day);
  m.summary = {
    filesDeleted: m.deletes.length,
    bytesDeleted: day.bytes.deleted,
    filesOverwritten: new Set(m.overwrites.map((o) => o.path)).size,
    bytesOverwritten: day.bytes.overwritten,
    filesAppended: m.appends.length,
    bytesAppended: day.bytes.appended,
    filesCreated: m.creates.length,
    bytesCreated: day.bytes.created,
    changedShare: changed(day) / day.total,
  };
  return m;
}

export async function applyMutation(mutation: Mutation, root: string): Promise<void> {
  for (const path of mutation.deletes) await unlink(join(root, path));
  for (const dir of mutation.newDirs) await mkdir(join(root, dir), { recursive: true });
  for (const { path, offset, content } of mutation.overwrites)
    await overwriteContent(join(root, path), offset, content);
  await forEachLimited(mutation.appends, 4, ({ path, content }) => writeContent(join(root, path), content, 0o644, 'a'));
  await forEachLimited(mutation.creates, 8, ({ path, content, mode }) =>
    writeContent(join(root, path), content, mode, 'w'),
  );
}
