// Fidelity (issue #17), Amber against restic: build the fidelity fixture, back it up and restore it
// with each tool, and print one markdown row per kind of thing a restore must keep, with "kept" or
// what differed. Run by hand (as root, for owners, devices and the privileged xattrs):
//
//   node_modules/.bin/node bench/fidelity-vs-restic.ts [--tools restic,amber] [--no-big-sparse] [--keep] [--dir DIR]
//
// Both tools restore below the target under the source's absolute path, so the restored tree is
// TARGET/SOURCE. The comparison is src/testing/fidelity/snapshot.ts with no time tolerance; atime of
// directories and symlinks is not compared (reading them moves it). Extended attributes are set and
// read through Python's os module (src/testing/fidelity/python-xattrs.ts), independent of both tools.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { liftAttributes } from '../src/testing/repo-fixture.ts';
import {
  buildFidelityTree,
  type FixtureInfo,
  type FixtureKind,
  removeFidelityTree,
} from '../src/testing/fidelity/fixture.ts';
import {
  pythonSetXattr,
  pythonXattrReader,
  whyPythonXattrsUnavailable,
} from '../src/testing/fidelity/python-xattrs.ts';
import {
  type Difference,
  diffTrees,
  type EntryRecord,
  type RecordField,
  showKey,
  snapshotOfTree,
} from '../src/testing/fidelity/snapshot.ts';

const AMBER_BIN = fileURLToPath(new URL('../bin/amber.js', import.meta.url));
const RESTIC_BIN = '/usr/bin/restic';
const PASSWORD = 'fidelity bench passphrase';

type ToolName = 'restic' | 'amber';

interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

function run(command: string, args: string[], env: Record<string, string>): RunResult {
  const started = performance.now();
  const result = spawnSync(command, args, {
    encoding: 'utf8',
    maxBuffer: 512 * 1024 * 1024,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', ...env },
  });
  return {
    status: result.error ? -1 : result.status,
    stdout: String(result.stdout ?? ''),
    stderr: String(result.stderr ?? result.error?.message ?? ''),
    ms: Math.round(performance.now() - started),
  };
}

interface ToolRun {
  tool: ToolName;
  version: string;
  /** The restored copy of the source, or why there is none. */
  restored?: string;
  failure?: string;
  /** Remarks: exit status 3, warnings on standard error. */
  notes: string[];
  timings: Record<string, number>;
}

/** init, backup, restore with one tool; a step that fails ends the run with its message. */
function backupAndRestore(tool: ToolName, work: string, source: string): ToolRun {
  const repo = join(work, `${tool}-repo`);
  const target = join(work, `${tool}-restore`);
  // The same verbs and flags for both (restic: `restic init --repo X`, `restic backup --repo X PATH`…).
  const steps: [verb: string, args: string[]][] = [
    ['init', ['init', '--repo', repo]],
    ['backup', ['backup', '--repo', repo, source]],
    ['restore', ['restore', 'latest', '--repo', repo, '--target', target]],
  ];
  const env: Record<string, string> =
    tool === 'restic'
      ? { RESTIC_PASSWORD: PASSWORD, RESTIC_CACHE_DIR: join(work, 'restic-cache') }
      : { AMBER_PASSWORD: PASSWORD, AMBER_KDF_LOG_N: '10', AMBER_CACHE_DIR: join(work, 'amber-cache') };
  const invoke = (args: string[]) =>
    tool === 'restic' ? run(RESTIC_BIN, args, env) : run(process.execPath, [AMBER_BIN, ...args], env);
  const version =
    tool === 'restic'
      ? (/restic \S+/.exec(invoke(['version']).stdout)?.[0] ?? 'restic')
      : `amber ${invoke(['--version']).stdout.trim()}`;
  const result: ToolRun = { tool, version, notes: [], timings: {} };
  for (const [verb, args] of steps) {
    const step = invoke(args);
    result.timings[verb] = step.ms;
    const warnings = step.stderr
      .split('\n')
      .filter((line) => line.trim() !== '')
      .slice(0, 5);
    if (step.status === 3 && verb === 'backup')
      result.notes.push(`${verb} exit 3 (incomplete): ${warnings.join(' / ')}`);
    else if (step.status !== 0) {
      result.failure = `${verb} failed (exit ${step.status}): ${(warnings.join(' / ') || step.stdout.slice(-300)).slice(0, 300)}`;
      return result;
    } else if (warnings.length > 0) result.notes.push(`${verb} said: ${warnings.join(' / ')}`);
  }
  result.restored = join(target, source);
  return result;
}

