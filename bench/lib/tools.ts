// The two tools under test, driven only through their command lines with the same verbs: init, open
// (list snapshots: the fixed per-command cost, mostly the passphrase KDF), backup, restore, verify,
// and copy (into a fresh repository of the same tool made with init --from-repo).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runChecked, runMeasured, type Measured } from './measure.ts';

export type ToolName = 'amber' | 'restic';

export const AMBER_BIN = fileURLToPath(new URL('../../bin/amber.js', import.meta.url));
const PASSWORD = 'amber-bench correct horse battery staple';

/** What a backup reported about the files it saw, normalised across the tools. */
export interface BackupCounts {
  filesNew: number;
  filesChanged: number;
  filesUnchanged: number;
}

/** What a copy reported about the source's snapshots, normalised across the tools. */
export interface CopyCounts {
  snapshotsCopied: number;
  /** Snapshots of the source the copy held already. */
  snapshotsSkipped: number;
}

/** A repository of the same tool that holds copies of a tool's repository (its source). */
export interface CopyTarget {
  repo: string;
  /** init --from-repo SOURCE: shares the source's chunker parameters, so the copy deduplicates. */
  init(): Promise<Measured>;
  /** Copies every snapshot of the source that the copy lacks. */
  copy(): Promise<Measured & { copyCounts?: CopyCounts }>;
}

export interface Tool {
  name: ToolName;
  repo: string;
  init(): Promise<Measured>;
  open(): Promise<Measured>;
  backup(path: string): Promise<Measured & { counts?: BackupCounts; report?: unknown }>;
  restore(target: string): Promise<Measured>;
  verify(): Promise<Measured>;
  /** A copy of this repository at `repo`, run at a "copy site" with a cache directory of its own. */
  copyTarget(repo: string, cacheDir: string): CopyTarget;
}

/** The environment minus anything that could change either tool's behaviour behind our back. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('AMBER_') && !key.startsWith('RESTIC_')) env[key] = value;
  }
  return { ...env, ...extra };
}

async function checked(tool: ToolName, verb: string, run: Promise<Measured>, argv: string[]): Promise<Measured> {
  const result = await run;
  if (result.status !== 0) {
    throw new Error(
      `${tool} ${verb} failed with exit status ${result.status}: ${argv.join(' ')}\n${result.stderr.slice(-4000)}${result.stdout.slice(-2000)}`,
    );
  }
  return result;
}

/** Runs bin/amber.js on `repo` with `env`. */
function amberRunner(repo: string, env: NodeJS.ProcessEnv) {
  return (verb: string, args: string[]) => {
    // The same Node flag the bin's shebang passes (see bin/amber.js).
    const argv = ['--max-semi-space-size=2', AMBER_BIN, ...args, '--repo', repo];
    return checked('amber', verb, runMeasured(process.execPath, argv, env), [process.execPath, ...argv]);
  };
}

export function createAmber(repo: string, cacheDir: string): Tool {
  // AMBER_KDF_LOG_N is left unset on purpose: Amber's default scrypt cost, as users get it. The
  // local cache lives in the run's folder, as restic's does (--cache-dir), and goes with it.
  const run = amberRunner(repo, cleanEnv({ AMBER_PASSWORD: PASSWORD, AMBER_CACHE_DIR: cacheDir }));
  return {
    name: 'amber',
    repo,
    init: () => run('init', ['init']),
    open: () => run('snapshots', ['snapshots']),
    async backup(path) {
      const result = await run('backup', ['backup', path, '--json']);
      const report = parseJson(result.stdout);
      const summary = (report as { summary?: Record<string, number> } | undefined)?.summary;
      const counts = summary && {
        filesNew: summary.filesNew,
        filesChanged: summary.filesChanged,
        filesUnchanged: summary.filesUnchanged,
      };
      return { ...result, counts, report };
    },
    restore: (target) => run('restore', ['restore', 'latest', '--target', target]),
    verify: () => run('verify', ['verify', '--read-data']),
    copyTarget(copyRepo, copyCacheDir) {
      // The same passphrase for both: AMBER_FROM_PASSWORD is the primary's, AMBER_PASSWORD the copy's.
      const env = cleanEnv({ AMBER_PASSWORD: PASSWORD, AMBER_FROM_PASSWORD: PASSWORD, AMBER_CACHE_DIR: copyCacheDir });
      const runCopy = amberRunner(copyRepo, env);
      return {
        repo: copyRepo,
        init: () => runCopy('init --from-repo', ['init', '--from-repo', repo]),
        async copy() {
          const result = await runCopy('copy', ['copy', '--from-repo', repo, '--json']);
          const report = parseJson(result.stdout) as { copied?: unknown[]; alreadyCopied?: number } | undefined;
          const copyCounts =
            report?.copied && report.alreadyCopied !== undefined
              ? { snapshotsCopied: report.copied.length, snapshotsSkipped: report.alreadyCopied }
              : undefined;
          return { ...result, copyCounts };
        },
      };
    },
  };
}

