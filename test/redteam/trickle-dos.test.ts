// Red team: the per-token half share and the minimum rate do not stop two tokens. Each declares the
// largest upload its share allows and sends just above the minimum rate: together they hold the whole
// memory budget for up to the 10-minute request timeout, and every other client's upload (here a
// one-byte one from a third token) waits behind them. Repeat and the vault takes no backups.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { systemClock } from '../../src/core/clock.ts';
import { makeTempDir, removeTree } from '../../src/testing/repo-fixture.ts';
import { startVault } from '../../src/vault/server.ts';
import { createToken } from '../../src/vault/tokens.ts';
import { mkdirSync } from 'node:fs';
import { testRetentionClock } from '../../src/testing/operation.ts';

test('vault: two trickling tokens hold the whole memory budget and a third token cannot upload one byte', async (t) => {
  const dir = await makeTempDir('rt-trickle');
  const dataDir = join(dir, 'data');
  const budget = 512 * 1024 * 1024;
  const vault = await startVault({
    dataDir,
    port: 0,
    clock: systemClock,
    retentionClock: testRetentionClock(systemClock),
    memoryBudgetBytes: budget,
    minUploadBytesPerSecond: 4096,
    uploadGraceMs: 1000,
  });
  const sockets: Socket[] = [];
  t.after(async () => {
    for (const s of sockets) s.destroy();
    await vault.close();
    await removeTree(dir);
  });
  mkdirSync(join(dataDir, 'repos', 'team'), { recursive: true });
  const port = Number(new URL(vault.url).port);
  const token = () => createToken(dataDir, { role: 'writer', repo: 'team', nowMs: Date.now() }).token;
  for (const i of [0, 1]) {
    const secret = token();
    const s = connect(port, '127.0.0.1', () => {
      s.write(
        `PUT /v1/repos/team/objects/data/aa/${'a'.repeat(63)}${i} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${secret}\r\nContent-Length: ${budget / 2}\r\n\r\n`,
      );
      const iv = setInterval(() => s.write(Buffer.alloc(1024)), 100); // 10 KiB/s, above the minimum
      s.on('close', () => clearInterval(iv));
    });
    s.on('error', () => undefined);
    sockets.push(s);
  }
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const victimToken = token();
  const answered = await new Promise<string>((resolve) => {
    const s = connect(port, '127.0.0.1', () =>
      s.write(
        `PUT /v1/repos/team/objects/grants/${'b'.repeat(64)} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${victimToken}\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx`,
      ),
    );
    sockets.push(s);
    s.on('data', (d) => resolve(String(d).split('\r\n')[0]));
    setTimeout(() => resolve('no answer within 8 s'), 8000);
  });
  assert.notEqual(
    answered,
    'no answer within 8 s',
    "another token's one-byte upload must not wait for two trickling uploads",
  );
});
