// Incremental IMAP backups against a real Dovecot, watched on the wire through a proxy that counts
// the server's FETCH responses: a second backup after messages were added, flagged and deleted reads
// only what changed, a third after no change reads nothing, and each snapshot restores into a wiped
// account as the account was at its own time. A folder recreated under a new UIDVALIDITY is listed
// again and dedups by content; a write-only key carries messages over from its own local cache; a
// server that dies mid-backup, a folder deleted while it is read and a message over the size limit
// are each said clearly, and nothing earlier is lost.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { sourceCli } from '../../src/testing/cli-runner.ts';
import { type DovecotServer, startDovecot, whyNoDovecot } from '../../src/testing/dovecot-server.ts';
import {
  type ImapLogin,
  imapSession,
  mailboxDigest,
  testMessage,
  wipeMailbox,
} from '../../src/testing/imap-account.ts';
import { type ImapProxy, startImapProxy } from '../../src/testing/imap-proxy.ts';
import { removeTree } from '../../src/testing/repo-fixture.ts';

const PASSWORD = 'carol imap password';
const SPECIAL = ['Sent', 'Drafts', 'Trash', 'Junk'];
let imap: DovecotServer;
let proxy: ImapProxy;
let dir: string;
let repo: string;
let login: ImapLogin;
const { amber, ok, amberAsync } = sourceCli({
  dir: () => dir,
  passphrase: 'the incremental imap passphrase',
  sourcePassword: () => PASSWORD,
});
/** The account through the proxy, so every backup's FETCH responses are counted. */
const url = () => `imap://carol@127.0.0.1:${proxy.port}/`;

interface Backup {
  id: string;
  fetches: number;
  source: { fetched: number; carried: number; messages: number; folders: { name: string; full: boolean }[] };
  summary: { bytesAdded: number; filesUnchanged: number };
}

async function backup(args: string[] = [], extra?: Record<string, string>): Promise<Backup> {
  proxy.reset();
  const run = await amberAsync(['backup', '--repo', repo, url(), '--json', ...args], extra);
  assert.equal(run.status, 0, run.stderr);
  return { ...JSON.parse(run.stdout), fetches: proxy.fetches() };
}

async function restoreInto(snapshot: string): Promise<void> {
  await wipeMailbox(login, SPECIAL);
  ok(['restore', snapshot, '--repo', repo, '--to', imap.url('carol')]);
}