/** Runs restic on `repo` with `env` and a cache directory of its own. */
function resticRunner(repo: string, cacheDir: string, env: NodeJS.ProcessEnv) {
  return (verb: string, args: string[]) => {
    const argv = ['--repo', repo, '--cache-dir', cacheDir, ...args];
    return checked('restic', verb, runMeasured('restic', argv, env), ['restic', ...argv]);
  };
}

export function createRestic(repo: string, cacheDir: string): Tool {
  const run = resticRunner(repo, cacheDir, cleanEnv({ RESTIC_PASSWORD: PASSWORD }));
  return {
    name: 'restic',
    repo,
    init: () => run('init', ['init', '--repository-version', '2']),
    open: () => run('snapshots', ['snapshots']),
    async backup(path) {
      const result = await run('backup', ['backup', '--compression', 'auto', '--json', path]);
      const report = result.stdout
        .split('\n')
        .map(parseJson)
        .find((line) => (line as { message_type?: string } | undefined)?.message_type === 'summary');
      const summary = report as Record<string, number> | undefined;
      const counts = summary && {
        filesNew: summary.files_new,
        filesChanged: summary.files_changed,
        filesUnchanged: summary.files_unmodified,
      };
      return { ...result, counts, report };
    },
    restore: (target) => run('restore', ['restore', 'latest', '--target', target]),
    verify: () => run('check', ['check', '--read-data']),
    copyTarget(copyRepo, copyCacheDir) {
      // The same passphrase for both: RESTIC_FROM_PASSWORD is the source's, RESTIC_PASSWORD the copy's.
      const env = cleanEnv({ RESTIC_PASSWORD: PASSWORD, RESTIC_FROM_PASSWORD: PASSWORD });
      const runCopy = resticRunner(copyRepo, copyCacheDir, env);
      return {
        repo: copyRepo,
        init: () =>
          runCopy('init --from-repo', [
            'init',
            '--repository-version',
            '2',
            '--from-repo',
            repo,
            '--copy-chunker-params',
          ]),
        async copy() {
          // restic copy decrypts and decompresses each blob and compresses it again for the copy.
          const result = await runCopy('copy', ['copy', '--compression', 'auto', '--from-repo', repo]);
          // restic 0.14 has no JSON for copy: "snapshot 1234abcd saved" per copy, "skipping source
          // snapshot …, was already copied" per snapshot the copy holds.
          const copyCounts = {
            snapshotsCopied: result.stdout.match(/^snapshot [0-9a-f]+ saved$/gm)?.length ?? 0,
            snapshotsSkipped: result.stdout.match(/^skipping source snapshot /gm)?.length ?? 0,
          };
          return { ...result, copyCounts };
        },
      };
    },
  };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export function amberVersion(): string {
  const result = spawnSync(process.execPath, [AMBER_BIN, '--version'], { encoding: 'utf8' });
  return result.status === 0 ? result.stdout.trim() : `unknown (exit ${result.status})`;
}

/** Amber's zstd level as its normative format document states it (the bench never imports src/). */
export function amberCompressionNote(): string {
  const format = readFileSync(fileURLToPath(new URL('../../docs/format.md', import.meta.url)), 'utf8');
  const levels = /Amber uses (level\s+\d+ for data blobs and level\s+\d+ for trees)/
    .exec(format)?.[1]
    ?.replace(/\s+/g, ' ');
  return levels
    ? `Amber: its default, zstd ${levels} (per docs/format.md)`
    : 'Amber: its default zstd levels (not stated in docs/format.md)';
}

export type ResticAvailability = { available: true; version: string } | { available: false; reason: string };

function resticVersion(): string | undefined {
  const result = spawnSync('restic', ['version'], { encoding: 'utf8' });
  return result.status === 0 ? result.stdout.trim() : undefined;
}

/** restic from PATH, or installed from Debian's packages (apt-get update only if the first try fails). */
export async function findRestic(log: (line: string) => void): Promise<ResticAvailability> {
  let version = resticVersion();
  if (!version) {
    if (process.getuid?.() !== 0)
      return { available: false, reason: 'not on PATH, and not running as root to apt-get install it' };
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    log('restic is not on PATH; trying apt-get install -y restic');
    try {
      await runChecked('apt-get', ['install', '-y', 'restic'], env);
    } catch {
      try {
        log('apt-get install failed; running apt-get update and trying again');
        await runChecked('apt-get', ['update'], env);
        await runChecked('apt-get', ['install', '-y', 'restic'], env);
      } catch (error) {
        return {
          available: false,
          reason: `apt-get install restic failed: ${String((error as Error).message)
            .split('\n')
            .filter(Boolean)
            .at(-1)}`,
        };
      }
    }
    version = resticVersion();
    if (!version) return { available: false, reason: 'installed with apt-get but `restic version` still fails' };
  }
  const [major, minor] = (/restic (\d+)\.(\d+)/.exec(version) ?? []).slice(1).map(Number);
  if (!(major > 0 || minor >= 14))
    return { available: false, reason: `${version} predates compression (repository version 2 needs restic 0.14+)` };
  return { available: true, version };
}