/** A table row: which entries and fields a kind is about, or a judgement of its own. */
interface Row {
  label: string;
  kind?: FixtureKind;
  fields?: readonly (RecordField | 'presence')[];
  /** For xattrs rows: which attribute names count. */
  xattr?: (name: string) => boolean;
  judge?: (context: Judgement) => string;
}

interface Judgement {
  info: FixtureInfo;
  expected: Map<string, EntryRecord>;
  actual: Map<string, EntryRecord>;
  differences: Difference[];
}

const isAcl = (name: string) => name.startsWith('system.posix_acl_');
const isPrivileged = (name: string) => name.startsWith('trusted.') || name.startsWith('security.');
const ENTRY_FIELDS = ['presence', 'type', 'contentSha256', 'linkTarget'] as const;

const ROWS: Row[] = [
  { label: 'names, not UTF-8', kind: 'nonUtf8Names', fields: ENTRY_FIELDS },
  { label: 'names, newline, backslash, control bytes, emoji, NFC/NFD', kind: 'oddNames', fields: ENTRY_FIELDS },
  {
    label: 'xattrs, user.* with binary values',
    kind: 'xattrs',
    fields: ['xattrs'],
    xattr: (n) => !isAcl(n) && !isPrivileged(n),
  },
  {
    label: 'xattrs, trusted.* and security.capability',
    kind: 'privilegedXattrs',
    fields: ['xattrs'],
    xattr: isPrivileged,
  },
  { label: 'ACLs, access and default', kind: 'acls', fields: ['xattrs'], xattr: isAcl },
  { label: 'devices (char 1:3, block 7:0)', kind: 'devices', fields: ['presence', 'type', 'rdev', 'mode'] },
  { label: 'FIFOs', kind: 'fifos', fields: ['presence', 'type', 'mode'] },
  { label: 'mtimes with nanoseconds (2026)', kind: 'nsTimes', fields: ['mtimeNs'] },
  { label: 'times before 1970', kind: 'pre1970Times', fields: ['mtimeNs'] },
  { label: 'times after 2038 (2100)', kind: 'y2100Times', fields: ['mtimeNs'] },
  {
    label: 'mtimes of every entry',
    judge: ({ differences }) => summarise(differences.filter((d) => d.field === 'mtimeNs')),
  },
  { label: 'directory mtimes (set after their contents)', kind: 'directoryTimes', fields: ['mtimeNs'] },
  { label: 'atime (files)', kind: 'atimes', fields: ['atimeNs'] },
  { label: 'set-uid, set-gid, sticky bits', kind: 'setIdBits', fields: ['mode'] },
  { label: 'read-only and no-access modes', kind: 'modes', fields: ['presence', 'mode', 'contentSha256'] },
  { label: 'owners (12345:23456, 65534)', kind: 'owners', fields: ['uid', 'gid'] },
  {
    label: 'symlinks (dangling, looping, non-UTF-8 target)',
    kind: 'symlinks',
    fields: ['presence', 'type', 'linkTarget'],
  },
  { label: 'hard links (one inode, three directories)', kind: 'hardLinks', fields: ['hardLinks'] },
  { label: 'sparse files, allocated KiB', kind: 'sparseFiles', judge: judgeSparse },
  {
    label: '20,000 entries in one directory',
    kind: 'largeDirectory',
    fields: ['presence', 'type', 'contentSha256', 'mode'],
  },
  { label: 'empty file and directory', kind: 'empty', fields: ['presence', 'type', 'size'] },
  {
    label: 'all file contents',
    judge: ({ differences }) => summarise(differences.filter((d) => d.field === 'contentSha256')),
  },
  {
    label: 'entries that should not be there',
    judge: ({ differences }) =>
      summarise(differences.filter((d) => d.field === 'presence' && d.expected === undefined)),
  },
];