describe('IMAP incremental backups', { skip: whyNoDovecot() }, () => {
  before(async () => {
    imap = await startDovecot();
    imap.addUser('carol', PASSWORD);
    login = { host: '127.0.0.1', port: imap.port, user: 'carol', password: PASSWORD };
    proxy = await startImapProxy({ host: '127.0.0.1', port: imap.port });
    dir = mkdtempSync(join(tmpdir(), 'amber-imap-incr-'));
    repo = join(dir, 'repo');
    await imapSession(login, async (client) => {
      await client.mailboxCreate('Archive');
      for (let n = 1; n <= 10; n++)
        await client.append('INBOX', testMessage(n), n % 2 ? ['\\Seen'] : [], new Date(Date.UTC(2021, 0, n)));
      for (let n = 21; n <= 24; n++)
        await client.append('Archive', testMessage(n), ['\\Seen'], new Date(Date.UTC(2020, 5, n)));
      await client.append('Sent', testMessage(31), ['\\Seen'], new Date('2022-02-02T02:02:02Z'));
    });
    ok(['init', '--repo', repo]);
  });
  after(async () => {
    await proxy?.close();
    await imap?.stop();
    if (dir) await removeTree(dir);
  });

  test('the second backup reads only what changed; each snapshot restores to its own point in time', async () => {
    const first = await backup();
    assert.equal(first.source.fetched, 15);
    // Each message once for its metadata and once for its bytes.
    assert.equal(first.fetches, 30);
    const atFirst = await mailboxDigest(login);

    await imapSession(login, async (client) => {
      for (let n = 11; n <= 13; n++) await client.append('INBOX', testMessage(n), [], new Date(Date.UTC(2021, 0, n)));
      let lock = await client.getMailboxLock('INBOX');
      try {
        await client.messageFlagsAdd('2,4', ['\\Flagged'], { uid: true });
        await client.messageDelete('5', { uid: true });
      } finally {
        lock.release();
      }
      lock = await client.getMailboxLock('Archive');
      try {
        await client.messageFlagsAdd('1', ['$Important'], { uid: true });
      } finally {
        lock.release();
      }
    });
    const atSecond = await mailboxDigest(login);
    assert.notDeepEqual(atSecond, atFirst);

    const second = await backup();
    // Three new messages (metadata and bytes), three changed flags, and per folder one look at its
    // newest carried message (a mail store rolled back hands UIDs out again); nothing of the 11 others.
    const folders = 3;
    assert.equal(second.fetches, 3 * 2 + 3 + folders, 'FETCH responses of the second backup');
    assert.equal(second.source.fetched, 3);
    assert.equal(second.source.carried, 14);
    assert.equal(second.source.messages, 17);
    assert.equal(second.summary.filesUnchanged, 14);
    assert.ok(second.summary.bytesAdded < 20_000, `${second.summary.bytesAdded} bytes added`);
    assert.ok(second.source.folders.every((f) => !f.full));

    const third = await backup();
    assert.equal(third.fetches, folders, 'a backup after no change reads no message, and looks at one per folder');
    assert.equal(third.source.carried, 17);

    await restoreInto(first.id);
    assert.deepEqual(await mailboxDigest(login), atFirst, 'the first snapshot restores the account as it was then');
    await restoreInto(second.id);
    assert.deepEqual(await mailboxDigest(login), atSecond, 'the second snapshot restores it as it was later');
  });

  test('a folder under a new UIDVALIDITY is listed again, matched by content: nothing is stored twice', async () => {
    // The restores above gave every message a new UID: the next backup reads them all, and stores nothing new.
    const relisted = await backup();
    assert.ok(relisted.summary.bytesAdded < 20_000, `${relisted.summary.bytesAdded} bytes added`);
    const before = (await backup()).fetches;
    assert.equal(before, 3, 'one look per folder with messages (INBOX, Archive, Sent)');
    const uidValidity = async () =>
      imapSession(login, async (client) => {
        const status = await client.status('Archive', { uidValidity: true });
        assert.ok(status, 'STATUS of Archive');
        return String(status.uidValidity);
      });
    const old = await uidValidity();
    // Deleted and made again: the same name, a new UIDVALIDITY, the same messages.
    await imapSession(login, async (client) => {
      await client.mailboxDelete('Archive');
      await client.mailboxCreate('Archive');
      for (let n = 21; n <= 24; n++)
        await client.append('Archive', testMessage(n), ['\\Seen'], new Date(Date.UTC(2020, 5, n)));
    });
    assert.notEqual(await uidValidity(), old);
    const now = await mailboxDigest(login);
    const after = await backup();
    const archive = after.source.folders.find((f) => f.name === 'Archive')!;
    assert.equal(archive.full, true);
    assert.equal(after.source.fetched, 4);
    assert.equal(after.fetches, 8 + 2, 'Archive in full, one look at INBOX and at Sent');
    assert.ok(after.summary.bytesAdded < 20_000, `${after.summary.bytesAdded} bytes added`);
    await restoreInto(after.id);
    assert.deepEqual(await mailboxDigest(login), now);
  });

  test('a write-only key carries messages over from its own cache; without the cache it reads everything', async () => {
    const added = amber(['key', 'add', '--repo', repo, '--write-only', '--label', 'mail', '--json'], {
      AMBER_NEW_PASSWORD: 'mail writer passphrase',
    });
    assert.equal(added.status, 0, added.stderr);
    const asWriter = { AMBER_PASSWORD: 'mail writer passphrase', AMBER_CACHE_DIR: join(dir, 'writer-cache') };
    const first = await backup([], asWriter);
    assert.equal(first.source.fetched, 17, 'no cache of its own yet: a full read');
    const second = await backup([], asWriter);
    assert.equal(second.fetches, 3, 'one look per folder, no message read');
    assert.equal(second.source.carried, 17);
    const fresh = await backup([], { ...asWriter, AMBER_CACHE_DIR: join(dir, 'empty-cache') });
    assert.equal(fresh.source.fetched, 17);
  });

  test('--folder picks folders by pattern; a pattern that matches nothing is refused', async () => {
    const some = await backup(['--folder', 'Arch*', '--folder', 'inbox']);
    assert.deepEqual(some.source.folders.map((f) => f.name).sort(), ['Archive', 'INBOX']);
    const none = amber(['backup', '--repo', repo, imap.url('carol'), '--folder', 'Nothing*']);
    assert.equal(none.status, 2, none.stderr);
    assert.match(none.stderr, /no folder of imap:\/\/carol@127\.0\.0\.1:\d+\/ matches Nothing\*/);
    const onFiles = amber(['backup', '--repo', repo, dir, '--folder', 'INBOX']);
    assert.equal(onFiles.status, 2);
    assert.match(onFiles.stderr, /--folder applies to an imap/);
  });

  test('a server that dies mid-backup writes no snapshot and leaves the earlier ones whole', async () => {
    await backup();
    const count = JSON.parse(ok(['snapshots', '--repo', repo, '--json']).stdout).length;
    await imapSession(login, async (client) => {
      for (let n = 41; n <= 46; n++)
        await client.append('INBOX', testMessage(n), [], new Date(Date.UTC(2023, 0, n % 28)));
    });
    proxy.cutAfterFetches(8);
    const cut = await amberAsync(['backup', '--repo', repo, url()]);
    proxy.cutAfterFetches(undefined);
    assert.equal(cut.status, 1, cut.stderr);
    assert.match(
      cut.stderr,
      /the IMAP server imap:\/\/carol@127\.0\.0\.1:\d+\/ closed the connection.*\[SOURCE_UNREACHABLE\]/,
    );
    assert.equal(JSON.parse(ok(['snapshots', '--repo', repo, '--json']).stdout).length, count);
    ok(['verify', '--repo', repo]);
    const next = await backup();
    assert.equal(next.source.fetched, 6, 'the next run reads the new messages');
  });

  test('a folder deleted while the backup runs is left out with a warning; the snapshot is marked partial', async () => {
    await imapSession(login, async (client) => {
      await client.mailboxCreate('Doomed');
      await client.append('Doomed', testMessage(51), [], new Date('2023-03-03T03:03:03Z'));
    });
    proxy.reset();
    proxy.beforeCommand(/ EXAMINE "?Doomed"?/i, async () => {
      await imapSession(login, (client) => client.mailboxDelete('Doomed'));
    });
    const run = await amberAsync(['backup', '--repo', repo, url()]);
    assert.equal(run.status, 3, run.stderr);
    assert.match(run.stderr, /warning: the folder Doomed of imap:\/\/carol@.* was deleted during the backup/);
    assert.match(run.stdout, /snapshot [0-9a-f]{8} saved.*incomplete/);
    const latest = JSON.parse(ok(['snapshots', '--repo', repo, '--json']).stdout).at(-1);
    assert.ok(latest.flags.includes('partial'));
    assert.ok(!latest.source.folders.some((f: { name: string }) => f.name === 'Doomed'));
    assert.ok(latest.source.folders.some((f: { name: string }) => f.name === 'INBOX'));
  });

  test('a message over --max-message-size is left out, named in a warning, and kept by the next backup without the limit', async () => {
    const body = randomBytes(1536 * 1024).toString('base64');
    await imapSession(login, (client) =>
      client.append(
        'INBOX',
        Buffer.from(
          `From: a@example.org\r\nSubject: the large one\r\nMessage-ID: <large@example.org>\r\n\r\n${body}\r\n`,
        ),
        [],
      ),
    );
    const limited = await amberAsync(['backup', '--repo', repo, url(), '--max-message-size', '1M']);
    assert.equal(limited.status, 3, limited.stderr);
    assert.match(
      limited.stderr,
      /warning: message \d+ of INBOX \(\d+ bytes, "the large one"\) is larger than the limit of 1048576 bytes and was left out/,
    );
    assert.doesNotMatch(ok(['ls', '--repo', repo, 'latest']).stdout, /the large one/);
    const unlimited = await backup();
    assert.equal(unlimited.source.fetched, 1);
    assert.match(ok(['ls', '--repo', repo, 'latest']).stdout, /the large one/);
    const bad = amber(['backup', '--repo', repo, url(), '--max-message-size', 'lots']);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--max-message-size: "lots" is not a size/);
  });
});
