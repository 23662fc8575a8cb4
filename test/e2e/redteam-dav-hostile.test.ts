// Red team: the CalDAV source against a hostile (or merely unusual) server, a node:http server of
// the test's own on 127.0.0.1 (src/testing/redteam-dav-server.ts) answering PROPFIND, REPORT and
// GET with crafted XML. Each test states what should hold; the ones that fail are findings. The
// "held up" group shows attacks that did not work: hrefs outside the collection or on another
// origin, a home on another origin, XML bombs, a redirect that would carry the password elsewhere.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDavUrl, parseMultistatus } from '../../src/source/dav/dav-client.ts';
import { checkStoredCollection } from '../../src/source/dav/dav.ts';
import { restoreDav } from '../../src/source/dav/dav-restore.ts';
import { sourceCli } from '../../src/testing/cli-runner.ts';
import { removeTree } from '../../src/testing/repo-fixture.ts';
import {
  CountingCalendar,
  calendarServer,
  event,
  type FakeItem,
  multistatus,
  responseXml,
  type SeenRequest,
  startFakeDav,
} from '../../src/testing/redteam-dav-server.ts';

const PASSWORD = 'hunter2 dav secret';
let dir: string;
let repo: string;
const { ok, amber, amberAsync } = sourceCli({
  dir: () => dir,
  passphrase: 'the dav red team passphrase',
  sourcePassword: () => PASSWORD,
});
const CALENDAR = '<D:resourcetype><D:collection/><C:calendar/></D:resourcetype>';
const calendar = (items: Record<string, string>) =>
  new Map(Object.entries(items).map(([name, body], n) => [name, { body, etag: `"e${n}"` } as FakeItem]));
const urlOf = (port: number) => `caldav+http://u@127.0.0.1:${port}/u/`;
const BASIC = Buffer.from(`u:${PASSWORD}`).toString('base64');
const SECRET = new RegExp(`${PASSWORD}|${BASIC.slice(0, 12)}`);

/** A backup of the fake server's /u/: the run, and the snapshot (JSON) when it succeeded. */
async function backup(port: number) {
  const run = await amberAsync(['backup', '--repo', repo, urlOf(port), '--json']);
  return { run, snapshot: run.status === 0 ? JSON.parse(run.stdout) : undefined };
}
/** The paths below `path` in a snapshot. */
const filesOf = (id: string, path: string) =>
  ok(['ls', '--repo', repo, id, path])
    .stdout.split('\n')
    .map((line) => line.split(' ').at(-1)!)
    .filter((p) => p.startsWith(`${path}/`));

