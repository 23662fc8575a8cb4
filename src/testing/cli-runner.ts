// The amber CLI run as a test runs it against a source (a database, a mailbox): the pinned Node,
// a fast key derivation, a cache of the test's own, the source's password in AMBER_SOURCE_PASSWORD
// and nothing else of the caller's environment but PATH. `amber` returns what happened; `ok` also
// asserts it exited 0, showing its output when it did not; `amberAsync` runs it without blocking.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { BIN } from './agent-fixture.ts';

export interface CliRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function sourceCli(options: {
  /** The test's scratch directory (read at each run: set in a before hook). */
  dir: () => string;
  passphrase: string;
  sourcePassword: () => string;
}) {
  const env = (extra: Record<string, string> = {}) => ({
    PATH: process.env.PATH,
    AMBER_PASSWORD: options.passphrase,
    AMBER_KDF_LOG_N: '10',
    AMBER_CACHE_DIR: join(options.dir(), 'cache'),
    AMBER_SOURCE_PASSWORD: options.sourcePassword(),
    ...extra,
  });
  const amber = (args: string[], extra?: Record<string, string>): CliRun => {
    const result = spawnSync(process.execPath, [BIN, ...args], {
      encoding: 'utf8',
      env: env(extra),
      maxBuffer: 1 << 26,
    });
    return { status: result.status, stdout: String(result.stdout), stderr: String(result.stderr) };
  };
  const ok = (args: string[], extra?: Record<string, string>): CliRun => {
    const run = amber(args, extra);
    assert.equal(run.status, 0, `amber ${args.join(' ')}: ${run.stdout}${run.stderr}`);
    return run;
  };
  /** As `amber`, without blocking this process: for a test that serves the source itself (a proxy) meanwhile. */
  const amberAsync = (args: string[], extra?: Record<string, string>): Promise<CliRun> =>
    new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [BIN, ...args], { env: env(extra), stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (text: string) => {
        stdout += text;
      });
      child.stderr.setEncoding('utf8').on('data', (text: string) => {
        stderr += text;
      });
      child.on('error', reject);
      child.on('close', (status) => resolve({ status, stdout, stderr }));
    });
  return { env, amber, ok, amberAsync };
}
