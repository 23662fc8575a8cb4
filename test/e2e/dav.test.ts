// Calendars and contacts as sources, against a real Radicale started in a scratch directory on
// 127.0.0.1 and watched through a proxy that counts the requests: an account's calendars (with
// their names, colours and component sets, events and a task) and its address book are backed up
// by URL, wiped, and restored; a digest of the account before equals the digest after. A second
// backup after one change, one deletion and one addition fetches only those two items (RFC 6578
// sync-collection), and the same holds by ETag when the server refuses sync-collection; each
// snapshot restores to its own point in time. A wrong password and a server that dies are said
// clearly and write no snapshot.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sourceCli } from '../../src/testing/cli-runner.ts';
import { type HttpProxy, startHttpProxy } from '../../src/testing/http-proxy.ts';
import { type RadicaleServer, startRadicale, whyNoRadicale } from '../../src/testing/radicale-server.ts';
import { removeTree } from '../../src/testing/repo-fixture.ts';

const PASSWORD = 'erin dav password';
let dav: RadicaleServer;
let proxy: HttpProxy;
let dir: string;
let repo: string;
const { ok, amber, amberAsync } = sourceCli({
  dir: () => dir,
  passphrase: 'the dav test passphrase',
  sourcePassword: () => PASSWORD,
});

/** A request straight to Radicale as erin (not through Amber). */
async function request(method: string, path: string, body?: string, headers: Record<string, string> = {}) {
  const response = await fetch(`http://127.0.0.1:${dav.port}${path}`, {
    method,
    body,
    headers: { authorization: `Basic ${Buffer.from(`erin:${PASSWORD}`).toString('base64')}`, ...headers },
  });
  const text = await response.text();
  assert.ok(response.status < 400, `${method} ${path}: ${response.status} ${text}`);
  return text;
}

const NS =
  'xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav" xmlns:A="urn:ietf:params:xml:ns:carddav" xmlns:I="http://apple.com/ns/ical/"';
const hrefs = (xml: string) => [...xml.matchAll(/<(?:\w+:)?href>([^<]+)<\/(?:\w+:)?href>/g)].map((m) => m[1]);
const sha = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 16);

/** Every collection under /erin/ (its path, name, colour and description) with each item's name and content hash. */
async function digest(): Promise<string[]> {
  const listing = await request(
    'PROPFIND',
    '/erin/',
    `<D:propfind ${NS}><D:prop><D:displayname/><I:calendar-color/><C:calendar-description/><A:addressbook-description/><C:supported-calendar-component-set/><D:resourcetype/></D:prop></D:propfind>`,
    { depth: '1' },
  );
  const out: string[] = [];
  for (const block of listing.split(/<\/(?:\w+:)?response>/).slice(0, -1)) {
    const [href] = hrefs(block);
    if (!href || href === '/erin/') continue;
    const props = (
      block.match(
        /<(?:\w+:)?(displayname|calendar-color|calendar-description|addressbook-description|comp name="[A-Z]+")[^>]*>([^<]*)/g,
      ) ?? []
    )
      .sort()
      .join(' ');
    const items = hrefs(
      await request('PROPFIND', href, `<D:propfind ${NS}><D:prop><D:getetag/></D:prop></D:propfind>`, { depth: '1' }),
    ).filter((h) => h !== href);
    const bodies = await Promise.all(
      items.map(async (item) => `${item.slice(href.length)}=${sha(await request('GET', item))}`),
    );
    out.push(`${href} ${props}: ${bodies.sort().join(' ')}`);
  }
  return out.sort();
}

const event = (uid: string, summary: string, day: number) =>
  `BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Amber test//EN\r\nBEGIN:VEVENT\r\nUID:${uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:202601${String(day).padStart(2, '0')}T090000Z\r\nDURATION:PT1H\r\nSUMMARY:${summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n`;
const card = (uid: string, name: string) =>
  `BEGIN:VCARD\r\nVERSION:3.0\r\nUID:${uid}\r\nFN:${name}\r\nN:${name.split(' ').reverse().join(';')};;;\r\nEMAIL:${uid}@example.org\r\nEND:VCARD\r\n`;

async function wipe(): Promise<void> {
  const listing = await request(
    'PROPFIND',
    '/erin/',
    `<D:propfind ${NS}><D:prop><D:resourcetype/></D:prop></D:propfind>`,
    { depth: '1' },
  );
  for (const href of hrefs(listing)) if (href !== '/erin/') await request('DELETE', href);
}

interface Backup {
  id: string;
  requests: Record<string, number>;
  source: {
    fetched: number;
    carried: number;
    items: number;
    collections: { name: string; by: string; items: number }[];
  };
}

async function backup(scheme: 'caldav' | 'carddav'): Promise<Backup> {
  proxy.reset();
  const run = await amberAsync(['backup', '--repo', repo, dav.url(scheme, 'erin', proxy.port), '--json']);
  assert.equal(run.status, 0, run.stderr);
  return { ...JSON.parse(run.stdout), requests: proxy.counts() };
}

