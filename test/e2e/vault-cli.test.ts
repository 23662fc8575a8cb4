// The vault as operators run it: `amber vault serve` in its own process, tokens made on the data
// directory before it starts, and clients through `--repo http://127.0.0.1:PORT/NAME`. The server is
// killed with SIGKILL in the middle of a backup's uploads: no partial object is ever visible, the
// client fails clearly, and after a restart the same backup completes and verifies.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fingerprintTree, removeTree, seededBytes } from '../../src/testing/repo-fixture.ts';

const BIN = fileURLToPath(new URL('../../bin/amber.js', import.meta.url));
const dir = await mkdtemp(join(tmpdir(), 'amber-vault-cli-'));
const dataDir = join(dir, 'data');
const servers: ChildProcess[] = [];
after(async () => {
  for (const server of servers) server.kill('SIGKILL');
  await removeTree(dir);
});

const env = (token: string) => ({
  PATH: process.env.PATH,
  AMBER_PASSWORD: 'owner pass',
  AMBER_KDF_LOG_N: '10',
  AMBER_CACHE_DIR: join(dir, 'cache'),
  AMBER_VAULT_TOKEN: token,
});

function amber(args: string[], token = '') {
  const result = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: env(token) });
  return { status: result.status, stdout: String(result.stdout), stderr: String(result.stderr) };
}

function token(role: string): string {
  const result = amber(['vault', 'token', 'create', '--data', dataDir, '--role', role, '--repo', 'team', '--json']);
  assert.equal(result.status, 0, result.stderr);
  return JSON.parse(result.stdout).token;
}

