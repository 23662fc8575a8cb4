// The shape of the benchmark tree, decided before a byte is written: a server-like mix of many small
// text and source files, medium logs, data and media, a few large dumps and images, ~20 %
// incompressible bytes, exact and near duplicates, nested directories; ~50k files per GiB.
import { incompressibleBytes, type Content, type Edit } from './content.ts';
import { createRandom, type Random } from './random.ts';
import type { TextStyle } from './text.ts';

export type Role = 'small' | 'medium' | 'large';

export interface PlannedFile {
  /** Relative POSIX path below the tree root. */
  path: string;
  content: Content;
  mode: number;
  role: Role;
  /** Text style or 'binary': what a day of changes may do to it. */
  nature: TextStyle | 'binary' | 'image';
}

export interface PlannedLink {
  path: string;
  target: string;
}

export interface TreeSummary {
  files: number;
  dirs: number;
  symlinks: number;
  totalBytes: number;
  incompressibleBytes: number;
  exactDuplicateFiles: number;
  nearDuplicateFiles: number;
  largeFiles: number;
  mediumFiles: number;
  smallFiles: number;
}

export interface TreePlan {
  seed: string;
  sizeBytes: number;
  dirs: string[];
  files: PlannedFile[];
  links: PlannedLink[];
  summary: TreeSummary;
}

const GIB = 1024 ** 3;
const FILES_PER_GIB = 50_000;
const FILES_PER_DIR = 3;
const SMALL_MAX_BYTES = 64 << 10;

const EXTENSIONS: Record<TextStyle | 'binary', string[]> = {
  source: ['ts', 'js', 'py', 'c', 'h', 'go', 'rs', 'java', 'sh', 'rb', 'php', 'css'],
  prose: ['md', 'txt', 'html', 'rst'],
  log: ['log'],
  csv: ['csv', 'tsv'],
  sql: ['sql'],
  config: ['conf', 'ini', 'yaml', 'toml', 'service'],
  json: ['json'],
  binary: ['png', 'jpg', 'gz', 'zip', 'pdf', 'woff2', 'so'],
};

type Area = 'etc' | 'home' | 'srv' | 'opt' | 'log';

interface DirSet {
  add(area: Area): string;
  pick(area: Area): string;
  all(): string[];
}

/** Directories grown at random below each area's roots, so depth and fan-out vary like real trees. */
function createDirSet(random: Random): DirSet {
  const roots: Record<Area, string[]> = {
    etc: ['etc'],
    home: ['home/alice', 'home/bob', 'home/carol', 'home/dave'],
    srv: ['srv/www/shop', 'srv/www/blog'],
    opt: ['opt/app/current', 'opt/tools'],
    log: ['var/log', 'var/log/app', 'var/log/nginx'],
  };
  const byArea = new Map<Area, string[]>(Object.entries(roots).map(([area, dirs]) => [area as Area, [...dirs]]));
  let counter = 0;
  return {
    add(area) {
      const dirs = byArea.get(area)!;
      // Prefer recent directories as parents: it makes deep chains as well as wide ones.
      const parent = dirs[Math.floor((1 - random.float() ** 2) * dirs.length)];
      const name = `${random.pick(['src', 'lib', 'docs', 'data', 'test', 'assets', 'build', 'config', 'util', 'api', 'img', 'v'])}${(counter++).toString(36)}`;
      const dir = `${parent}/${name}`;
      dirs.push(dir);
      return dir;
    },
    pick: (area) => random.pick(byArea.get(area)!),
    all: () => [...byArea.values()].flat(),
  };
}

interface Budget {
  random: Random;
  dirs: DirSet;
  files: PlannedFile[];
  seed: string;
  nextName: () => string;
}

function text(style: TextStyle, seed: string, sizeBytes: number): Content {
  return { kind: 'text', style, seed, sizeBytes };
}

function addFile(
  b: Budget,
  area: Area,
  nature: PlannedFile['nature'],
  role: Role,
  content: Content,
  mode = 0o644,
): PlannedFile {
  const extension = b.random.pick(EXTENSIONS[nature === 'image' ? 'binary' : nature]);
  const file: PlannedFile = { path: `${b.dirs.pick(area)}/${b.nextName()}.${extension}`, content, mode, role, nature };
  b.files.push(file);
  return file;
}

function planLarge(b: Budget, sizeBytes: number): void {
  const share = (fraction: number) => Math.max(1 << 20, Math.round(sizeBytes * fraction));
  const dump = text('sql', `${b.seed}:dump`, share(0.08));
  b.files.push({ path: 'backups/db/shop-2024-05-17.sql', content: dump, mode: 0o600, role: 'large', nature: 'sql' });
  // Yesterday's dump: the same database with scattered rows changed, a classic near duplicate.
  b.files.push({
    path: 'backups/db/shop-2024-05-16.sql',
    content: nearDuplicate(b.random, dump, 40),
    mode: 0o600,
    role: 'large',
    nature: 'sql',
  });
  b.files.push({
    path: 'var/lib/vm/disk0.img',
    content: { kind: 'image', seed: `${b.seed}:vm`, sizeBytes: share(0.08) },
    mode: 0o600,
    role: 'large',
    nature: 'image',
  });
  b.files.push({
    path: 'backups/home-2024-05.tar.gz',
    content: { kind: 'random', seed: `${b.seed}:archive`, sizeBytes: share(0.06) },
    mode: 0o600,
    role: 'large',
    nature: 'binary',
  });
}