describe('CalDAV and CardDAV sources', { skip: whyNoRadicale() }, () => {
  before(async () => {
    dav = await startRadicale();
    dav.addUser('erin', PASSWORD);
    proxy = await startHttpProxy({ host: '127.0.0.1', port: dav.port });
    dir = mkdtempSync(join(tmpdir(), 'amber-dav-test-'));
    repo = join(dir, 'repo');
    await request('PROPFIND', '/erin/', undefined, { depth: '0' }); // Radicale makes the home on first use
    await request(
      'MKCALENDAR',
      '/erin/work/',
      `<C:mkcalendar ${NS}><D:set><D:prop><D:displayname>Work ☕</D:displayname><I:calendar-color>#ff8800ff</I:calendar-color><C:calendar-description>meetings &amp; deadlines</C:calendar-description><C:supported-calendar-component-set><C:comp name="VEVENT"/><C:comp name="VTODO"/></C:supported-calendar-component-set></D:prop></D:set></C:mkcalendar>`,
    );
    await request(
      'MKCALENDAR',
      '/erin/home/',
      `<C:mkcalendar ${NS}><D:set><D:prop><D:displayname>Home</D:displayname></D:prop></D:set></C:mkcalendar>`,
    );
    for (let n = 1; n <= 5; n++)
      await request('PUT', `/erin/work/e${n}.ics`, event(`work-${n}`, `Meeting ${n} – Größe`, n), {
        'content-type': 'text/calendar',
      });
    await request(
      'PUT',
      '/erin/work/todo.ics',
      'BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Amber test//EN\r\nBEGIN:VTODO\r\nUID:todo-1\r\nDTSTAMP:20260101T000000Z\r\nSUMMARY:file the report\r\nEND:VTODO\r\nEND:VCALENDAR\r\n',
      { 'content-type': 'text/calendar' },
    );
    for (let n = 1; n <= 2; n++)
      await request('PUT', `/erin/home/h${n}.ics`, event(`home-${n}`, `Dinner ${n}`, 10 + n), {
        'content-type': 'text/calendar',
      });
    await request(
      'MKCOL',
      '/erin/contacts/',
      `<D:mkcol ${NS}><D:set><D:prop><D:resourcetype><D:collection/><A:addressbook/></D:resourcetype><D:displayname>Contacts</D:displayname><A:addressbook-description>people</A:addressbook-description></D:prop></D:set></D:mkcol>`,
    );
    for (const [uid, name] of [
      ['ann', 'Ann Example'],
      ['bo', 'Bo Jørgensen'],
      ['cy', 'Cy Ng'],
    ])
      await request('PUT', `/erin/contacts/${uid}.vcf`, card(uid, name), { 'content-type': 'text/vcard' });
    ok(['init', '--repo', repo]);
  });
  after(async () => {
    await proxy?.close();
    await dav?.stop();
    if (dir) await removeTree(dir);
  });

  test('calendars and an address book backed up by URL, wiped, and restored: the account digest is the same', async () => {
    const before = await digest();
    const calendars = await backup('caldav');
    assert.equal(calendars.source.items, 8);
    assert.deepEqual(calendars.source.collections.map((c) => c.name).sort(), ['home', 'work']);
    const contacts = await backup('carddav');
    assert.equal(contacts.source.items, 3);
    assert.match(ok(['ls', '--repo', repo, calendars.id, '/caldav']).stdout, /\/caldav\/work\/items\/e1\.ics/);
    await wipe();
    assert.notDeepEqual(await digest(), before);
    const restored = JSON.parse(
      ok(['restore', calendars.id, '--repo', repo, '--to', dav.url('caldav', 'erin'), '--json']).stdout,
    );
    assert.equal(restored.put, 8);
    assert.equal(restored.created, 2);
    ok(['restore', contacts.id, '--repo', repo, '--to', dav.url('carddav', 'erin')]);
    assert.deepEqual(await digest(), before);
    const again = JSON.parse(
      ok(['restore', calendars.id, '--repo', repo, '--to', dav.url('caldav', 'erin'), '--json']).stdout,
    );
    assert.deepEqual([again.put, again.present, again.created], [0, 8, 0], 'a repeated restore writes nothing');
    const wrongKind = amber(['restore', contacts.id, '--repo', repo, '--to', dav.url('caldav', 'erin')]);
    assert.equal(wrongKind.status, 2);
    assert.match(wrongKind.stderr, /is a carddav backup: --to takes a carddav:\/\/ URL/);
  });

  test('the next backup fetches only what changed, by sync token and by ETag; each snapshot restores to its own time', async () => {
    const first = await backup('caldav');
    const atFirst = await digest();
    await request('PUT', '/erin/work/e2.ics', event('work-2', 'Meeting 2, moved', 20), {
      'content-type': 'text/calendar',
    });
    await request('DELETE', '/erin/work/e3.ics');
    await request('PUT', '/erin/home/h3.ics', event('home-3', 'Party', 13), { 'content-type': 'text/calendar' });
    const atSecond = await digest();
    const second = await backup('caldav');
    assert.equal(second.requests.GET, 2, `requests: ${JSON.stringify(second.requests)}`);
    assert.equal(second.source.fetched, 2);
    assert.equal(second.source.carried, 6);
    assert.equal(second.source.items, 8);
    assert.ok(second.source.collections.every((c) => c.by === 'sync-token'));
    const still = await backup('caldav');
    assert.equal(still.requests.GET ?? 0, 0, 'no change: no item fetched');

    // A server without sync-collection: listed by ETag, still only the changed item is fetched.
    await request('PUT', '/erin/home/h1.ics', event('home-1', 'Dinner 1, later', 14), {
      'content-type': 'text/calendar',
    });
    const atThird = await digest();
    proxy.refuse('REPORT', 501);
    const third = await backup('caldav').finally(() => proxy.refuse(undefined));
    assert.equal(third.requests.GET, 1, `requests: ${JSON.stringify(third.requests)}`);
    assert.ok(third.source.collections.every((c) => c.by === 'etag'));

    for (const [snapshot, expected] of [
      [first.id, atFirst],
      [second.id, atSecond],
      [third.id, atThird],
    ] as const) {
      await wipe();
      ok(['restore', snapshot, '--repo', repo, '--to', dav.url('caldav', 'erin')]);
      // The address book is not in a caldav snapshot: compare the calendars only.
      const calendarsOnly = (lines: readonly string[]) => lines.filter((line) => !line.startsWith('/erin/contacts/'));
      assert.deepEqual(calendarsOnly(await digest()), calendarsOnly(expected), `snapshot ${snapshot.slice(0, 8)}`);
    }
  });

  test('the policy file: calendars and contacts by url with a password file, backed up by amber run', async () => {
    writeFileSync(join(dir, 'erin.pass'), `${PASSWORD}\n`);
    const file = join(dir, 'policy.yaml');
    writeFileSync(
      file,
      `repositories:
  main: { repo: ${repo} }
sources:
  - name: erin-calendars
    url: ${dav.url('caldav', 'erin')}
    password-file: erin.pass
    repository: main
    schedule: every 6h
  - name: erin-contacts
    url: ${dav.url('carddav', 'erin')}
    password-file: erin.pass
    repository: main
    schedule: every 6h
state-dir: state
`,
    );
    for (const name of ['erin-calendars', 'erin-contacts']) {
      const run = await amberAsync(['run', name, '--config', file, '--json'], { AMBER_SOURCE_PASSWORD: '' });
      assert.equal(run.status, 0, run.stderr);
      const outcome = JSON.parse(run.stdout);
      assert.equal(outcome.status, 'succeeded');
      const listed = JSON.parse(ok(['snapshots', '--repo', repo, '--json']).stdout).find(
        (s: { id: string }) => s.id === outcome.snapshot,
      );
      assert.equal(listed.source.kind, name.endsWith('calendars') ? 'caldav' : 'carddav');
      // The calendars are there (the test before restored them); the address book was wiped with the account.
      assert.ok(Array.isArray(listed.source.collections));
      if (name === 'erin-calendars') assert.ok(listed.source.items > 0);
    }
  });

  test('a wrong password and a server that dies mid-backup are said clearly; no snapshot is written', async () => {
    const count = JSON.parse(ok(['snapshots', '--repo', repo, '--json']).stdout).length;
    const wrong = await amberAsync(['backup', '--repo', repo, dav.url('caldav', 'erin')], {
      AMBER_SOURCE_PASSWORD: 'nope',
    });
    assert.equal(wrong.status, 1, wrong.stderr);
    assert.match(wrong.stderr, /refused the login of erin .*\[SOURCE_AUTH_FAILED\]/);
    await request('PUT', '/erin/work/e9.ics', event('work-9', 'late', 9), { 'content-type': 'text/calendar' });
    await request('PUT', '/erin/work/e10.ics', event('work-10', 'later', 10), { 'content-type': 'text/calendar' });
    proxy.reset();
    proxy.failFrom(4);
    const cut = await amberAsync(['backup', '--repo', repo, dav.url('caldav', 'erin', proxy.port)]);
    proxy.failFrom(undefined);
    assert.equal(cut.status, 1, cut.stderr);
    assert.match(
      cut.stderr,
      /the CalDAV server caldav\+http:\/\/erin@127\.0\.0\.1:\d+\/erin\/ could not be reached.*\[SOURCE_UNREACHABLE\]/,
    );
    assert.equal(JSON.parse(ok(['snapshots', '--repo', repo, '--json']).stdout).length, count);
    const http = amber(['backup', '--repo', repo, 'caldav://erin:secret@127.0.0.1/erin/']);
    assert.equal(http.status, 2);
    assert.match(http.stderr, /has a password in it/);
    assert.doesNotMatch(http.stderr, /secret/);
  });
});
