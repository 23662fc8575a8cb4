// Load on the vault: N backup clients (real CLI processes, each with its own writer token) back up
// their own changing trees to one repository for a bounded time. Reports backups and bytes per
// second and the number of failed runs, which must be zero. Not a test: nothing asserts on time.
//   node bench/vault-load.ts [--clients 4] [--seconds 60] [--mib 16]
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { systemClock } from '../src/core/clock.ts';
import { startVault } from '../src/vault/server.ts';
import { createToken } from '../src/vault/tokens.ts';
import { removeTree } from './lib/remove-tree.ts';
import { testRetentionClock } from '../src/testing/operation.ts';

const BIN = fileURLToPath(new URL('../bin/amber.js', import.meta.url));
const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '4' },
    seconds: { type: 'string', default: '60' },
    mib: { type: 'string', default: '16' },
  },
});
const clients = Number(values.clients);
const seconds = Number(values.seconds);
const mib = Number(values.mib);

const dir = await mkdtemp(join(tmpdir(), 'amber-vault-load-'));
const dataDir = join(dir, 'data');
const vault = await startVault({
  dataDir,
  port: 0,
  clock: systemClock,
  retentionClock: testRetentionClock(systemClock),
});
const env = (token: string) => ({
  PATH: process.env.PATH,
  AMBER_PASSWORD: 'load test',
  AMBER_KDF_LOG_N: '12',
  AMBER_CACHE_DIR: join(dir, 'cache'),
  AMBER_VAULT_TOKEN: token,
});
const repo = `${vault.url}/load`;

function run(args: string[], token: string): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: env(token), stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('exit', (status) => resolve({ status, stderr }));
  });
}

try {
  const admin = createToken(dataDir, { role: 'admin', repo: 'load', nowMs: Date.now() }).token;
  const init = await run(['init', '--repo', repo], admin);
  if (init.status !== 0) throw new Error(`init failed: ${init.stderr}`);

  const deadline = Date.now() + seconds * 1000;
  const results = await Promise.all(
    Array.from({ length: clients }, async (_, client) => {
      const token = createToken(dataDir, {
        role: 'writer',
        repo: 'load',
        label: `client ${client}`,
        nowMs: Date.now(),
      }).token;
      const source = join(dir, `client-${client}`);
      await mkdir(source, { recursive: true });
      let runs = 0;
      let failures = 0;
      let bytes = 0;
      const errors: string[] = [];
      while (Date.now() < deadline) {
        // Each run adds one new file, so every backup uploads data as well as metadata.
        const file = randomBytes(mib * 1024 * 1024);
        await writeFile(join(source, `run-${runs}.bin`), file);
        const result = await run(['backup', '--repo', repo, source, '--quiet'], token);
        runs += 1;
        if (result.status === 0) bytes += file.length;
        else {
          failures += 1;
          errors.push(result.stderr.trim().split('\n')[0]);
        }
      }
      return { runs, failures, bytes, errors };
    }),
  );
  const runs = results.reduce((sum, r) => sum + r.runs, 0);
  const failures = results.reduce((sum, r) => sum + r.failures, 0);
  const bytes = results.reduce((sum, r) => sum + r.bytes, 0);
  console.log(
    `${clients} clients for ${seconds} s against ${vault.url}: ${runs} backups (${(runs / seconds).toFixed(2)}/s), ` +
      `${(bytes / 1048576 / seconds).toFixed(1)} MiB/s of new data, ${failures} failed`,
  );
  for (const error of new Set(results.flatMap((r) => r.errors))) console.log(`  failure: ${error}`);
  const verify = await run(
    ['verify', '--repo', repo],
    createToken(dataDir, { role: 'reader', repo: 'load', nowMs: Date.now() }).token,
  );
  console.log(`verify after the load: ${verify.status === 0 ? 'no problems' : verify.stderr.trim()}`);
  process.exitCode = failures === 0 && verify.status === 0 ? 0 : 1;
} finally {
  await vault.close();
  await removeTree(dir);
}