describe('red team: CalDAV against a hostile server', () => {
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'amber-redteam-dav-'));
    repo = join(dir, 'repo');
    ok(['init', '--repo', repo]);
  });
  after(async () => {
    if (dir) await removeTree(dir);
  });

  test('an href written with an XML character reference (&#39; for an apostrophe) is backed up, not silently dropped', async () => {
    const items = calendar({ 'a.ics': event('a', 'A'), "john's birthday.ics": event('j', 'John') });
    const server = await startFakeDav(
      calendarServer(new Map([['work', items]]), {
        override: (r) =>
          r.method === 'PROPFIND' && r.path === '/u/work/'
            ? multistatus([
                responseXml('/u/work/', CALENDAR),
                responseXml('/u/work/a.ics', '<D:getetag>"e0"</D:getetag>'),
                // Valid XML: &#39; is the apostrophe.
                responseXml('/u/work/john&#39;s%20birthday.ics', '<D:getetag>"e1"</D:getetag>'),
              ])
            : undefined,
      }),
    );
    try {
      const { run, snapshot } = await backup(server.port);
      assert.equal(run.status, 0, run.stderr);
      const gets = server.requests.filter((r) => r.method === 'GET').map((r) => r.path);
      assert.equal(
        snapshot.source.items,
        2,
        `the server has 2 items; Amber stored ${snapshot.source.items} (GETs: ${gets.join(', ')}), partial=${snapshot.partial}, warnings=${JSON.stringify(snapshot.warnings)}`,
      );
    } finally {
      await server.close();
    }
  });

  test('a calendar and an item whose names hold an encoded slash (%2F) are backed up, or the backup says they were left out', async () => {
    // docs/dav.md: "<name> the collection's own path segment (a / or % in it as %2f, %25)".
    const server = await startFakeDav(
      calendarServer(
        new Map([
          ['team/shared', calendar({ 'x.ics': event('x', 'X') })],
          ['work', calendar({ 'a.ics': event('a', 'A'), 'http:/b.ics': event('b', 'B') })],
        ]),
      ),
    );
    try {
      const { run, snapshot } = await backup(server.port);
      assert.equal(run.status, 0, run.stderr);
      const names = snapshot.source.collections.map((c: { name: string }) => c.name);
      const said = snapshot.partial || snapshot.warnings.length > 0;
      assert.ok(
        said || (names.includes('team/shared') && snapshot.source.items === 3),
        `the server has 2 calendars and 3 items; the snapshot has ${JSON.stringify(names)} with ${snapshot.source.items} items, partial=${snapshot.partial}, no warning`,
      );
    } finally {
      await server.close();
    }
  });

  test('absolute hrefs that name the server by another host name do not make a silently empty snapshot', async () => {
    // A server behind a reverse proxy often writes absolute hrefs with its own idea of its name.
    let port = 0;
    const abs = (path: string) => `http://localhost:${port}${path}`;
    const server = await startFakeDav((r: SeenRequest) => {
      if (r.method === 'PROPFIND' && r.path === '/u/')
        return r.headers.depth === '0'
          ? multistatus([responseXml(abs('/u/'), '<D:resourcetype><D:collection/></D:resourcetype>')])
          : multistatus([
              responseXml(abs('/u/'), '<D:resourcetype><D:collection/></D:resourcetype>'),
              responseXml(abs('/u/work/'), CALENDAR),
            ]);
      if (r.method === 'PROPFIND' && r.path === '/u/work/')
        return multistatus([
          responseXml(abs('/u/work/'), CALENDAR),
          responseXml(abs('/u/work/a.ics'), '<D:getetag>"1"</D:getetag>'),
        ]);
      if (r.method === 'GET' && r.path === '/u/work/a.ics')
        return { status: 200, headers: { etag: '"1"' }, body: event('a', 'A') };
      return { status: 501 };
    });
    port = server.port;
    try {
      const { run, snapshot } = await backup(server.port);
      const empty = run.status === 0 && snapshot.source.items === 0 && snapshot.source.collections.length === 0;
      assert.ok(
        !empty || snapshot.partial || snapshot.warnings.length > 0,
        `the account has 1 calendar with 1 event; the backup exited ${run.status} with an empty snapshot (0 collections, 0 items) and no warning`,
      );
    } finally {
      await server.close();
    }
  });

  test('a server that drops the connection in the middle of an answer is SOURCE_UNREACHABLE, not an "unexpected error"', async () => {
    const server = await startFakeDav(
      calendarServer(new Map([['work', calendar({ 'a.ics': event('a', 'A') })]]), {
        override: (r) => (r.method === 'GET' ? 'cut-body' : undefined),
      }),
    );
    try {
      const { run } = await backup(server.port);
      assert.equal(run.status, 1);
      assert.doesNotMatch(run.stderr, /unexpected error|this is a bug|TypeError/, run.stderr);
      assert.match(`${run.stdout}${run.stderr}`, /SOURCE_UNREACHABLE/);
    } finally {
      await server.close();
    }
  });

  test('an href that is not a URL in a sync-collection answer is a clear SOURCE_FAILED, not a crash', async () => {
    const server = await startFakeDav(
      calendarServer(new Map([['work', calendar({ 'a.ics': event('a', 'A') })]]), {
        report: () => multistatus([responseXml('http://[not-a-host/u/work/a.ics', '<D:getetag>"1"</D:getetag>')], 't1'),
      }),
    );
    try {
      const { run } = await backup(server.port);
      assert.doesNotMatch(run.stderr, /unexpected error|this is a bug|TypeError/, run.stderr);
      assert.ok(run.status === 0 || /SOURCE_FAILED/.test(`${run.stdout}${run.stderr}`), run.stderr);
    } finally {
      await server.close();
    }
  });

  for (const token of [undefined, 'the same token again'] as const)
    test(`a truncated sync-collection answer (507) with ${token ? 'the token it was sent' : 'no token'} is not taken as the whole collection`, async () => {
      const items = calendar({ '1.ics': event('1', 'one'), '2.ics': event('2', 'two'), '3.ics': event('3', 'three') });
      const server = await startFakeDav(
        calendarServer(new Map([['work', items]]), {
          // Only the first item, and the collection itself marked 507: "there is more" (RFC 6578 §3.6).
          report: (r) =>
            multistatus(
              [responseXml('/u/work/1.ics', '<D:getetag>"e0"</D:getetag>'), responseXml('/u/work/', '', 507)],
              token === undefined ? undefined : /<D:sync-token>([^<]*)</.exec(r.body)?.[1] || 'tok-1',
            ),
        }),
      );
      try {
        const { run, snapshot } = await backup(server.port);
        const silent = run.status === 0 && snapshot.source.items < 3 && !snapshot.partial && !snapshot.warnings.length;
        assert.ok(
          !silent,
          `the calendar has 3 items; the snapshot holds ${snapshot?.source.items}, not partial, no warning (${server.requests.filter((r) => r.method === 'REPORT').length} REPORTs)`,
        );
      } finally {
        await server.close();
      }
    });

  test('a sync token that a calendar made again reuses does not resurrect deleted items or lose new ones (simulated Sabre-style counter)', async () => {
    const work = new CountingCalendar();
    const calendars = new Map([['work', work.items]]);
    const server = await startFakeDav(calendarServer(calendars, { report: (r) => work.report(r, '/u/work/') }));
    try {
      work.put('old-1.ics', event('old-1', 'deleted with the old calendar'));
      work.put('old-2.ics', event('old-2', 'deleted with the old calendar'));
      const first = await backup(server.port);
      assert.equal(first.run.status, 0, first.run.stderr);
      assert.equal(first.snapshot.source.collections[0].syncToken, 'http://sabre.io/ns/sync/3');
      // The calendar is deleted and made again under the same URL (an import, a reset): its log starts from 1.
      work.recreate();
      calendars.set('work', work.items);
      work.put('new-1.ics', event('new-1', 'new'));
      work.put('new-2.ics', event('new-2', 'new'));
      work.put('new-3.ics', event('new-3', 'new'));
      const second = await backup(server.port);
      assert.equal(second.run.status, 0, second.run.stderr);
      const stored = filesOf(second.snapshot.id, '/caldav/work/items').map((p) => p.split('/').at(-1));
      assert.deepEqual(
        stored.sort(),
        ['new-1.ics', 'new-2.ics', 'new-3.ics'],
        `the server holds new-1, new-2, new-3; the snapshot (by ${second.snapshot.source.collections[0].by}) holds ${stored.join(', ')}`,
      );
    } finally {
      await server.close();
    }
  });

  test('an item whose GET answered 404 once (a lagging replica) is in the next snapshot, not left out of every later one', async () => {
    const work = new CountingCalendar();
    work.put('a.ics', event('a', 'A'));
    work.put('b.ics', event('b', 'B'));
    let lagging = true;
    const server = await startFakeDav(
      calendarServer(new Map([['work', work.items]]), {
        report: (r) => work.report(r, '/u/work/'),
        override: (r) => {
          if (lagging && r.method === 'GET' && r.path === '/u/work/b.ics') {
            lagging = false;
            return { status: 404 };
          }
          return undefined;
        },
      }),
    );
    try {
      const first = await backup(server.port);
      assert.equal(first.run.status, 0, first.run.stderr);
      const later = [];
      for (let n = 0; n < 2; n++) {
        const next = await backup(server.port);
        assert.equal(next.run.status, 0, next.run.stderr);
        later.push(filesOf(next.snapshot.id, '/caldav/work/items').map((p) => p.split('/').at(-1)));
      }
      assert.deepEqual(
        later,
        [
          ['a.ics', 'b.ics'],
          ['a.ics', 'b.ics'],
        ],
        `b.ics is on the server all along; first snapshot: ${first.snapshot.source.items} items (partial=${first.snapshot.partial}, ${first.snapshot.warnings.length} warnings)`,
      );
    } finally {
      await server.close();
    }
  });

  test('one item listed twice (two spellings of its href) is backed up once, or refused with an error naming the server', async () => {
    const server = await startFakeDav(
      calendarServer(new Map([['work', calendar({ 'a b.ics': event('a', 'A') })]]), {
        override: (r) =>
          r.method === 'PROPFIND' && r.path === '/u/work/'
            ? multistatus([
                responseXml('/u/work/', CALENDAR),
                responseXml('/u/work/a%20b.ics', '<D:getetag>"e0"</D:getetag>'),
                responseXml('/u/work/a b.ics', '<D:getetag>"e0"</D:getetag>'),
              ])
            : undefined,
      }),
    );
    try {
      const { run, snapshot } = await backup(server.port);
      if (run.status === 0) assert.equal(snapshot.source.items, 1);
      else assert.match(run.stderr, /127\.0\.0\.1/, `an error that names neither server nor collection: ${run.stderr}`);
    } finally {
      await server.close();
    }
  });

  test('a forged collection.json whose content type holds a NUL is refused as OBJECT_CORRUPT, not reported as an unreachable server', async () => {
    const server = await startFakeDav(calendarServer(new Map([['work', calendar({})]])));
    try {
      const forged = {
        version: 1,
        kind: 'calendar',
        name: 'work',
        href: '/u/work/',
        displayName: null,
        description: null,
        color: null,
        order: null,
        components: [],
        timezone: null,
        syncToken: null,
        ctag: null,
        items: [{ name: 'x.ics', etag: null, contentType: 'text/calendar\u0000; x=1', size: 1 }],
      };
      let stored: ReturnType<typeof checkStoredCollection>;
      try {
        stored = checkStoredCollection(forged, 'collection.json');
      } catch (error) {
        assert.equal((error as { code?: string }).code, 'OBJECT_CORRUPT');
        return;
      }
      const error = await restoreDav({
        target: parseDavUrl(urlOf(server.port)),
        access: { password: PASSWORD },
        collections: [{ stored, item: async () => Buffer.from(event('x', 'X')) }],
      }).then(
        () => undefined,
        (e: { code?: string; message?: string }) => e,
      );
      assert.ok(error, 'the restore did not fail');
      assert.notEqual(error.code, 'SOURCE_UNREACHABLE', `a snapshot fault reported as: ${error.message}`);
    } finally {
      await server.close();
    }
  });

  for (const url of [
    'caldav://alice@example.org:S3CRET-app-password@127.0.0.1:99999/alice/',
    'carddav://alice@example.org:S3CRET-app-password@dav example.org/alice/',
  ])
    test(`a password in a URL whose user name holds an @ (an e-mail address) is never shown: ${url.replace(/:S3CRET[^@]*@/, ':…@')}`, () => {
      const run = amber(['backup', '--repo', repo, url]);
      assert.equal(run.status, 2, run.stderr);
      assert.doesNotMatch(`${run.stdout}${run.stderr}`, /S3CRET-app-password/, run.stderr);
    });

  test('restore --to with a wrong scheme and an @ in the user name never shows the password', async () => {
    const server = await startFakeDav(calendarServer(new Map([['work', calendar({ 'a.ics': event('a', 'A') })]])));
    try {
      const { run: made, snapshot } = await backup(server.port);
      assert.equal(made.status, 0, made.stderr);
      const to = `caldav+https://alice@example.org:S3CRET-app-password@127.0.0.1:${server.port}/u/`;
      const run = amber(['restore', snapshot.id, '--repo', repo, '--to', to]);
      assert.notEqual(run.status, 0);
      assert.doesNotMatch(`${run.stdout}${run.stderr}`, /S3CRET-app-password/, run.stderr);
    } finally {
      await server.close();
    }
  });

  test('a server error page that echoes the request headers does not put the password (its Basic form) into Amber’s error', async () => {
    // Debug error pages (a framework's, a misconfigured proxy's) print the request's headers.
    const server = await startFakeDav((r) => ({
      status: 500,
      body: `<pre>Authorization: ${r.headers.authorization}</pre>`,
    }));
    try {
      const { run } = await backup(server.port);
      assert.equal(run.status, 1);
      assert.doesNotMatch(`${run.stdout}${run.stderr}`, SECRET, run.stderr);
    } finally {
      await server.close();
    }
  });

  test('a restore that the server refuses half-way says what stays in the account, not that no snapshot was written', async () => {
    const server = await startFakeDav(
      calendarServer(new Map([['work', calendar({})]]), {
        override: (r) => (r.method === 'PUT' ? { status: 500, body: 'disk full' } : undefined),
      }),
    );
    try {
      const stored = checkStoredCollection(
        {
          version: 1,
          kind: 'calendar',
          name: 'work',
          href: '/u/work/',
          displayName: null,
          description: null,
          color: null,
          order: null,
          components: [],
          timezone: null,
          syncToken: null,
          ctag: null,
          items: [{ name: 'x.ics', etag: null, contentType: null, size: 1 }],
        },
        'collection.json',
      );
      const error = await restoreDav({
        target: parseDavUrl(urlOf(server.port)),
        access: { password: PASSWORD },
        collections: [{ stored, item: async () => Buffer.from(event('x', 'X')) }],
      }).then(
        () => undefined,
        (e: { code?: string; message?: string; hint?: string }) => e,
      );
      assert.equal(error?.code, 'SOURCE_FAILED', error?.message);
      assert.match(error.message ?? '', /disk full/);
      assert.doesNotMatch(error.hint ?? '', /snapshot/);
      assert.match(error.hint ?? '', /stays in the account/);
    } finally {
      await server.close();
    }
  });

  test('an item larger than Amber holds in memory is left out with a warning; the others are kept', async () => {
    const items = calendar({ 'a.ics': event('a', 'A'), 'huge.ics': 'x'.repeat(65 * 1024 * 1024) });
    const server = await startFakeDav(calendarServer(new Map([['work', items]])));
    try {
      const { run } = await backup(server.port);
      assert.equal(run.status, 3, run.stderr);
      const snapshot = JSON.parse(run.stdout);
      assert.equal(snapshot.source.items, 1);
      assert.deepEqual(
        snapshot.warnings.map((w: { path: string; code: string }) => [w.path, w.code]),
        [['/caldav/work/items/huge.ics', 'SOURCE_TOO_LARGE']],
      );
    } finally {
      await server.close();
    }
  });

  describe('held up', () => {
    test('hrefs outside the collection, on another origin or with dot segments are never fetched nor stored; odd names stay inside items/', async () => {
      const items = calendar({
        'a.ics': event('a', 'A'),
        'collection.json': event('c', 'named collection.json'),
        items: event('i', 'named items'),
        '%2e%2e': event('d', 'percent dots'),
      });
      const server = await startFakeDav(
        calendarServer(new Map([['work', items]]), {
          override: (r) =>
            r.method === 'PROPFIND' && r.path === '/u/work/'
              ? multistatus([
                  responseXml('/u/work/', CALENDAR),
                  responseXml('/u/work/a.ics', '<D:getetag>"e0"</D:getetag>'),
                  responseXml('/u/work/collection.json', '<D:getetag>"e1"</D:getetag>'),
                  responseXml('/u/work/items', '<D:getetag>"e2"</D:getetag>'),
                  responseXml('/u/work/%252e%252e', '<D:getetag>"e3"</D:getetag>'),
                  responseXml('/u/work/../other/x.ics', '<D:getetag>"x"</D:getetag>'),
                  responseXml('/u/work/%2e%2e/other/y.ics', '<D:getetag>"x"</D:getetag>'),
                  responseXml('/u/work/%2E%2E', '<D:getetag>"x"</D:getetag>'),
                  responseXml('/u/work/sub%2F..%2F..%2Fz.ics', '<D:getetag>"x"</D:getetag>'),
                  responseXml('http://127.0.0.1:1/u/work/evil.ics', '<D:getetag>"x"</D:getetag>'),
                  responseXml('//127.0.0.1:1/u/work/evil2.ics', '<D:getetag>"x"</D:getetag>'),
                  responseXml('/u/work/deeper/w.ics', '<D:getetag>"x"</D:getetag>'),
                ])
              : undefined,
        }),
      );
      try {
        const { run, snapshot } = await backup(server.port);
        assert.equal(run.status, 0, run.stderr);
        const gets = server.requests.filter((r) => r.method === 'GET').map((r) => r.path);
        assert.deepEqual(gets.sort(), [
          '/u/work/%252e%252e',
          '/u/work/a.ics',
          '/u/work/collection.json',
          '/u/work/items',
        ]);
        assert.deepEqual(filesOf(snapshot.id, '/caldav').sort(), [
          '/caldav/work',
          '/caldav/work/collection.json',
          '/caldav/work/items',
          '/caldav/work/items/%252e%252e',
          '/caldav/work/items/a.ics',
          '/caldav/work/items/collection.json',
          '/caldav/work/items/items',
        ]);
      } finally {
        await server.close();
      }
    });

    test('a redirect to another origin does not carry the password there', async () => {
      const other = await startFakeDav(() => multistatus([responseXml('/u/', CALENDAR)]));
      const server = await startFakeDav((r) =>
        r.method === 'PROPFIND'
          ? { status: 307, headers: { location: `http://localhost:${other.port}/u/` } }
          : { status: 404 },
      );
      try {
        await backup(server.port);
        assert.ok(other.requests.length > 0, 'the redirect was followed');
        for (const r of other.requests) assert.equal(r.headers.authorization, undefined);
        assert.ok(server.requests.every((r) => r.headers.authorization?.startsWith('Basic ')));
      } finally {
        await server.close();
        await other.close();
      }
    });

    test('a home set on another origin is refused', async () => {
      const server = await startFakeDav(
        calendarServer(new Map([['work', calendar({})]]), {
          override: (r) =>
            r.method === 'PROPFIND' && r.path === '/u/' && r.headers.depth === '0'
              ? multistatus([
                  responseXml(
                    '/u/',
                    '<D:resourcetype><D:collection/></D:resourcetype><C:calendar-home-set><D:href>//127.0.0.1:1/u/</D:href></C:calendar-home-set>',
                  ),
                ])
              : undefined,
        }),
      );
      try {
        const { run } = await backup(server.port);
        assert.equal(run.status, 1);
        assert.match(run.stderr, /names a home on another server/);
      } finally {
        await server.close();
      }
    });

    test('a refused login and the snapshot record never show the password', async () => {
      const refusing = await startFakeDav(() => ({ status: 401, headers: { 'www-authenticate': 'Basic realm="x"' } }));
      const fine = await startFakeDav(calendarServer(new Map([['work', calendar({ 'a.ics': event('a', 'A') })]])));
      try {
        const { run } = await backup(refusing.port);
        assert.equal(run.status, 1);
        assert.match(`${run.stdout}${run.stderr}`, /SOURCE_AUTH_FAILED/);
        assert.doesNotMatch(`${run.stdout}${run.stderr}`, SECRET);
        const { snapshot } = await backup(fine.port);
        assert.doesNotMatch(JSON.stringify(snapshot), SECRET);
        assert.doesNotMatch(ok(['snapshots', '--repo', repo, '--json']).stdout, SECRET);
      } finally {
        await refusing.close();
        await fine.close();
      }
    });

    test('XML bombs, deep nesting, external entities and __proto__ are refused or inert', () => {
      const laughs = `<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;"><!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;"><!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">]><multistatus xmlns="DAV:"><response><href>/c/&f;</href></response></multistatus>`;
      const started = Date.now();
      const parsed = parseMultistatus(Buffer.from(laughs), 'srv');
      assert.ok(Date.now() - started < 2000);
      assert.ok(parsed.members[0].href.length < 100, 'the entities were not expanded');
      const big = `<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "${'x'.repeat(1_000_000)}">]><multistatus xmlns="DAV:"><response><href>/c/x</href><propstat><prop><getetag>${'&a;'.repeat(2000)}</getetag></prop><status>HTTP/1.1 200 OK</status></propstat></response></multistatus>`;
      assert.throws(() => parseMultistatus(Buffer.from(big), 'srv'), { code: 'SOURCE_FAILED' });
      const deep = `<multistatus xmlns="DAV:"><response><href>/c/x</href><propstat><prop>${'<a>'.repeat(200_000)}${'</a>'.repeat(200_000)}</prop><status>HTTP/1.1 200 OK</status></propstat></response></multistatus>`;
      assert.throws(() => parseMultistatus(Buffer.from(deep), 'srv'), { code: 'SOURCE_FAILED' });
      const external = `<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><multistatus xmlns="DAV:"><response><href>/c/&x;</href></response></multistatus>`;
      assert.throws(() => parseMultistatus(Buffer.from(external), 'srv'), { code: 'SOURCE_FAILED' });
      const proto = `<multistatus xmlns="DAV:"><response><href>/c/x</href><propstat><prop><__proto__><polluted>yes</polluted></__proto__></prop><status>HTTP/1.1 200 OK</status></propstat></response></multistatus>`;
      assert.throws(() => parseMultistatus(Buffer.from(proto), 'srv'), { code: 'SOURCE_FAILED' });
      assert.equal(({} as Record<string, unknown>).polluted, undefined);
    });
  });
});
