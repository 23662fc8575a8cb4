// IMAP mailboxes as a source, against a real Dovecot started in a scratch directory on 127.0.0.1:
// an account with a folder hierarchy, special-use folders, flags and keywords, 8-bit and MIME
// messages and a 20 MB attachment is backed up by URL, wiped, and restored: every message comes back
// into its folder with its flags and internal date, and a digest of the account before equals the
// digest after. A repeated restore adds nothing; a wrong password and a server that is down say so.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ImapFlow } from 'imapflow';
import { type ImapLogin, imapSession, mailboxDigest, testMessage } from '../../src/testing/imap-account.ts';
import { BIN } from '../../src/testing/agent-fixture.ts';
import { sourceCli } from '../../src/testing/cli-runner.ts';
import { type DovecotServer, startDovecot, whyNoDovecot } from '../../src/testing/dovecot-server.ts';
import { removeTree } from '../../src/testing/repo-fixture.ts';

let imap: DovecotServer;
let dir: string;
let repo: string;
const PASSWORDS: Record<string, string> = { alice: 'alice imap password', bob: 'bob imap password' };
const { env, amber, ok } = sourceCli({
  dir: () => dir,
  passphrase: 'the imap test passphrase',
  sourcePassword: () => PASSWORDS.alice,
});

const loginOf = (user: string): ImapLogin => ({ host: '127.0.0.1', port: imap.port, user, password: PASSWORDS[user] });
const session = <T>(user: string, work: (client: ImapFlow) => Promise<T>) => imapSession(loginOf(user), work);
const digest = (user: string, prefix = '') => mailboxDigest(loginOf(user), prefix);
const message = testMessage;

