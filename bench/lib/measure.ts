// Runs one command and measures its wall time (from the parent) and peak resident set size (from
// GNU time's "Maximum resident set size", written to a side file so the tool's own stderr is clean).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const GNU_TIME = '/usr/bin/time';
const KEEP_OUTPUT_BYTES = 1 << 20;

export interface Measured {
  seconds: number;
  /** null when /usr/bin/time is not installed. */
  peakRssBytes: number | null;
  status: number | null;
  stdout: string;
  stderr: string;
}

export function hasGnuTime(): boolean {
  return existsSync(GNU_TIME);
}

function keepTail(text: string, more: string): string {
  const joined = text + more;
  return joined.length > KEEP_OUTPUT_BYTES ? joined.slice(-KEEP_OUTPUT_BYTES) : joined;
}

let sideFiles = 0;

export async function runMeasured(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<Measured> {
  const timeFile = join(tmpdir(), `amber-bench-time-${process.pid}-${sideFiles++}.txt`);
  const timed = hasGnuTime();
  const [file, argv] = timed ? [GNU_TIME, ['-v', '-o', timeFile, command, ...args]] : [command, args];
  const started = performance.now();
  const child = spawn(file, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (data: string) => (stdout = keepTail(stdout, data)));
  child.stderr.setEncoding('utf8').on('data', (data: string) => (stderr = keepTail(stderr, data)));
  const status = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve(code));
  });
  const seconds = (performance.now() - started) / 1000;
  let peakRssBytes: number | null = null;
  if (timed) {
    const report = await readFile(timeFile, 'utf8').catch(() => '');
    await rm(timeFile, { force: true });
    const kb = /Maximum resident set size \(kbytes\): (\d+)/.exec(report)?.[1];
    peakRssBytes = kb === undefined ? null : Number(kb) * 1024;
  }
  return { seconds, peakRssBytes, status, stdout, stderr };
}

/** Runs a helper command (not measured) and fails loudly when it does not succeed. */
export async function runChecked(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<string> {
  const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (data: string) => (output = keepTail(output, data)));
  child.stderr.setEncoding('utf8').on('data', (data: string) => (output = keepTail(output, data)));
  const status = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  if (status !== 0) throw new Error(`${command} ${args.join(' ')} exited with ${status}:\n${output.slice(-4000)}`);
  return output;
}
