// Deliveries to real endpoints on 127.0.0.1: a webhook receiver that checks the signature, one that
// fails and then recovers, one that is gone, healthchecks-style pings, and a real SMTP server
// (smtp-server, with authentication) that receives the mail.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { type AddressInfo, createServer as createTcpServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSmtp } from '../../testing/agent-fixture.ts';
import type { AmberEvent } from './event.ts';
import { createNotifier } from './notifier.ts';

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

async function receiver(status: () => number = () => 200) {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (piece: string) => {
      body += piece;
    });
    req.on('end', () => {
      received.push({ path: req.url ?? '', headers: req.headers, body });
      res.writeHead(status()).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())).then(() => server.closeAllConnections()),
  };
}

const failed: AmberEvent = {
  type: 'backup.failed',
  time: '2026-12-02T10:00:00.000Z',
  source: 'finance',
  repository: 'main',
  code: 'WRONG_PASSWORD',
  message: 'backup of finance failed: no key opens with the passphrase',
};

let dir: string;
const logs: Record<string, unknown>[] = [];
const log = (line: Record<string, unknown>) => logs.push(line);
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'amber-notify-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('notifications', () => {
  test('a webhook gets the JSON event with its type, id and host, signed with HMAC-SHA-256 over the body', async () => {
    const hook = await receiver();
    writeFileSync(join(dir, 'secret'), 'the shared secret\n');
    const notifier = createNotifier(
      [{ kind: 'webhook', url: `${hook.url}/amber?t=1`, secretFile: join(dir, 'secret') }],
      { log, host: 'db1' },
    );
    notifier.send(failed);
    await notifier.flush(5000);
    notifier.close();
    await hook.close();
    assert.equal(hook.received.length, 1);
    const [{ path, headers, body }] = hook.received;
    assert.equal(path, '/amber?t=1');
    const json = JSON.parse(body);
    assert.equal(json.type, 'backup.failed');
    assert.equal(json.code, 'WRONG_PASSWORD');
    assert.equal(json.host, 'db1');
    assert.match(json.id, /^[0-9a-f-]{36}$/);
    assert.equal(headers['x-amber-event'], 'backup.failed');
    assert.equal(headers['x-amber-delivery'], json.id);
    assert.equal(headers['content-type'], 'application/json');
    const expected = `sha256=${createHmac('sha256', 'the shared secret').update(body).digest('hex')}`;
    assert.equal(headers['x-amber-signature'], expected, 'the final newline of the file is not part of the key');
  });

  test('a failing endpoint is retried until it answers, in order; events it does not want are not sent', async () => {
    let answers = 0;
    const hook = await receiver(() => (++answers <= 2 ? 503 : 204));
    logs.length = 0;
    const notifier = createNotifier([{ kind: 'webhook', url: hook.url, events: ['backup.failed', 'rpo.missed'] }], {
      log,
      retryDelaysMs: [50, 50, 50],
    });
    notifier.send({ ...failed, type: 'backup.succeeded' });
    notifier.send(failed);
    notifier.send({ ...failed, type: 'rpo.missed' });
    await notifier.flush(5000);
    notifier.close();
    await hook.close();
    assert.deepEqual(
      hook.received.map((r) => JSON.parse(r.body).type),
      ['backup.failed', 'backup.failed', 'backup.failed', 'rpo.missed'],
    );
    assert.deepEqual(
      logs.map((l) => [l.msg, l.attempt, l.error]),
      [
        ['notification failed; retrying', 1, 'HTTP 503 Service Unavailable'],
        ['notification failed; retrying', 2, 'HTTP 503 Service Unavailable'],
      ],
    );
    assert.equal(logs[0].target, `webhook ${hook.url}`, 'the target is named by its origin only');
  });

  test('a dead endpoint never blocks: send returns at once, flush gives up at its deadline, the drop is logged', async () => {
    // A port that accepts nothing: a server bound and closed again.
    const closed = createTcpServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    logs.length = 0;
    const notifier = createNotifier([{ kind: 'webhook', url: `http://127.0.0.1:${port}/hook` }], {
      log,
      retryDelaysMs: [20, 20],
    });
    const start = performance.now();
    for (let i = 0; i < 5; i++) notifier.send(failed);
    assert.ok(performance.now() - start < 50, 'send does not wait for the endpoint');
    await notifier.flush(10_000);
    notifier.close();
    const dropped = logs.filter((l) => l.msg === 'notification dropped after its last attempt');
    assert.equal(dropped.length, 5);
    assert.match(String(dropped[0].error), /fetch failed/);

    // A hanging endpoint: flush returns at its deadline and says what is left.
    const hanging = createTcpServer(() => {});
    await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
    logs.length = 0;
    const stuck = createNotifier(
      [{ kind: 'webhook', url: `http://127.0.0.1:${(hanging.address() as AddressInfo).port}/` }],
      { log },
    );
    stuck.send(failed);
    stuck.send(failed);
    const flushStart = performance.now();
    await stuck.flush(300);
    assert.ok(performance.now() - flushStart < 5000);
    assert.deepEqual(logs.at(-1), { msg: 'notifications not delivered before exit', waiting: 2 });
    stuck.close();
    hanging.close();
  });

  test('pings: URL/start, URL and URL/fail for the runs, only for the sources named', async () => {
    const hc = await receiver();
    const notifier = createNotifier([{ kind: 'ping', url: `${hc.url}/ping/uuid-1/`, sources: ['finance'] }], { log });
    for (const type of ['backup.started', 'backup.succeeded', 'backup.started', 'backup.failed', 'rpo.missed'] as const)
      notifier.send({ ...failed, type });
    notifier.send({ ...failed, type: 'backup.started', source: 'other' });
    await notifier.flush(5000);
    notifier.close();
    await hc.close();
    assert.deepEqual(
      hc.received.map((r) => r.path),
      ['/ping/uuid-1/start', '/ping/uuid-1', '/ping/uuid-1/start', '/ping/uuid-1/fail'],
    );
    assert.equal(JSON.parse(hc.received[3].body).code, 'WRONG_PASSWORD', 'the body is the event, shown as the log');
  });

  test('e-mail through a real SMTP server with authentication: subject, sender, recipients and body', async () => {
    const smtp = await startSmtp({ user: 'amber', password: 'mail secret' });
    const { port, mails } = smtp;
    writeFileSync(join(dir, 'smtp-user'), 'amber\n');
    writeFileSync(join(dir, 'smtp-pass'), 'mail secret\n');
    logs.length = 0;
    const notifier = createNotifier(
      [
        {
          kind: 'email',
          smtp: `smtp://127.0.0.1:${port}`,
          from: 'amber@example.test',
          to: ['ops@example.test', 'oncall@example.test'],
          usernameFile: join(dir, 'smtp-user'),
          passwordFile: join(dir, 'smtp-pass'),
        },
      ],
      { log, host: 'db1' },
    );
    notifier.send({ ...failed, type: 'backup.started' });
    notifier.send(failed);
    await notifier.flush(10_000);
    notifier.close();
    await smtp.close();
    assert.deepEqual(logs, []);
    assert.equal(mails.length, 1, 'backup.started is not mailed by default');
    const [mail] = mails;
    assert.equal(mail.user, 'amber');
    assert.equal(mail.from, 'amber@example.test');
    assert.deepEqual(mail.to, ['ops@example.test', 'oncall@example.test']);
    const unfolded = mail.raw;
    assert.match(unfolded, /^Subject: \[amber\] backup\.failed: finance \(WRONG_PASSWORD\) on db1\r$/m);
    assert.match(unfolded, /^X-Amber-Event: backup\.failed\r$/m);
    assert.match(unfolded, /^code: WRONG_PASSWORD\r$/m);
    assert.match(unfolded, /^source: finance\r$/m);
    assert.match(unfolded, /^backup of finance failed: no key opens with the passphrase\r$/m);
  });
});