/** Starts `amber vault serve ARGS` and returns its URL once it listens. */
async function serveWith(args: string[]): Promise<{ url: string; server: ChildProcess }> {
  const server = spawn(process.execPath, [BIN, 'vault', 'serve', ...args], {
    env: env(''),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  servers.push(server);
  let text = '';
  const url = await new Promise<string>((resolve, reject) => {
    server.stderr!.on('data', (chunk) => {
      text += chunk;
      const match = /at (https?:\/\/127\.0\.0\.1:\d+)/.exec(text);
      if (match) resolve(match[1]);
    });
    server.on('exit', () => reject(new Error(`the vault exited: ${text}`)));
  });
  return { url, server };
}

/** The vault on the shared data directory, on a free port of 127.0.0.1 unless one is given. */
const serve = (port = 0) => serveWith(['--data', dataDir, '--listen', `127.0.0.1:${port}`]);

/** Every object under the repository (not tmp/) has bytes that hash to its name, config aside. */
async function everyObjectIsWhole(repoDir: string): Promise<number> {
  let count = 0;
  const visit = async (path: string): Promise<void> => {
    for (const entry of await readdir(path, { withFileTypes: true })) {
      const full = join(path, entry.name);
      const name = relative(repoDir, full);
      if (name === 'tmp') continue;
      if (entry.isDirectory()) {
        await visit(full);
        continue;
      }
      count += 1;
      const hash = /[/-]([0-9a-f]{64})$/.exec(name)?.[1];
      if (!hash || name.startsWith('requests/') || name.startsWith('executions/')) continue;
      assert.equal(
        createHash('sha256')
          .update(await readFile(full))
          .digest('hex'),
        hash,
        `${name} is whole`,
      );
    }
  };
  await visit(repoDir);
  return count;
}

test('a vault killed with SIGKILL mid-backup shows no partial object; after a restart the backup completes and verifies', async () => {
  const admin = token('admin');
  const writer = token('writer');
  const reader = token('reader');
  let { url, server } = await serve();
  const repo = `${url}/team`;
  assert.equal(amber(['init', '--repo', repo], admin).status, 0);

  const source = join(dir, 'source');
  await mkdir(source);
  for (let i = 0; i < 12; i++) await writeFile(join(source, `part-${i}.bin`), seededBytes(6_000_000, `part-${i}`));

  const backup = spawn(process.execPath, [BIN, 'backup', '--repo', repo, source], {
    env: env(writer),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let backupErr = '';
  backup.stderr!.on('data', (chunk) => (backupErr += chunk));
  const repoDir = join(dataDir, 'repos', 'team');
  // Kill the server as soon as the first pack has landed: later uploads are in flight or not yet sent.
  for (let waited = 0; waited < 30_000; waited += 20) {
    const packs = await readdir(join(repoDir, 'data')).catch(() => []);
    if (packs.length > 0) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  server.kill('SIGKILL');
  const status = await new Promise<number | null>((resolve) => backup.on('exit', resolve));
  assert.notEqual(status, 0, 'the backup cannot finish without its server');
  assert.match(backupErr, /vault at http:\/\/127\.0\.0\.1:\d+ cannot be reached|STORAGE_TRANSIENT/);
  assert.ok((await everyObjectIsWhole(repoDir)) > 0);

  ({ url, server } = await serve(Number(new URL(url).port)));
  const rerun = amber(['backup', '--repo', repo, source, '--json'], writer);
  assert.equal(rerun.status, 0, rerun.stderr);
  const snapshotId = JSON.parse(rerun.stdout).id as string;
  const checked = amber(['verify', '--repo', repo, '--read-data'], reader);
  assert.equal(checked.status, 0, checked.stderr);
  const target = join(dir, 'restore');
  assert.equal(amber(['restore', snapshotId, '--repo', repo, '--target', target], reader).status, 0);
  assert.deepEqual(await fingerprintTree(join(target, source)), await fingerprintTree(source));
  await everyObjectIsWhole(repoDir);
});

test('vault serve takes its settings from a YAML file, and refuses one with unknown settings', async () => {
  const config = join(dir, 'vault.yaml');
  await writeFile(config, `data: ${dataDir}\nlisten: 127.0.0.1:0\n`);
  const { url, server } = await serveWith(['--config', config]);
  assert.deepEqual(await (await fetch(`${url}/v1/health`)).json(), { status: 'ok' });
  server.kill('SIGTERM');

  await writeFile(config, `data: ${dataDir}\nlisten: 127.0.0.1:0\nport: 99\n`);
  const refused = amber(['vault', 'serve', '--config', config]);
  assert.equal(refused.status, 2);
  assert.match(refused.stderr, /vault\.yaml:3:1: unknown key "port" in the file/);
  assert.match(refused.stderr, /\[CONFIG_INVALID\]/);
});

const noOpenssl =
  spawnSync('openssl', ['version']).status === 0 ? false : 'openssl is not installed (it makes the test certificate)';

test('vault serve over TLS: a client that trusts the certificate works, one that does not is refused clearly', {
  skip: noOpenssl,
}, async () => {
  const cert = join(dir, 'vault.crt');
  const key = join(dir, 'vault.key');
  const made = spawnSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-days',
      '1',
      '-keyout',
      key,
      '-out',
      cert,
    ],
    { encoding: 'utf8' },
  );
  assert.equal(made.status, 0, made.stderr);
  const { url } = await serveWith([
    '--data',
    join(dir, 'tls-data'),
    '--listen',
    '127.0.0.1:0',
    '--tls-cert',
    cert,
    '--tls-key',
    key,
  ]);
  const admin = spawnSync(
    process.execPath,
    [BIN, 'vault', 'token', 'create', '--data', join(dir, 'tls-data'), '--role', 'admin', '--repo', 'secure', '--json'],
    { encoding: 'utf8', env: env('') },
  );
  const adminToken = JSON.parse(admin.stdout).token as string;
  const init = (extra: Record<string, string>) =>
    spawnSync(process.execPath, [BIN, 'init', '--repo', `${url}/secure`], {
      encoding: 'utf8',
      env: { ...env(adminToken), ...extra },
    });
  const untrusted = init({});
  assert.notEqual(untrusted.status, 0);
  assert.match(untrusted.stderr, /cannot be reached: .*certificate[\s\S]*STORAGE_TRANSIENT[\s\S]*NODE_EXTRA_CA_CERTS/);
  const trusted = init({ NODE_EXTRA_CA_CERTS: cert });
  assert.equal(trusted.status, 0, trusted.stderr);
  assert.match(trusted.stdout, /created repository/);
});
