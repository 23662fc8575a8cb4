// Red-team tests: policy files written to hurt the agent (an alias bomb, a schedule that never fires,
// an interval longer than any date) and notify URLs whose secrets must not reach the log.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AmberError } from '../core/errors.ts';
import { createNotifier } from './notify/notifier.ts';
import { parsePolicyText } from './policy-file.ts';
import { parseSchedule } from './schedule.ts';

const FILE = '/etc/amber/policy.yaml';
const policy = (sources: string, extra = '') =>
  `repositories:\n  main: { repo: /srv/amber }\nsources:\n${sources}\n${extra}`;
const source = (schedule: string, more = '') =>
  `  - { name: a, paths: [/srv/a], repository: main, schedule: ${JSON.stringify(schedule)}${more} }`;

function configProblem(text: string): string {
  try {
    parsePolicyText(text, FILE);
  } catch (error) {
    assert.ok(error instanceof AmberError, `not an AmberError: ${(error as Error)?.stack}`);
    assert.equal(error.code, 'CONFIG_INVALID');
    return error.message;
  }
  assert.fail('the file was accepted');
}

test('an alias bomb ("billion laughs") is a CONFIG_INVALID at its line, not a raw ReferenceError', () => {
  const bomb = [
    'a: &a [x, x, x, x, x, x, x, x, x, x]',
    'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]',
    'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]',
    'd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]',
    'e: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]',
  ].join('\n');
  assert.match(configProblem(bomb), /\/etc\/amber\/policy\.yaml:1:1: .*alias/);
});

test('a cron expression that never fires ("0 0 30 2 *") is refused at its line, with or without an rpo', () => {
  for (const text of ['0 0 30 2 *', '0 0 31 4 *']) {
    const result = parseSchedule(text);
    assert.ok('problem' in result, `${text} was accepted`);
    assert.match(result.problem, /never/);
    assert.match(configProblem(policy(source(text))), /policy\.yaml:4:\d+: .*never/);
    assert.match(configProblem(policy(source(text, ', rpo: 1d'))), /policy\.yaml:4:\d+: .*never/);
  }
  // Rare is not never: the 29th of February fires every four years.
  const leap = parseSchedule('0 0 29 2 *');
  assert.ok(!('problem' in leap));
  assert.ok(Number.isFinite(leap.intervalMs()));
});

test('an interval longer than the longest duration (every 99999999999999999999d) is refused', () => {
  const result = parseSchedule('every 99999999999999999999d');
  assert.ok('problem' in result, 'accepted');
  assert.match(configProblem(policy(source('every 99999999999999999999d'))), /policy\.yaml:4:\d+: /);
  assert.ok(!('problem' in parseSchedule('every 365d')));
});

test('a webhook URL with user:password is refused in the file; its secrets never reach a delivery log', async () => {
  const url = 'https://user:s3cret@127.0.0.1:9/hook?token=t0ken';
  assert.match(
    configProblem(policy(source('every 1h'), `notify:\n  - webhook: "${url}"`)),
    /policy\.yaml:6:\d+: .*(user|credential|password)/,
  );
  // The notifier given such a URL anyway (another caller, the vault) and a query token that fails:
  const server = createServer((_req, res) => {
    res.writeHead(500);
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const lines: string[] = [];
  for (const target of [url, `http://127.0.0.1:${port}/hook/S3CRETPATH?token=t0ken`]) {
    const notifier = createNotifier([{ kind: 'webhook', url: target }], {
      log: (line) => lines.push(JSON.stringify(line)),
      retryDelaysMs: [],
    });
    notifier.send({ type: 'backup.failed', time: new Date().toISOString(), message: 'x' });
    await notifier.flush(5000);
    notifier.close();
  }
  server.close();
  assert.ok(lines.length >= 2, lines.join('\n'));
  for (const line of lines) {
    assert.doesNotMatch(line, /s3cret|t0ken|S3CRETPATH/, line);
  }
});
