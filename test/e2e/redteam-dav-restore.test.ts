// Red team: restores of calendar snapshots into a real Radicale (127.0.0.1, a scratch directory)
// where the account is not empty — the case a restore exists for: a calendar still there with some
// events lost, an event a client made again under another name, a --to URL that names one calendar.
// Each test states what should hold; the ones that fail are findings.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sourceCli } from '../../src/testing/cli-runner.ts';
import { type RadicaleServer, startRadicale, whyNoRadicale } from '../../src/testing/radicale-server.ts';
import { removeTree } from '../../src/testing/repo-fixture.ts';
import { event } from '../../src/testing/redteam-dav-server.ts';

const PASSWORD = 'radicale red team password';
let dav: RadicaleServer;
let dir: string;
let repo: string;
const { ok, amber } = sourceCli({
  dir: () => dir,
  passphrase: 'the dav red team passphrase',
  sourcePassword: () => PASSWORD,
});

/** A request straight to Radicale as the user the path starts with (not through Amber). */
async function request(method: string, path: string, body?: string, headers: Record<string, string> = {}) {
  const response = await fetch(`http://127.0.0.1:${dav.port}${path}`, {
    method,
    body,
    headers: {
      authorization: `Basic ${Buffer.from(`${path.split('/')[1]}:${PASSWORD}`).toString('base64')}`,
      ...headers,
    },
  });
  const text = await response.text();
  assert.ok(response.status < 400, `${method} ${path}: ${response.status} ${text}`);
  return text;
}
const putEvent = (path: string, uid: string, summary: string) =>
  request('PUT', path, event(uid, summary), { 'content-type': 'text/calendar' });
const exists = async (path: string) =>
  (
    await fetch(`http://127.0.0.1:${dav.port}${path}`, {
      headers: { authorization: `Basic ${Buffer.from(`${path.split('/')[1]}:${PASSWORD}`).toString('base64')}` },
    })
  ).status === 200;

/** A fresh user with calendars (name → item names), backed up; the snapshot id. */
async function account(user: string, calendars: Record<string, string[]>): Promise<string> {
  dav.addUser(user, PASSWORD);
  await request('PROPFIND', `/${user}/`, undefined, { depth: '0' });
  for (const [name, items] of Object.entries(calendars)) {
    await request('MKCALENDAR', `/${user}/${encodeURIComponent(name)}/`);
    for (const item of items) await putEvent(`/${user}/${encodeURIComponent(name)}/${item}`, `${name}-${item}`, item);
  }
  return JSON.parse(ok(['backup', '--repo', repo, dav.url('caldav', user), '--json']).stdout).id;
}

describe('red team: CalDAV restores into an account that is not empty', { skip: whyNoRadicale() }, () => {
  before(async () => {
    dav = await startRadicale();
    dir = mkdtempSync(join(tmpdir(), 'amber-redteam-dav-restore-'));
    repo = join(dir, 'repo');
    ok(['init', '--repo', repo]);
  });
  after(async () => {
    await dav?.stop();
    if (dir) await removeTree(dir);
  });

  test('an event deleted from a calendar named "Tom\'s" (still there) is put back by a restore into the account', async () => {
    const id = await account('tom', { "tom's": ['e1.ics', 'e2.ics'] });
    await request('DELETE', "/tom/tom's/e2.ics");
    const run = amber(['restore', id, '--repo', repo, '--to', dav.url('caldav', 'tom'), '--json']);
    assert.equal(run.status, 0, run.stderr);
    assert.ok(await exists("/tom/tom's/e2.ics"), 'e2.ics is back');
  });

  test('an event whose UID a client put back under another name is a conflict; the other lost events are restored', async () => {
    const id = await account('uma', { work: ['e1.ics', 'e2.ics', 'e3.ics'] });
    for (const item of ['e1.ics', 'e2.ics', 'e3.ics']) await request('DELETE', `/uma/work/${item}`);
    // A client re-created event 1 under a name of its own (same UID, as calendar clients do).
    await putEvent('/uma/work/0F2A-client-copy.ics', 'work-e1.ics', 'e1, edited on a phone');
    const run = amber(['restore', id, '--repo', repo, '--to', dav.url('caldav', 'uma'), '--json']);
    const lost = [];
    for (const item of ['e2.ics', 'e3.ics']) if (!(await exists(`/uma/work/${item}`))) lost.push(item);
    assert.deepEqual(lost, [], `not restored: ${lost.join(', ')}; amber exited ${run.status}: ${run.stderr}`);
    assert.equal(run.status, 0, run.stderr);
    assert.ok(JSON.parse(run.stdout).conflicts.length >= 1);
  });

  test('a restore that a server refuses half-way does not say "nothing of this run was written as a snapshot"', async () => {
    const id = await account('val', { work: ['e1.ics', 'e2.ics'] });
    await request('DELETE', '/val/work/e1.ics');
    await putEvent('/val/work/other.ics', 'work-e1.ics', 'same UID');
    const run = amber(['restore', id, '--repo', repo, '--to', dav.url('caldav', 'val')]);
    if (run.status === 0) return;
    assert.doesNotMatch(run.stderr, /written as a snapshot/, run.stderr);
  });

  test('restore --to the URL of one calendar of an account with other calendars', async () => {
    const id = await account('wes', { home: ['h1.ics'], work: ['w1.ics', 'w2.ics'] });
    await request('DELETE', '/wes/work/w2.ics');
    const to = `caldav+http://wes@127.0.0.1:${dav.port}/wes/work/`;
    const run = amber(['restore', id, '--repo', repo, '--to', to, '--json']);
    assert.equal(run.status, 0, run.stderr);
    assert.ok(await exists('/wes/work/w2.ics'), 'w2.ics is back');
  });
});