function judgeSparse({ info, expected, actual, differences }: Judgement): string {
  const cells = info.paths.sparseFiles.map((key) => {
    const name = showKey(key).replace(/^sparse\//, '');
    const want = expected.get(key)?.allocatedBytes;
    const got = actual.get(key);
    if (!got) return `${name} missing`;
    const content = differences.some((d) => d.key === key && d.field === 'contentSha256') ? ', content differs' : '';
    const kib = (bytes: number | undefined) => (bytes === undefined ? '?' : `${Math.round(bytes / 1024)}`);
    return got.allocatedBytes === want
      ? `${name} ${kib(want)}${content}`
      : `${name} ${kib(got.allocatedBytes)} (was ${kib(want)})${content}`;
  });
  const changed = cells.some((cell) => cell.includes('was') || cell.includes('missing') || cell.includes('differs'));
  return `${changed ? '' : 'kept: '}${cells.join(', ')}`;
}

function summarise(differences: Difference[], count?: number): string {
  if (differences.length === 0) return 'kept';
  const paths = new Set(differences.map((d) => d.key));
  const share = count === undefined ? `${paths.size} entries` : `${paths.size} of ${count}`;
  const example = differences[0].message;
  return `${share} differ, e.g. ${example.length > 160 ? `${example.slice(0, 157)}…` : example}`;
}

function judge(row: Row, context: Judgement): string {
  if (row.kind && context.info.counts[row.kind] === 0) {
    const skipped = context.info.skipped.find((skip) => skip.kind === row.kind);
    return `not in fixture${skipped ? ` (${skipped.reason})` : ''}`;
  }
  if (row.judge) return row.judge(context);
  const keys = new Set(context.info.paths[row.kind!]);
  const fields = new Set<string>(row.fields);
  const relevant = context.differences.filter(
    (d) =>
      keys.has(d.key) &&
      fields.has(d.field) &&
      (row.xattr === undefined || d.xattr === undefined || row.xattr(d.xattr)),
  );
  return summarise(relevant, keys.size);
}

const cell = (text: string) => text.replaceAll('|', '\\|').replaceAll('\n', ' ');

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      tools: { type: 'string', default: 'restic,amber' },
      'no-big-sparse': { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      dir: { type: 'string' },
    },
  });
  const tools = values.tools.split(',').map((tool) => tool.trim()) as ToolName[];
  for (const tool of tools) if (tool !== 'restic' && tool !== 'amber') throw new Error(`unknown tool ${tool}`);
  const privileged = process.getuid?.() === 0;
  const noPython = whyPythonXattrsUnavailable();
  const parent = values.dir ?? tmpdir();
  mkdirSync(parent, { recursive: true });
  const work = mkdtempSync(join(parent, 'amber-fidelity-bench-'));
  const source = join(work, 'source');
  const log = (line: string) => process.stderr.write(`${line}\n`);
  try {
    const info = await buildFidelityTree(source, {
      privileged,
      bigSparse: !values['no-big-sparse'],
      setXattr: noPython ? undefined : pythonSetXattr,
    });
    log(`fixture built in ${info.elapsedMs} ms at ${source}`);
    for (const skip of info.skipped) log(`  skipped ${skip.kind}: ${skip.reason}`);
    // The record of the source is taken before any tool reads it: reading moves atimes.
    const snapshot = (root: string) => snapshotOfTree(root, { xattrs: noPython ? undefined : pythonXattrReader(root) });
    let started = performance.now();
    const expected = snapshot(source);
    log(`source snapshot: ${expected.size} entries in ${Math.round(performance.now() - started)} ms`);

    const columns: { title: string; cells: string[]; run: ToolRun }[] = [];
    for (const tool of tools) {
      log(`${tool}: init, backup, restore…`);
      const result = backupAndRestore(tool, work, source);
      log(`  ${JSON.stringify(result.timings)}${result.failure ? ` ${result.failure}` : ''}`);
      for (const note of result.notes) log(`  ${note}`);
      let cells: string[];
      if (!result.restored) cells = ROWS.map(() => result.failure ?? 'failed');
      else {
        started = performance.now();
        const actual = snapshot(result.restored);
        const differences = diffTrees(expected, actual);
        log(`  ${differences.length} differences (compared in ${Math.round(performance.now() - started)} ms)`);
        if (values.keep) {
          const report = join(work, `${tool}-differences.txt`);
          writeFileSync(report, `${differences.map((d) => d.message).join('\n')}\n`);
          log(`  all of them: ${report}`);
        }
        cells = ROWS.map((row) => judge(row, { info, expected, actual, differences }));
      }
      columns.push({ title: result.version || tool, cells, run: result });
    }

    const lines = [
      `| Kind | ${columns.map((column) => cell(column.title)).join(' | ')} |`,
      `| --- | ${columns.map(() => '---').join(' | ')} |`,
      ...ROWS.map((row, i) => `| ${cell(row.label)} | ${columns.map((column) => cell(column.cells[i])).join(' | ')} |`),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    for (const column of columns) {
      const timing = Object.entries(column.run.timings)
        .map(([verb, ms]) => `${verb} ${ms} ms`)
        .join(', ');
      process.stdout.write(
        `\n${column.title}: ${timing}${column.run.notes.length ? `; ${column.run.notes.join('; ')}` : ''}\n`,
      );
    }
    if (values.keep) log(`kept ${work}`);
  } finally {
    if (!values.keep) {
      // Amber's fs store makes protected objects immutable (as root); lift that first.
      await liftAttributes(join(work, 'amber-repo'));
      removeFidelityTree(work);
    }
  }
}

await main();
