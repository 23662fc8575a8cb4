// `npm run bench`: Amber against restic on the same generated tree, same disk, same run, alternating
// which tool goes first; medians, speed-ups, peak RSS and repository sizes, raw samples as JSON.
// Each repetition backs up, restores and verifies, then copies each tool's snapshots into a fresh
// repository of the same tool (init --from-repo, copy, and a copy with nothing new).
// Amber is driven only through its CLI (bin/amber.js), never by importing src/.
import { spawnSync } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { cpus, hostname, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { applyMutation, planMutation, type Mutation } from './lib/mutation.ts';
import { hasGnuTime, runChecked, type Measured } from './lib/measure.ts';
import { HELP, parseOptions, type BenchOptions } from './lib/options.ts';
import {
  emptySamples,
  emptySizes,
  formatBytes,
  PHASE_LABELS,
  phaseMedians,
  renderTables,
  sizeMedians,
  type Phase,
  type Samples,
  type SizeSamples,
} from './lib/report.ts';
import {
  amberCompressionNote,
  amberVersion,
  createAmber,
  createRestic,
  findRestic,
  type BackupCounts,
  type CopyCounts,
  type CopyTarget,
  type ResticAvailability,
  type Tool,
} from './lib/tools.ts';
import { diffManifests, diskUsageBytes, treeManifest } from './lib/tree-compare.ts';
import { planTree, type TreePlan } from './lib/tree-plan.ts';
import { ensureTree, type CachedTree } from './lib/tree-write.ts';
import { removeTree } from './lib/remove-tree.ts';

const log = (line: string) => process.stderr.write(`${line}\n`);

const RESTIC_COMPRESSION =
  'restic: --compression auto on a version 2 repository (zstd "default" speed of klauspost/compress, about zstd level 3)';
const NOTES = [
  'Both repositories are on the same disk as the tree; restic fsyncs its files and Amber fsyncs every object.',
  'Every command opens the repository with its passphrase KDF (Amber: default scrypt, AMBER_KDF_LOG_N unset; restic: its calibrated scrypt); the "open" row is that fixed cost, and it is inside every other row.',
  'Page cache is warm: the tree is freshly copied before each repetition and nothing is dropped; `sync` runs (untimed) before every measured command.',
  'The 5 % change is applied in place to the live copy, so unchanged files keep inode, size, mtime and ctime; both tools find their parent snapshot by host and path.',
  'Peak RSS is the largest "Maximum resident set size" from /usr/bin/time -v over all repetitions; times are medians.',
  "Restored trees are removed only when their repetition ends, so neither restore follows the deletion of the other's 50,000 files (ext4 allocates inodes slowly for a minute after many were freed).",
  "The copy rows come last in each repetition: each tool copies its own repository's 3 snapshots into a fresh repository of its own on the same disk (Amber: init --from-repo, copy; restic: init --from-repo --copy-chunker-params, copy), with a cache directory of its own, empty at first as at a copy site; the copy's init is its own row, then the same copy runs again with nothing new. Amber re-seals each blob without recompressing; restic decompresses and compresses it again (--compression auto).",
];

interface RunContext {
  options: BenchOptions;
  treeRoot: string;
  runDir: string;
  mutation: Mutation;
  withRestic: boolean;
  samples: Samples;
  sizes: SizeSamples;
}

/** The snapshots each tool made in a repetition (initial, no-change, incremental) and then copies. */
const SNAPSHOTS = 3;

const countsText = (counts: BackupCounts | undefined, copyCounts: CopyCounts | undefined) =>
  (counts ? ` [${counts.filesNew} new, ${counts.filesChanged} changed, ${counts.filesUnchanged} unchanged]` : '') +
  (copyCounts ? ` [${copyCounts.snapshotsCopied} copied, ${copyCounts.snapshotsSkipped} there already]` : '');

/** Runs one phase for every tool in `order`, recording each tool's sample. */
async function phase(
  ctx: RunContext,
  rep: number,
  order: Tool[],
  name: Phase,
  action: (tool: Tool) => Promise<Measured & { counts?: BackupCounts; copyCounts?: CopyCounts }>,
): Promise<void> {
  const parts: string[] = [];
  for (const [index, tool] of order.entries()) {
    await runChecked('sync', []);
    const result = await action(tool);
    ctx.samples[name][tool.name].push({
      rep,
      order: index + 1,
      seconds: result.seconds,
      peakRssBytes: result.peakRssBytes,
      counts: result.counts,
      copyCounts: result.copyCounts,
    });
    parts.push(
      `${tool.name} ${result.seconds.toFixed(2)} s, ${formatBytes(result.peakRssBytes)}${countsText(result.counts, result.copyCounts)}`,
    );
  }
  log(`  ${PHASE_LABELS[name].padEnd(24)} ${parts.join('; ')}`);
}

async function recordSizes(
  ctx: RunContext,
  tools: Tool[],
  point: keyof SizeSamples,
  repoOf: (tool: Tool) => string = (tool) => tool.repo,
): Promise<void> {
  for (const tool of tools) ctx.sizes[point][tool.name].push(await diskUsageBytes(repoOf(tool)));
}

/**
 * Restores the latest snapshot into an empty directory and fails loudly unless it equals the source.
 * The restored tree stays until the repetition ends: deleting 50,000 files right before the other
 * tool's restore slows ext4's inode allocation for about a minute (it skips inodes freed in the last
 * 60 s), which made whichever tool restored second 40-80 % slower.
 */
async function restoreAndCheck(
  ctx: RunContext,
  tool: Tool,
  live: string,
  expected: Awaited<ReturnType<typeof treeManifest>>,
): Promise<Measured> {
  const target = join(ctx.runDir, `restore-${tool.name}`);
  await rm(target, { recursive: true, force: true });
  await mkdir(target);
  const result = await tool.restore(target);
  const differences = diffManifests(expected, await treeManifest(join(target, live)));
  if (differences.length > 0) {
    throw new Error(
      `${tool.name} restored a tree that differs from the source (kept in ${target}):\n  ${differences.join('\n  ')}`,
    );
  }
  return result;
}

/** Runs a copy and fails loudly unless it copied, and found there already, what it should have. */
async function copyAndCheck(
  tool: Tool,
  target: CopyTarget,
  expected: CopyCounts,
): Promise<Measured & { copyCounts?: CopyCounts }> {
  const result = await target.copy();
  const got = result.copyCounts;
  if (got?.snapshotsCopied !== expected.snapshotsCopied || got.snapshotsSkipped !== expected.snapshotsSkipped) {
    throw new Error(
      `${tool.name} copy into ${target.repo}: expected ${expected.snapshotsCopied} snapshots copied and ${expected.snapshotsSkipped} there already, ` +
        `got ${got ? `${got.snapshotsCopied} and ${got.snapshotsSkipped}` : 'no count'}:\n${result.stdout.slice(-2000)}${result.stderr.slice(-2000)}`,
    );
  }
  return result;
}

async function runRepetition(ctx: RunContext, rep: number): Promise<void> {
  await removeTree(ctx.runDir);
  await mkdir(ctx.runDir, { recursive: true });
  const live = join(ctx.runDir, 'live');
  await runChecked('cp', ['-a', '--reflink=auto', ctx.treeRoot, live]);
  const tools = [createAmber(join(ctx.runDir, 'amber-repo'), join(ctx.runDir, 'amber-cache'))];
  if (ctx.withRestic) tools.push(createRestic(join(ctx.runDir, 'restic-repo'), join(ctx.runDir, 'restic-cache')));
  const order = rep % 2 === 1 ? tools : [...tools].reverse();
  log(`repetition ${rep}/${ctx.options.reps} (${order.map((t) => t.name).join(' first, then ')})`);

  await phase(ctx, rep, order, 'init', (tool) => tool.init());
  await phase(ctx, rep, order, 'open', (tool) => tool.open());
  await phase(ctx, rep, order, 'initial', (tool) => tool.backup(live));
  await recordSizes(ctx, tools, 'afterInitial');
  await phase(ctx, rep, order, 'no-change', (tool) => tool.backup(live));
  await applyMutation(ctx.mutation, live);
  await phase(ctx, rep, order, 'incremental', (tool) => tool.backup(live));
  await recordSizes(ctx, tools, 'afterIncremental');
  const expected = await treeManifest(live);
  await phase(ctx, rep, order, 'restore', (tool) => restoreAndCheck(ctx, tool, live, expected));
  await phase(ctx, rep, order, 'verify', (tool) => tool.verify());

  const copies = new Map(
    tools.map((tool) => [
      tool.name,
      tool.copyTarget(join(ctx.runDir, `${tool.name}-copy`), join(ctx.runDir, `${tool.name}-copy-cache`)),
    ]),
  );
  const copyOf = (tool: Tool) => copies.get(tool.name)!;
  await phase(ctx, rep, order, 'copy-init', (tool) => copyOf(tool).init());
  await phase(ctx, rep, order, 'copy', (tool) =>
    copyAndCheck(tool, copyOf(tool), { snapshotsCopied: SNAPSHOTS, snapshotsSkipped: 0 }),
  );
  await recordSizes(ctx, tools, 'copy', (tool) => copyOf(tool).repo);
  await phase(ctx, rep, order, 'copy-no-change', (tool) =>
    copyAndCheck(tool, copyOf(tool), { snapshotsCopied: 0, snapshotsSkipped: SNAPSHOTS }),
  );
  if (!ctx.options.keep || rep < ctx.options.reps) await removeTree(ctx.runDir);
}

/** The source revision being measured: others change src/ while benchmarks run. */
function amberRevision(): string {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const head = spawnSync('git', ['-C', root, 'rev-parse', '--short=12', 'HEAD'], { encoding: 'utf8' });
  if (head.status !== 0) return 'unknown';
  const dirty = spawnSync('git', ['-C', root, 'status', '--porcelain', '--', 'src', 'bin', 'package.json'], {
    encoding: 'utf8',
  });
  return `${head.stdout.trim()}${dirty.stdout.trim() ? ' with uncommitted changes in src/' : ''}`;
}

function describePlan(plan: TreePlan, mutation: Mutation): void {
  const s = plan.summary;
  log(
    `tree: ${s.files} files (${s.smallFiles} small, ${s.mediumFiles} medium, ${s.largeFiles} large), ${s.dirs} dirs, ${s.symlinks} symlinks, ` +
      `${formatBytes(s.totalBytes)}, ${((100 * s.incompressibleBytes) / s.totalBytes).toFixed(1)} % incompressible, ` +
      `${s.exactDuplicateFiles} exact and ${s.nearDuplicateFiles} near duplicates`,
  );
  const m = mutation.summary;
  log(
    `one day of changes: ${(100 * m.changedShare).toFixed(1)} % of bytes; ${m.filesOverwritten} files rewritten in place, ` +
      `${m.filesAppended} appended, ${m.filesCreated} created, ${m.filesDeleted} deleted`,
  );
}

interface Finished {
  options: BenchOptions;
  plan: TreePlan;
  tree: CachedTree;
  mutation: Mutation;
  restic: ResticAvailability;
  ctx: RunContext;
  startedAt: string;
}

async function report({ options, plan, tree, mutation, restic, ctx, startedAt }: Finished): Promise<void> {
  const phases = phaseMedians(ctx.samples);
  const sizes = sizeMedians(ctx.sizes);
  const compression = [amberCompressionNote(), restic.available ? RESTIC_COMPRESSION : 'restic: not run'];
  const amber = `${amberVersion()} (git ${amberRevision()})`;
  const s = plan.summary;
  console.log(
    `\n${formatBytes(s.totalBytes)} tree, ${s.files} files, ${s.dirs} dirs; ${options.reps} repetition${options.reps === 1 ? '' : 's'}; ${cpus().length} cores`,
  );
  console.log(
    `Amber ${amber} on Node ${process.version}; ${restic.available ? restic.version : `restic not available (${restic.reason})`}`,
  );
  console.log(`\n${renderTables(phases, sizes)}\n`);
  console.log('speed-up = restic time / Amber time (>1: Amber faster); size ratio = Amber / restic.');
  for (const line of [...compression, ...NOTES]) console.log(`- ${line}`);

  const results = {
    meta: {
      startedAt,
      finishedAt: new Date().toISOString(),
      host: hostname(),
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model,
      memoryBytes: totalmem(),
      node: process.version,
      amber,
      restic: restic.available ? restic.version : null,
      resticSkipped: restic.available ? null : restic.reason,
      options: {
        size: options.sizeLabel,
        sizeBytes: options.sizeBytes,
        reps: options.reps,
        seed: options.seed,
        workDir: options.workDir,
      },
      compression,
      notes: NOTES,
      ratios: 'speedup = restic seconds / Amber seconds; size ratio = Amber bytes / restic bytes',
    },
    tree: { ...plan.summary, cachedAt: tree.root, generatedSeconds: tree.generated ? tree.seconds : null },
    mutation: mutation.summary,
    samples: ctx.samples,
    repositoryBytes: ctx.sizes,
    medians: { phases, repositoryBytes: sizes },
  };
  await mkdir(dirname(options.out), { recursive: true });
  await writeFile(options.out, `${JSON.stringify(results, null, 2)}\n`);
  console.log(`\nraw samples and medians: ${options.out}`);
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  if (options === 'help') {
    console.log(HELP);
    return;
  }
  const startedAt = new Date().toISOString();
  if (!hasGnuTime()) log('warning: /usr/bin/time is missing (apt-get install time); peak RSS is reported as n/a');
  const restic: ResticAvailability = options.restic
    ? await findRestic(log)
    : { available: false, reason: '--no-restic given' };
  if (!restic.available) console.log(`restic not available: ${restic.reason}; reporting Amber only`);

  const plan = planTree(options.seed, options.sizeBytes);
  const mutation = planMutation(plan);
  describePlan(plan, mutation);
  await mkdir(options.workDir, { recursive: true });
  const tree = await ensureTree(plan, options.workDir, options.fresh);
  log(
    tree.generated
      ? `generated ${tree.root} in ${tree.seconds.toFixed(1)} s`
      : `reusing cached tree ${tree.root} (--fresh regenerates it)`,
  );

  const ctx: RunContext = {
    options,
    treeRoot: tree.root,
    runDir: join(options.workDir, 'run'),
    mutation,
    withRestic: restic.available,
    samples: emptySamples(),
    sizes: emptySizes(),
  };
  try {
    for (let rep = 1; rep <= options.reps; rep++) await runRepetition(ctx, rep);
  } catch (error) {
    log(`the working files are left in ${ctx.runDir} for inspection`);
    throw error;
  }
  await report({ options, plan, tree, mutation, restic, ctx, startedAt });
}

main().catch((error: unknown) => {
  console.error(`bench failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
