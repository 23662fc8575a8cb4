// The RPO from the vault's side: a writer backs up once and its process is gone; the vault, which
// keeps the only record of when snapshots arrive, raises rpo.missed to a webhook on 127.0.0.1 by
// itself, exports the writer's last snapshot time, remembers across a restart what it announced,
// and says rpo.recovered when the writer comes back.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BIN, startReceiver, waitFor } from '../../src/testing/agent-fixture.ts';
import { removeTree } from '../../src/testing/repo-fixture.ts';

const dir = await mkdtemp(join(tmpdir(), 'amber-vault-rpo-'));
const dataDir = join(dir, 'data');
const receiver = await startReceiver();
const servers: ChildProcess[] = [];
after(async () => {
  for (const server of servers) server.kill('SIGKILL');
  await receiver.close();
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
  assert.equal(result.status, 0, `amber ${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

async function serve(config: string): Promise<{ url: string; server: ChildProcess; stderr: () => string }> {
  const server = spawn(process.execPath, [BIN, 'vault', 'serve', '--config', config], {
    env: env(''),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  servers.push(server);
  let text = '';
  server.stderr!.on('data', (chunk) => {
    text += chunk;
  });
  const url = await waitFor('the vault to listen', () => /at (http:\/\/127\.0\.0\.1:\d+)/.exec(text)?.[1]);
  return { url, server, stderr: () => text };
}

const rpoEvents = () =>
  receiver.events.map((event) => event.json).filter((json) => String(json.type).startsWith('rpo.'));

test('the vault raises rpo.missed for a writer that stopped, with the client gone, and rpo.recovered when it is back', async () => {
  const admin = JSON.parse(
    amber(['vault', 'token', 'create', '--data', dataDir, '--role', 'admin', '--repo', 'team', '--json']),
  ).token;
  const writerInfo = JSON.parse(
    amber([
      'vault',
      'token',
      'create',
      '--data',
      dataDir,
      '--role',
      'writer',
      '--repo',
      'team',
      '--label',
      'db1',
      '--json',
    ]),
  );
  const config = join(dir, 'vault.yaml');
  await writeFile(
    config,
    `data: data
listen: 127.0.0.1:0
objectives:
  - { repo: team, rpo: 6s }
  - { repo: team, writer: db1, rpo: 6s }
notify:
  - webhook: ${receiver.url}
    events: [rpo.missed, rpo.recovered]
`,
  );
  let vault = await serve(config);
  const repo = `${vault.url}/team`;
  amber(['init', '--repo', repo], admin);
  const source = join(dir, 'source');
  await mkdir(source);
  await writeFile(join(source, 'ledger.txt'), 'the books');
  const backupAt = Date.now();
  amber(['backup', '--repo', repo, source, '--quiet'], writerInfo.token);
  // The client process has exited: from now on only the vault can notice.

  const metrics = await (await fetch(`${vault.url}/metrics`)).text();
  const last = new RegExp(
    `^amber_vault_last_snapshot_timestamp_seconds\\{repo="team",writer="${writerInfo.id}",label="db1"\\} (\\d+(?:\\.\\d+)?)$`,
    'm',
  ).exec(metrics);
  assert.ok(last, metrics);
  assert.ok(Math.abs(Number(last[1]) * 1000 - backupAt) < 30_000);
  assert.match(metrics, /^amber_vault_rpo_objective_seconds\{repo="team",writer="\*"\} 6$/m);
  assert.match(metrics, /^amber_vault_rpo_objective_seconds\{repo="team",writer="db1"\} 6$/m);
  assert.match(metrics, /^amber_vault_rpo_missed\{repo="team",writer="db1"\} 0$/m);

  const missed = await waitFor(
    'rpo.missed for both objectives after the snapshot',
    () => {
      const found = rpoEvents().filter(
        (e) => e.type === 'rpo.missed' && (e.details as { lastSnapshot: unknown }).lastSnapshot,
      );
      return found.length >= 2 && found;
    },
    20_000,
  );
  for (const event of missed) {
    assert.equal(event.repository, 'team');
    assert.equal(event.writer, writerInfo.id);
    assert.equal(event.code, 'RPO_MISSED');
    assert.equal((event.details as { side: string }).side, 'vault');
    assert.equal((event.details as { writerLabel: string }).writerLabel, 'db1');
    assert.match(
      String(event.message),
      /no snapshot of (repository team|writer db1 of team) newer than its RPO of 6\.0s/,
    );
  }
  assert.match(
    await (await fetch(`${vault.url}/metrics`)).text(),
    /^amber_vault_rpo_missed\{repo="team",writer="db1"\} 1$/m,
  );
  const state = JSON.parse(await readFile(join(dataDir, 'vault', 'last-snapshots.json'), 'utf8'));
  assert.deepEqual(state.missed.sort(), ['team/*', 'team/db1']);

  // A restart remembers what was announced: no second rpo.missed for the same miss.
  vault.server.kill('SIGTERM');
  await new Promise((resolve) => vault.server.once('exit', resolve));
  const before = rpoEvents().length;
  vault = await serve(config);
  await sleep(3000);
  assert.equal(rpoEvents().length, before, 'announced again after a restart');

  // The writer is back: rpo.recovered, once per objective.
  await writeFile(join(source, 'ledger.txt'), 'the books, later');
  amber(['backup', '--repo', `${vault.url}/team`, source, '--quiet'], writerInfo.token);
  const recovered = await waitFor('rpo.recovered', () => {
    const found = rpoEvents().filter((e) => e.type === 'rpo.recovered');
    return found.length >= 2 && found;
  });
  assert.ok(recovered.every((event) => event.writer === writerInfo.id));
  vault.server.kill('SIGTERM');
});
