// Command-line options of `npm run bench` and their help text.
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

export interface BenchOptions {
  sizeBytes: number;
  sizeLabel: string;
  reps: number;
  seed: string;
  workDir: string;
  out: string;
  fresh: boolean;
  keep: boolean;
  restic: boolean;
}

export const HELP = `Usage: npm run bench -- [options]      (or: node bench/run.ts [options])

Benchmarks Amber against restic on the same generated tree, alternating the tools, and prints
median times, speed-ups (restic time / Amber time; >1 means Amber is faster), peak RSS and
repository sizes. Raw samples and medians are written as JSON.

Phases, each repetition in fresh repositories: init, open (list snapshots: the per-command cost of
opening a repository, mostly the scrypt passphrase KDF), initial backup, no-change backup, backup
after a deterministic one-day mutation (~5 % of bytes), full restore (checked byte for byte against
the source), verify --read-data (restic: check --read-data); then each tool copies its repository's
3 snapshots into a fresh repository of its own on the same disk: init --from-repo (restic: with
--copy-chunker-params), the copy (amber copy / restic copy, checked to have copied all 3), and the
same copy again with nothing new. The size table adds the copy's du -sb.

Options:
  --size SIZE    size of the generated tree, e.g. 128MiB, 256MiB, 1GiB, 4GiB (default 1GiB);
                 about 50k files per GiB
  --reps N       repetitions (default 5)
  --seed S       seed of the tree and the mutation (default "amber")
  --work DIR     working directory: cached trees, repositories, restores
                 (default ${join(tmpdir(), 'amber-bench')}); both repositories live on its disk
  --out FILE     JSON results (default bench/results/<timestamp>.json)
  --fresh        regenerate the tree even if a cached copy exists
  --keep         keep the last repetition's repositories and live tree for inspection
  --no-restic    benchmark Amber alone
  -h, --help     show this help

Examples:
  npm run bench -- --size 128MiB --reps 1     # smoke run, about a minute
  npm run bench                               # 1 GiB, 5 repetitions, ~20-30 min on 2 cores
  npm run bench -- --size 4GiB --reps 5       # the long run`;

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tib: 1024 ** 4,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
};

export function parseSize(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  const unit = match ? UNITS[match[2].toLowerCase()] : undefined;
  if (!match || unit === undefined) throw new Error(`--size: cannot read "${text}" (examples: 128MiB, 1GiB, 4GiB)`);
  const bytes = Math.round(Number(match[1]) * unit);
  if (bytes < 8 * 1024 ** 2) throw new Error(`--size: ${text} is too small; use at least 8MiB`);
  return bytes;
}

export function parseOptions(argv: string[]): BenchOptions | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      size: { type: 'string', default: '1GiB' },
      reps: { type: 'string', default: '5' },
      seed: { type: 'string', default: 'amber' },
      work: { type: 'string', default: join(tmpdir(), 'amber-bench') },
      out: { type: 'string' },
      fresh: { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      'no-restic': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return 'help';
  const reps = Number(values.reps);
  if (!Number.isInteger(reps) || reps < 1)
    throw new Error(`--reps: expected a positive whole number, got "${values.reps}"`);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const out = values.out ?? fileURLToPath(new URL(`../results/${stamp}.json`, import.meta.url));
  return {
    sizeBytes: parseSize(values.size),
    sizeLabel: values.size,
    reps,
    seed: values.seed,
    workDir: values.work,
    out,
    fresh: values.fresh,
    keep: values.keep,
    restic: !values['no-restic'],
  };
}
