import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AmberError } from '../core/errors.ts';
import { parsePolicyText } from './policy-file.ts';

const FILE = '/etc/amber/policy.yaml';

const GOOD = `repositories:
  main:    { repo: /srv/amber, password-file: main.pass }
  offsite: { repo: https://vault2.example:8420/finance, token-file: /etc/amber/offsite.token }
sources:
  - name: finance
    paths: [/srv/finance]
    exclude: ["*.tmp"]
    repository: main
    schedule: every 1h
    retain: { daily: 35d, monthly: 1y, yearly: 7y, mode: compliance }
    rpo: 1h
    rto: 4h
    copy-to: [offsite]
notify:
  - webhook: https://hooks.example/amber
    secret-file: hook.secret
  - email: { smtp: "smtp://mail.example:587", from: amber@example, to: [ops@example] }
  - ping: https://hc.example/ping/UUID
metrics: { listen: "127.0.0.1:9464" }
`;

/** The problems of a file, as `line:col: message` without the file name. */
function problemsOf(text: string): string[] {
  try {
    parsePolicyText(text, FILE);
  } catch (error) {
    assert.ok(error instanceof AmberError, String(error));
    assert.equal(error.code, 'CONFIG_INVALID');
    return error.message
      .split('\n')
      .slice(1)
      .map((line) => {
        assert.ok(line.startsWith(`${FILE}:`), line);
        return line.slice(FILE.length + 1);
      });
  }
  assert.fail('the file was accepted');
}

test("the issue's example parses: durations in ms, schedules, files relative to the policy file", () => {
  const policy = parsePolicyText(GOOD, FILE);
  assert.deepEqual([...policy.repositories.keys()], ['main', 'offsite']);
  assert.equal(policy.repositories.get('main')!.passwordFile, '/etc/amber/main.pass');
  const [finance] = policy.sources;
  assert.equal(finance.schedule.intervalMs(), 3_600_000);
  assert.equal(finance.rpoMs, 3_600_000);
  assert.equal(finance.rtoMs, 4 * 3_600_000);
  assert.equal(finance.retain?.dailyMs, 35 * 86_400_000);
  assert.equal(finance.retain?.mode, 'compliance');
  assert.deepEqual(finance.copyTo, ['offsite']);
  assert.deepEqual(
    policy.notify.map((target) => target.kind),
    ['webhook', 'email', 'ping'],
  );
  assert.equal(policy.notify[0].kind === 'webhook' && policy.notify[0].secretFile, '/etc/amber/hook.secret');
  assert.equal(policy.metrics.listen, '127.0.0.1:9464');
  assert.deepEqual(policy.warnings, []);
});

test('a typo of a key is named at its line and column, with the key meant', () => {
  const [required, problem, ...rest] = problemsOf(GOOD.replace('    schedule: every 1h', '    shedule: every 1h'));
  assert.deepEqual(rest, []);
  assert.equal(required, '5:5: sources[0] (finance) needs "schedule"');
  assert.match(problem, /^9:5: unknown key "shedule" in sources\[0\] \(finance\); did you mean "schedule"\?/);
});