/** A copy of `base` with `count` small edits (replacements, insertions, deletions) spread through it. */
export function nearDuplicate(random: Random, base: Content, count: number): Content {
  const edits: Edit[] = [];
  const step = Math.max(1, Math.floor(base.sizeBytes / count));
  let end = 0;
  for (let i = 0; i < count && base.sizeBytes > 0; i++) {
    const offset = Math.min(base.sizeBytes - 1, i * step + random.int(0, step));
    const deleteBytes = Math.min(base.sizeBytes - offset, random.chance(0.3) ? 0 : random.int(1, 200));
    const insertBytes = random.chance(0.3) ? 0 : random.int(1, 200);
    // Edits never overlap: one that starts inside the previous one's deleted range is dropped.
    if (edits.length > 0 && offset < end) continue;
    edits.push({ offset, deleteBytes, insertBytes, seed: `${random.uint32()}` });
    end = offset + deleteBytes;
  }
  const sizeBytes = base.sizeBytes + edits.reduce((sum, edit) => sum + edit.insertBytes - edit.deleteBytes, 0);
  return { kind: 'edited', base, edits, sizeBytes };
}

const MEDIUM_MIX: { nature: PlannedFile['nature']; area: Area; weight: number }[] = [
  { nature: 'log', area: 'log', weight: 0.37 },
  { nature: 'csv', area: 'home', weight: 0.12 },
  { nature: 'json', area: 'srv', weight: 0.08 },
  { nature: 'sql', area: 'home', weight: 0.06 },
  { nature: 'binary', area: 'home', weight: 0.09 },
  { nature: 'binary', area: 'srv', weight: 0.08 },
  { nature: 'image', area: 'opt', weight: 0.2 },
];

function mediumContent(_random: Random, nature: PlannedFile['nature'], seed: string, sizeBytes: number): Content {
  if (nature === 'binary') return { kind: 'random', seed, sizeBytes };
  if (nature === 'image') return { kind: 'image', seed, sizeBytes };
  return text(nature, seed, sizeBytes);
}

function planMedium(b: Budget, budgetBytes: number, maxBytes: number): void {
  const total = MEDIUM_MIX.reduce((sum, m) => sum + m.weight, 0);
  for (const mix of MEDIUM_MIX) {
    let left = (budgetBytes * mix.weight) / total;
    while (left > SMALL_MAX_BYTES) {
      const sizeBytes = Math.min(Math.round(left), Math.round(b.random.logUniform(SMALL_MAX_BYTES, maxBytes)));
      const content = mediumContent(b.random, mix.nature, `${b.seed}:m${b.files.length}`, sizeBytes);
      const file = addFile(b, mix.area, mix.nature, 'medium', content);
      left -= sizeBytes;
      // The same photo or attachment saved in two places: an exact duplicate.
      if (mix.nature === 'binary' && b.random.chance(0.08) && left > sizeBytes) {
        addFile(b, mix.area === 'home' ? 'srv' : 'home', 'binary', 'medium', file.content);
        left -= sizeBytes;
      }
    }
  }
}

const SMALL_MIX: { nature: PlannedFile['nature']; area: Area; weight: number }[] = [
  { nature: 'source', area: 'home', weight: 0.3 },
  { nature: 'source', area: 'opt', weight: 0.15 },
  { nature: 'source', area: 'srv', weight: 0.1 },
  { nature: 'prose', area: 'home', weight: 0.12 },
  { nature: 'prose', area: 'srv', weight: 0.04 },
  { nature: 'config', area: 'etc', weight: 0.06 },
  { nature: 'config', area: 'opt', weight: 0.04 },
  { nature: 'json', area: 'srv', weight: 0.06 },
  { nature: 'json', area: 'home', weight: 0.03 },
  { nature: 'binary', area: 'srv', weight: 0.05 },
  { nature: 'binary', area: 'opt', weight: 0.05 },
];

function pickWeighted<T extends { weight: number }>(random: Random, items: T[]): T {
  let roll = random.float() * items.reduce((sum, item) => sum + item.weight, 0);
  for (const item of items) if ((roll -= item.weight) < 0) return item;
  return items[items.length - 1];
}