describe('IMAP sources', { skip: whyNoDovecot() }, () => {
  before(async () => {
    imap = await startDovecot();
    imap.addUser('alice', PASSWORDS.alice);
    imap.addUser('bob', PASSWORDS.bob);
    dir = mkdtempSync(join(tmpdir(), 'amber-imap-test-'));
    repo = join(dir, 'repo');
    const attachment = randomBytes(15 * 1024 * 1024)
      .toString('base64')
      .replace(/.{76}/g, '$&\r\n');
    await session('alice', async (client) => {
      await client.mailboxCreate('Archive/2024');
      await client.mailboxCreate('Grüße & Co');
      for (let n = 1; n <= 12; n++)
        await client.append(
          'INBOX',
          message(n),
          n % 3 === 0 ? ['\\Seen', '\\Flagged'] : ['\\Seen'],
          new Date(Date.UTC(2020, 2, n)),
        );
      await client.append(
        'INBOX',
        message(13),
        ['$Label1', 'ProjectX', '\\Answered'],
        new Date('2019-07-01T08:09:10Z'),
      );
      await client.append(
        'Archive/2024',
        Buffer.from(
          'From: =?UTF-8?Q?J=C3=BCrgen?= <j@example.org>\r\nSubject: =?UTF-8?B?R3LDvMOfZQ==?=\r\nMessage-ID: <eight@example.org>\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGrüße aus Köln, ☃ und 日本語\r\n',
        ),
        ['\\Seen'],
        new Date('2024-05-06T07:08:09Z'),
      );
      await client.append(
        'Archive/2024',
        Buffer.from(
          `From: alice@example.org\r\nSubject: the big one\r\nMessage-ID: <big@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename="data.bin"\r\n\r\n${attachment}\r\n--b1--\r\n`,
        ),
        [],
        new Date('2024-01-02T03:04:05Z'),
      );
      // The same message in two folders: stored once.
      await client.append('Sent', message(1), ['\\Seen'], new Date(Date.UTC(2020, 2, 1)));
      await client.append('Grüße & Co', message(20), ['\\Draft'], new Date('2021-12-24T18:00:00Z'));
    });
    ok(['init', '--repo', repo]);
  });
  after(async () => {
    await imap?.stop();
    if (dir) await removeTree(dir);
  });

  test('a mailbox backed up by URL, wiped, and restored: every folder, message, flag and internal date comes back', async () => {
    const before = await digest('alice');
    const backup = ok(['backup', '--repo', repo, imap.url('alice')]);
    assert.match(backup.stdout, /snapshot [0-9a-f]{8} saved/);
    const listed = JSON.parse(ok(['snapshots', '--repo', repo, '--json']).stdout).at(-1);
    assert.equal(listed.source.kind, 'imap');
    assert.equal(listed.source.url, imap.url('alice'));
    assert.equal(listed.source.messages, 17);
    assert.ok(
      listed.source.folders.some(
        (f: { name: string; messages: number }) => f.name === 'Archive/2024' && f.messages === 2,
      ),
    );
    const files = ok(['ls', '--repo', repo, 'latest', '/imap']).stdout;
    assert.match(files, /\/imap\/INBOX\/13\.eml/);
    assert.match(files, /\/imap\/Archive%2f2024\/folder\.json/);
    const mailbox = ok(['ls', '--repo', repo, 'latest']).stdout;
    assert.match(mailbox, /^Archive\/2024 {2}\(2 messages\)$/m);
    assert.match(mailbox, /^Sent {2}\(1 message, \\Sent\)$/m);
    assert.match(
      mailbox,
      /\/imap\/Archive%2f2024\/\d+\.eml {2}2024-05-06 07:08 .* Jürgen <j@example\.org> {2}Grüße {2}\[\\Seen\]/,
    );
    assert.match(mailbox, /\/imap\/INBOX\/13\.eml .* message 13 {2}\[\$Label1 ProjectX \\Answered\]/);
    const eml = spawnSync(process.execPath, [BIN, 'dump', '--repo', repo, 'latest', '/imap/INBOX/13.eml'], {
      env: env(),
    });
    assert.equal(eml.status, 0, String(eml.stderr));
    assert.deepEqual(eml.stdout, message(13), 'amber dump writes the exact bytes of the message');
    // Wipe the account: every message of every folder, and the folders Dovecot does not recreate.
    await session('alice', async (client) => {
      for (const folder of await client.list()) {
        if (folder.flags.has('\\Noselect')) continue;
        const lock = await client.getMailboxLock(folder.path);
        try {
          if ((client.mailbox as { exists: number }).exists > 0) await client.messageDelete('1:*');
        } finally {
          lock.release();
        }
      }
      await client.mailboxDelete('Archive/2024');
      await client.mailboxDelete('Grüße & Co');
    });
    assert.notDeepEqual(await digest('alice'), before, 'the account was wiped');
    const restored = JSON.parse(ok(['restore', 'latest', '--repo', repo, '--to', imap.url('alice'), '--json']).stdout);
    assert.equal(restored.appended, 17);
    assert.equal(restored.present, 0);
    assert.deepEqual(await digest('alice'), before);
    // Again: nothing is added twice.
    const again = JSON.parse(ok(['restore', 'latest', '--repo', repo, '--to', imap.url('alice'), '--json']).stdout);
    assert.equal(again.appended, 0);
    assert.equal(again.present, 17);
    assert.deepEqual(await digest('alice'), before);
  });

  test('restored into another account under --into, one folder with --folder', async () => {
    const run = ok(
      [
        'restore',
        'latest',
        '--repo',
        repo,
        '--to',
        imap.url('bob'),
        '--into',
        'Restored 2026-12-01',
        '--folder',
        'Archive/2024',
        '--json',
      ],
      { AMBER_SOURCE_PASSWORD: PASSWORDS.bob },
    );
    assert.equal(JSON.parse(run.stdout).appended, 2);
    const bob = await digest('bob', 'Restored 2026-12-01/');
    const alice = (await digest('alice')).filter((line) => line.startsWith('Archive/2024 '));
    assert.deepEqual(bob, alice);
    const missing = amber(['restore', 'latest', '--repo', repo, '--to', imap.url('bob'), '--folder', 'Nope'], {
      AMBER_SOURCE_PASSWORD: PASSWORDS.bob,
    });
    assert.equal(missing.status, 2, missing.stderr);
    assert.match(missing.stderr, /has no folder Nope/);
  });

  test('the policy file: a mailbox source by url with a password file, backed up by amber run', () => {
    writeFileSync(join(dir, 'alice.pass'), `${PASSWORDS.alice}\n`);
    const file = join(dir, 'policy.yaml');
    writeFileSync(
      file,
      `repositories:
  main: { repo: ${repo} }
sources:
  - name: alice-mail
    url: ${imap.url('alice')}
    password-file: alice.pass
    repository: main
    schedule: every 6h
    retain: { daily: 35d }
state-dir: state
`,
    );
    const run = amber(['run', 'alice-mail', '--config', file, '--json'], { AMBER_SOURCE_PASSWORD: '' });
    assert.equal(run.status, 0, run.stderr);
    const outcome = JSON.parse(run.stdout);
    assert.equal(outcome.status, 'succeeded');
    // The same messages again (under the new UIDs the restore gave them): their bytes dedup, only
    // the folders' metadata is new, a few KiB against the 20 MB the account holds.
    assert.ok(outcome.bytesAdded < 200_000, `${outcome.bytesAdded} bytes added`);
    const listed = JSON.parse(ok(['snapshots', '--repo', repo, '--json']).stdout).find(
      (s: { id: string }) => s.id === outcome.snapshot,
    );
    assert.equal(listed.source.kind, 'imap');
    assert.equal(listed.source.messages, 17);
  });

  test('a wrong password, a password in the URL, and a server that is down are each said clearly; no snapshot is written', () => {
    const count = JSON.parse(ok(['snapshots', '--repo', repo, '--json']).stdout).length;
    const wrong = amber(['backup', '--repo', repo, imap.url('alice')], { AMBER_SOURCE_PASSWORD: 'not it' });
    assert.equal(wrong.status, 1, wrong.stderr);
    assert.match(wrong.stderr, /refused the login of alice .*\[SOURCE_AUTH_FAILED\]/);
    assert.doesNotMatch(wrong.stderr, /not it/);
    const inUrl = amber(['backup', '--repo', repo, `imap://alice:secret@127.0.0.1:${imap.port}/`]);
    assert.equal(inUrl.status, 2, inUrl.stderr);
    assert.match(inUrl.stderr, /has a password in it/);
    assert.doesNotMatch(inUrl.stderr, /secret/);
    const down = amber(['backup', '--repo', repo, 'imap://alice@127.0.0.1:1/']);
    assert.equal(down.status, 1, down.stderr);
    assert.match(down.stderr, /could not be reached.*\[SOURCE_UNREACHABLE\]/);
    assert.equal(JSON.parse(ok(['snapshots', '--repo', repo, '--json']).stdout).length, count);
  });
});