test('an unknown top-level key is an error too', () => {
  assert.deepEqual(
    problemsOf(`${GOOD}metric: {}\n`).map((p) => p.replace(/ \(allowed.*/, '')),
    ['20:1: unknown key "metric" in the file; did you mean "metrics"?'],
  );
});

test('a wrong type says what to write', () => {
  const [problem] = problemsOf(GOOD.replace('paths: [/srv/finance]', 'paths: /srv/finance'));
  assert.match(
    problem,
    /^6:12: sources\[0\] \(finance\)\.paths must be a list, e\.g\. \[a, b\], not the string "\/srv\/finance"/,
  );
});

test('an unknown repository name lists the defined ones', () => {
  assert.deepEqual(problemsOf(GOOD.replace('repository: main', 'repository: mian')), [
    '8:17: unknown repository "mian"; did you mean "main"? (repositories: main, offsite)',
  ]);
  assert.deepEqual(problemsOf(GOOD.replace('copy-to: [offsite]', 'copy-to: [main]')), [
    '13:15: "main" is the source\'s own repository: copy to another one',
  ]);
});

test('schedules that do not parse, and durations that are not durations', () => {
  assert.deepEqual(problemsOf(GOOD.replace('schedule: every 1h', 'schedule: every hour')), [
    '9:15: "every hour" is not an interval: write every and a whole number with s, m, h or d, e.g. every 1h',
  ]);
  const [cron] = problemsOf(GOOD.replace('schedule: every 1h', 'schedule: "61 * * * *"'));
  assert.match(cron, /^9:15: "61 \* \* \* \*" is not a cron expression: /);
  const [rpo] = problemsOf(GOOD.replace('rpo: 1h', 'rpo: 1 hour'));
  assert.match(rpo, /^11:10: sources\[0\] \(finance\)\.rpo: "1 hour" is not valid \(A duration: a number and s, m/);
  const [mode] = problemsOf(GOOD.replace('mode: compliance', 'mode: compliant'));
  assert.match(
    mode,
    /^10:58: sources\[0\] \(finance\)\.retain\.mode: "compliant" is not one of governance, compliance; did you mean "compliance"\?/,
  );
});

test('YAML syntax errors and duplicate keys name their place', () => {
  const [syntax] = problemsOf(GOOD.replace('paths: [/srv/finance]', 'paths: [/srv/finance'));
  assert.match(syntax, /^\d+:\d+: .*\(YAML syntax\)$/);
  const [duplicate] = problemsOf(GOOD.replace('    rto: 4h\n', '    rto: 4h\n    rto: 5h\n'));
  assert.match(duplicate, /^13:5: Map keys must be unique \(YAML syntax\)$/);
});

test('every problem of the file at once, in file order; names, relative paths and notify entries checked', () => {
  const text = `repositories:
  main: { repo: /srv/amber }
sources:
  - name: a
    paths: [srv/a]
    repository: main
    schedule: every 1h
  - name: a
    paths: [/srv/b]
    repository: nowhere
    schedule: every 1x
copies:
  - { name: c, from: main, to: main, schedule: every 1d }
notify:
  - { ping: https://p.example, secret-file: s }
`;
  assert.deepEqual(problemsOf(text), [
    '5:13: the path "srv/a" is relative: write it absolute, e.g. /srv/srv/a',
    '8:11: the name "a" is taken already by sources[0]: names are unique',
    '10:17: unknown repository "nowhere" (repositories: main)',
    '11:15: "every 1x" is not an interval: write every and a whole number with s, m, h or d, e.g. every 1h',
    '13:32: "to" is "from" (main): a copy goes to another repository',
    '15:45: "secret-file" signs webhooks only: move it to a webhook entry',
  ]);
});

test('a notify entry is one kind of target', () => {
  const text = GOOD.replace(
    '  - ping: https://hc.example/ping/UUID',
    '  - { ping: https://p.example, webhook: https://h.example }\n  - { events: [backup.failed] }',
  );
  assert.deepEqual(problemsOf(text), [
    '18:5: notify[2] (One of webhook, email or ping, with an optional events filter): give exactly one of its kinds',
    '19:5: notify[3] (One of webhook, email or ping, with an optional events filter): give exactly one of its kinds',
  ]);
});

test('a schema problem in one entry is reported with the others', () => {
  const problems = problemsOf(`repositories: {}
sources:
  - name: x
    paths: []
    repository: main
    schedule: every 1h
    tags: yes
`);
  assert.deepEqual(
    problems.map((p) => p.split(':').slice(0, 2).join(':')),
    ['1:15', '4:12', '7:11'],
  );
});

test('an RPO shorter than the schedule is a warning, not an error', () => {
  const policy = parsePolicyText(GOOD.replace('rpo: 1h', 'rpo: 30m'), FILE);
  assert.equal(policy.warnings?.length, 1);
  assert.match(policy.warnings![0], /rpo 30m is shorter than the schedule "every 1h"/);
});

test("a notify entry's sources must be sources or copies of the file", () => {
  assert.deepEqual(
    problemsOf(
      GOOD.replace(
        '  - ping: https://hc.example/ping/UUID',
        '  - { ping: https://hc.example/ping/UUID, sources: [finanse] }',
      ),
    ),
    ['18:53: unknown source "finanse"; did you mean "finance"? (sources and copies: finance)'],
  );
  const policy = parsePolicyText(
    GOOD.replace(
      '  - ping: https://hc.example/ping/UUID',
      '  - { ping: https://hc.example/ping/UUID, sources: [finance] }',
    ),
    FILE,
  );
  assert.deepEqual(policy.notify[2].sources, ['finance']);
});

test('a YAML alias bomb is refused as a problem of the file, not expanded', () => {
  const levels = ['a: &a [x, x, x, x, x, x, x, x, x]'];
  for (const [i, name] of ['b', 'c', 'd', 'e', 'f'].entries()) {
    const previous = String.fromCharCode(97 + i);
    levels.push(`${name}: &${name} [${Array(9).fill(`*${previous}`).join(', ')}]`);
  }
  assert.deepEqual(problemsOf(`${levels.join('\n')}\n`), [
    '1:1: Excessive alias count indicates a resource exhaustion attack (YAML aliases)',
  ]);
});

test('__proto__ as a key is an invalid name, never a prototype', () => {
  const problems = problemsOf(GOOD.replace('  main:    {', '  __proto__: { repo: /x }\n  main:    {'));
  assert.deepEqual(problems, [
    `2:3: repositories: the key "__proto__" is not a valid name: a letter or digit, then letters, digits, '_' or '-', at most 63 in all`,
  ]);
});

test('a source’s drill: durations, defaults and a typo named', () => {
  const policy = parsePolicyText(
    GOOD.replace(
      '    rto: 4h\n',
      '    rto: 4h\n    drill: { every: 7d, within: 30d, checks: ["test -d $AMBER_DRILL_TARGET"], scratch: drills }\n',
    ),
    FILE,
  );
  const drill = policy.sources[0].drill!;
  assert.equal(drill.everyMs, 7 * 86_400_000);
  assert.equal(drill.withinMs, 30 * 86_400_000);
  assert.equal(drill.select, 'random');
  assert.equal(drill.graceMs, 86_400_000, 'grace: the interval, at most a day');
  assert.equal(drill.scratch, '/etc/amber/drills');
  assert.equal(drill.schedule.intervalMs(), 7 * 86_400_000);
  const [typo] = problemsOf(GOOD.replace('    rto: 4h\n', '    rto: 4h\n    drill: { evry: 7d }\n'));
  assert.match(typo, /^13:12: sources\[0\] \(finance\)\.drill needs "every"/);
});

test('a database source by url instead of paths; a password in it is refused at its line', () => {
  const text = `repositories:
  main: { repo: /srv/amber }
sources:
  - name: shop
    url: postgresql://backup@db1:5432/shop
    password-file: shop.pass
    repository: main
    schedule: every 1d
`;
  const [shop] = parsePolicyText(text, FILE).sources;
  assert.equal(shop.url, 'postgresql://backup@db1:5432/shop');
  assert.deepEqual(shop.paths, []);
  assert.equal(shop.passwordFile, '/etc/amber/shop.pass');
  assert.deepEqual(problemsOf(text.replace('backup@db1', 'backup:secret@db1')), [
    '5:10: the PostgreSQL URL has a password in it, which any user can read in `ps`',
  ]);
  const [neither] = problemsOf(text.replace('    url: postgresql://backup@db1:5432/shop\n', ''));
  assert.match(neither, /^4:5: sources\[0\] \(shop\).*give exactly one of its kinds/);
});

test('a mailbox source: token file, folder patterns and a message size limit; these keys only with an imap url', () => {
  const text = `repositories:
  main: { repo: /srv/amber }
sources:
  - name: mail
    url: imaps://alice@mail.example.org/
    token-file: alice.token
    folders: [INBOX, "Archive/*"]
    max-message-size: 50M
    repository: main
    schedule: every 6h
`;
  const [mail] = parsePolicyText(text, FILE).sources;
  assert.equal(mail.tokenFile, '/etc/amber/alice.token');
  assert.deepEqual(mail.folders, ['INBOX', 'Archive/*']);
  assert.equal(mail.maxMessageBytes, 50 * 1024 * 1024);
  const [onDatabase] = problemsOf(text.replace('imaps://alice@mail.example.org/', 'postgresql://backup@db1:5432/shop'));
  assert.match(onDatabase, /"token-file" applies to an imap/);
  const [badSize] = problemsOf(text.replace('50M', 'plenty'));
  assert.match(badSize, /^8:\d+: .*max-message-size/);
});

test('calendars, contacts and buckets by url; "versions" only with a bucket', () => {
  const text = `repositories:
  main: { repo: /srv/amber }
sources:
  - name: cal
    url: caldav://alice@dav.example.org/remote.php/dav/calendars/alice/
    password-file: cal.pass
    repository: main
    schedule: every 6h
  - name: media
    url: s3src+https://AKIAEXAMPLE@s3.example.net/media/photos
    password-file: media.secret
    versions: true
    repository: main
    schedule: every 1d
`;
  const [cal, media] = parsePolicyText(text, FILE).sources;
  assert.equal(cal.url, 'caldav://alice@dav.example.org/remote.php/dav/calendars/alice/');
  assert.equal(media.versions, true);
  assert.equal(media.passwordFile, '/etc/amber/media.secret');
  const [misplaced] = problemsOf(
    text
      .replace('    versions: true\n', '')
      .replace('    password-file: cal.pass\n', '    password-file: cal.pass\n    versions: true\n'),
  );
  assert.match(misplaced, /"versions" applies to an s3src/);
  const [secret] = problemsOf(text.replace('AKIAEXAMPLE@', 'AKIAEXAMPLE:topsecret@'));
  assert.match(secret, /has a secret in it/);
  assert.doesNotMatch(secret, /topsecret/);
});