function planSmall(b: Budget, count: number, budgetBytes: number): void {
  const sizes = Array.from({ length: count }, () =>
    b.random.chance(0.015) ? 0 : Math.max(1, b.random.logNormal(2500, 1.1)),
  );
  const scale =
    budgetBytes /
    Math.max(
      1,
      sizes.reduce((sum, size) => sum + size, 0),
    );
  const first = b.files.length;
  for (const size of sizes) {
    const sizeBytes = Math.min(SMALL_MAX_BYTES, Math.round(size * scale));
    const roll = b.random.float();
    const own = b.files.length - first;
    if (own > 20 && roll < 0.04) {
      // A vendored library or a copied config: an exact duplicate somewhere else.
      const original = b.files[first + b.random.int(0, own)];
      addFile(
        b,
        b.random.pick(['home', 'opt', 'srv'] as const),
        original.nature,
        'small',
        original.content,
        original.mode,
      );
    } else if (own > 20 && roll < 0.07) {
      const original = b.files[first + b.random.int(0, own)];
      addFile(
        b,
        b.random.pick(['home', 'opt', 'srv'] as const),
        original.nature,
        'small',
        nearDuplicate(b.random, original.content, b.random.int(1, 4)),
        original.mode,
      );
    } else {
      const mix = pickWeighted(b.random, SMALL_MIX);
      const seed = `${b.seed}:s${b.files.length}`;
      const content: Content =
        mix.nature === 'binary' ? { kind: 'random', seed, sizeBytes } : text(mix.nature as TextStyle, seed, sizeBytes);
      const mode =
        mix.nature === 'source' && b.random.chance(0.05)
          ? 0o755
          : mix.area === 'etc' && b.random.chance(0.1)
            ? 0o600
            : 0o644;
      addFile(b, mix.area, mix.nature, 'small', content, mode);
    }
  }
}

function summarize(files: PlannedFile[], dirs: string[], links: PlannedLink[]): TreeSummary {
  const seen = new Set<Content>();
  let exact = 0;
  for (const file of files) {
    if (seen.has(file.content)) exact++;
    seen.add(file.content);
  }
  return {
    files: files.length,
    dirs: dirs.length,
    symlinks: links.length,
    totalBytes: files.reduce((sum, f) => sum + f.content.sizeBytes, 0),
    incompressibleBytes: files.reduce((sum, f) => sum + incompressibleBytes(f.content), 0),
    exactDuplicateFiles: exact,
    nearDuplicateFiles: files.filter((f) => f.content.kind === 'edited').length,
    largeFiles: files.filter((f) => f.role === 'large').length,
    mediumFiles: files.filter((f) => f.role === 'medium').length,
    smallFiles: files.filter((f) => f.role === 'small').length,
  };
}

/** Every ancestor directory of the files and links, parents before children. */
function allDirs(dirSet: DirSet, paths: string[]): string[] {
  const dirs = new Set<string>();
  for (const path of [...dirSet.all().map((dir) => `${dir}/x`), ...paths]) {
    for (let slash = path.indexOf('/'); slash > 0; slash = path.indexOf('/', slash + 1)) dirs.add(path.slice(0, slash));
  }
  return [...dirs].sort();
}

export function planTree(seed: string, sizeBytes: number): TreePlan {
  const random = createRandom(`tree:${seed}:${sizeBytes}`);
  const dirs = createDirSet(random);
  let names = 0;
  const budget: Budget = {
    random,
    dirs,
    files: [],
    seed,
    nextName: () =>
      `${random.pick(['index', 'main', 'util', 'readme', 'report', 'data', 'test', 'page', 'item', 'core'])}_${(names++).toString(36)}`,
  };
  const fileCount = Math.max(200, Math.round((FILES_PER_GIB * sizeBytes) / GIB));
  const areas: Area[] = ['home', 'home', 'home', 'srv', 'opt', 'opt', 'etc', 'log'];
  for (let i = 0; i < fileCount / FILES_PER_DIR; i++) dirs.add(random.pick(areas));

  planLarge(budget, sizeBytes);
  planMedium(budget, sizeBytes * 0.4, Math.max(SMALL_MAX_BYTES * 2, Math.min(8 << 20, sizeBytes / 32)));
  const usedBytes = budget.files.reduce((sum, f) => sum + f.content.sizeBytes, 0);
  planSmall(budget, Math.max(10, fileCount - budget.files.length), Math.max(0, sizeBytes - usedBytes));

  const links: PlannedLink[] = [];
  for (let i = 0; i < Math.ceil(fileCount / 300); i++) {
    const file = random.pick(budget.files);
    const name = file.path.slice(file.path.lastIndexOf('/') + 1);
    links.push({
      path: `${file.path.slice(0, file.path.lastIndexOf('/'))}/current-${i}`,
      target: random.chance(0.9) ? name : `../missing-${i}`,
    });
  }
  const dirList = allDirs(dirs, [...budget.files.map((f) => f.path), ...links.map((l) => l.path)]);
  return {
    seed,
    sizeBytes,
    dirs: dirList,
    files: budget.files,
    links,
    summary: summarize(budget.files, dirList, links),
  };
}
