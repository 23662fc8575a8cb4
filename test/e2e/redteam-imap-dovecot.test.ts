// Red team: the IMAP source against a real Dovecot on 127.0.0.1, with nothing forged, only other
// things happening to the account while (or between) backups: another client (a phone) marking a
// message read while a folder is listed; a message whose Subject, written by whoever sent it,
// carries terminal escapes; and a mail store rolled back by its administrator (restored from a
// file-level backup), after which Dovecot hands out a UID again under the same UIDVALIDITY.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN } from '../../src/testing/agent-fixture.ts';
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

const PASSWORD = 'erin imap password';
const SPECIAL = ['Sent', 'Drafts', 'Trash', 'Junk'];
let imap: DovecotServer;
let proxy: ImapProxy;
let dir: string;
let repo: string;
const { env, amber, ok, amberAsync } = sourceCli({
  dir: () => dir,
  passphrase: 'the dovecot red team passphrase',
  sourcePassword: () => PASSWORD,
});
const loginOf = (user: string): ImapLogin => ({ host: '127.0.0.1', port: imap.port, user, password: PASSWORD });
const urlOf = (user: string) => `imap://${user}@127.0.0.1:${proxy.port}/`;

/** Sets a flag on one UID of INBOX from another session, as a phone would. */
const flagFromElsewhere = (user: string, uid: number, flag: string) =>
  imapSession(loginOf(user), async (client) => {
    const lock = await client.getMailboxLock('INBOX');
    try {
      await client.messageFlagsAdd(String(uid), [flag], { uid: true });
    } finally {
      lock.release();
    }
  });

/** The scratch directory of this test's Dovecot (dovecot-server.ts keeps it to itself): found by its port. */
function dovecotHome(user: string): string {
  for (const name of readdirSync(tmpdir())) {
    if (!name.startsWith('amber-dovecot-')) continue;
    const conf = join(tmpdir(), name, 'dovecot.conf');
    if (existsSync(conf) && readFileSync(conf, 'utf8').includes(`port = ${imap.port}\n`))
      return join(tmpdir(), name, 'home', user);
  }
  throw new Error('no Dovecot directory for this port');
}

describe('red team: IMAP against Dovecot', { skip: whyNoDovecot() }, () => {
  before(async () => {
    imap = await startDovecot();
    for (const user of ['erin', 'fred', 'gina', 'hank', 'ivy', 'jack']) imap.addUser(user, PASSWORD);
    proxy = await startImapProxy({ host: '127.0.0.1', port: imap.port });
    dir = mkdtempSync(join(tmpdir(), 'amber-rt-dovecot-'));
    repo = join(dir, 'repo');
    ok(['init', '--repo', repo]);
  });
  after(async () => {
    await proxy?.close();
    await imap?.stop();
    if (dir) await removeTree(dir);
  });

  test('a flag changed by another client while a folder is listed in full does not fail the backup', async () => {
    await imapSession(loginOf('erin'), async (client) => {
      for (let n = 1; n <= 3; n++) await client.append('INBOX', testMessage(n), [], new Date(Date.UTC(2021, 0, n)));
    });
    // Dovecot answers the listing with an unsolicited "* 2 FETCH (MODSEQ (5) FLAGS (…))": no UID in it.
    proxy.beforeCommand(/ FETCH 1:\* \(.*ENVELOPE/i, () => flagFromElsewhere('erin', 2, '\\Seen'));
    const run = await amberAsync(['backup', '--repo', repo, urlOf('erin')]);
    assert.equal(run.status, 0, run.stderr);
  });

  test('a flag changed by another client while new messages are listed does not fail an incremental backup', async () => {
    await imapSession(loginOf('fred'), async (client) => {
      for (let n = 1; n <= 3; n++) await client.append('INBOX', testMessage(n), [], new Date(Date.UTC(2021, 0, n)));
    });
    assert.equal((await amberAsync(['backup', '--repo', repo, urlOf('fred')])).status, 0);
    await imapSession(loginOf('fred'), (client) => client.append('INBOX', testMessage(4), [], new Date()));
    // The new message's metadata: UID FETCH 4 (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE).
    proxy.beforeCommand(/ UID FETCH 4 \(.*ENVELOPE/i, () => flagFromElsewhere('fred', 1, '\\Flagged'));
    const run = await amberAsync(['backup', '--repo', repo, urlOf('fred')]);
    assert.equal(run.status, 0, run.stderr);
  });

  test("a sender's terminal escapes in a Subject are not written raw to the terminal by a backup's warning", async () => {
    const subject = `=?UTF-8?B?${Buffer.from('\x1b]0;owned\x07\x1b[2J\x1b[31mred').toString('base64')}?=`;
    await imapSession(loginOf('gina'), (client) =>
      client.append(
        'INBOX',
        Buffer.from(
          `From: x@example.org\r\nSubject: ${subject}\r\nMessage-ID: <esc@example.org>\r\n\r\n${'x'.repeat(4096)}\r\n`,
        ),
        [],
      ),
    );
    const run = amber(['backup', '--repo', repo, imap.url('gina'), '--max-message-size', '1K']);
    assert.equal(run.status, 3, run.stderr);
    assert.match(run.stderr, /is larger than the limit/);
    // `amber ls` shows the same subject as \x1b…; the warning should too.
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it looks for
    assert.doesNotMatch(run.stderr, /[\x00-\x08\x0b-\x1f\x7f]/, `stderr: ${JSON.stringify(run.stderr)}`);
  });

  test('a message under a UID handed out again (the mail store rolled back) is read, not carried over from the previous snapshot', async () => {
    const login = loginOf('hank');
    await imapSession(login, async (client) => {
      for (let n = 1; n <= 3; n++) await client.append('INBOX', testMessage(n), [], new Date(Date.UTC(2021, 0, n)));
    });
    // The administrator's file-level copy of the mail store, taken now.
    const home = dovecotHome('hank');
    const copy = join(dir, 'hank-store-copy');
    assert.equal(spawnSync('cp', ['-a', home, copy]).status, 0);
    await imapSession(login, (client) => client.append('INBOX', testMessage(100), [], new Date(Date.UTC(2022, 0, 1))));
    assert.equal((await amberAsync(['backup', '--repo', repo, urlOf('hank')])).status, 0);
    // The disk fails; the store comes back from the copy; new mail arrives.
    assert.equal(spawnSync('rm', ['-rf', home]).status, 0);
    assert.equal(spawnSync('cp', ['-a', copy, home]).status, 0);
    await imapSession(login, (client) => client.append('INBOX', testMessage(200), [], new Date(Date.UTC(2023, 0, 1))));
    const held = await imapSession(login, async (client) => {
      const lock = await client.getMailboxLock('INBOX', { readOnly: true });
      try {
        const uid4 = await client.fetchOne('4', { source: true }, { uid: true });
        return uid4 ? (uid4.source?.toString() ?? '') : '';
      } finally {
        lock.release();
      }
    });
    assert.match(held, /Subject: message 200/, 'Dovecot gave message 200 the UID 4 again');
    const truth = await mailboxDigest(login);
    const run = await amberAsync(['backup', '--repo', repo, urlOf('hank'), '--json']);
    assert.equal(run.status, 0, run.stderr);
    const latest = JSON.parse(run.stdout) as { id: string; source: { fetched: number; carried: number } };
    const eml = spawnSync(process.execPath, [BIN, 'dump', '--repo', repo, latest.id, '/imap/INBOX/4.eml'], {
      env: env(),
    });
    assert.match(
      String(eml.stdout),
      /Subject: message 200/,
      `the snapshot's INBOX/4.eml is the message the server holds under UID 4 (fetched ${latest.source.fetched}, carried ${latest.source.carried})`,
    );
    await wipeMailbox(login, SPECIAL);
    ok(['restore', latest.id, '--repo', repo, '--to', imap.url('hank')]);
    assert.deepEqual(await mailboxDigest(login), truth);
  });
  test('held: two folders swapped by RENAME (each keeps its UIDVALIDITY) are listed again, not carried under the other name', async () => {
    const login = loginOf('ivy');
    await imapSession(login, async (client) => {
      await client.mailboxCreate('Left');
      await client.mailboxCreate('Right');
      for (let n = 1; n <= 2; n++) await client.append('Left', testMessage(n), [], new Date(Date.UTC(2021, 0, n)));
      for (let n = 11; n <= 12; n++)
        await client.append('Right', testMessage(n), ['\\Seen'], new Date(Date.UTC(2021, 1, n)));
    });
    assert.equal((await amberAsync(['backup', '--repo', repo, urlOf('ivy')])).status, 0);
    await imapSession(login, async (client) => {
      await client.mailboxRename('Left', 'Swap');
      await client.mailboxRename('Right', 'Left');
      await client.mailboxRename('Swap', 'Right');
    });
    const truth = await mailboxDigest(login);
    const run = await amberAsync(['backup', '--repo', repo, urlOf('ivy'), '--json']);
    assert.equal(run.status, 0, run.stderr);
    const latest = JSON.parse(run.stdout) as { id: string; source: { folders: { name: string; full: boolean }[] } };
    assert.ok(latest.source.folders.filter((f) => f.name === 'Left' || f.name === 'Right').every((f) => f.full));
    await wipeMailbox(login, SPECIAL);
    ok(['restore', latest.id, '--repo', repo, '--to', imap.url('ivy')]);
    assert.deepEqual(await mailboxDigest(login), truth);
  });
  test('one message Dovecot cannot read is named in a warning; it does not stop every backup of the account', async () => {
    const login = loginOf('jack');
    await imapSession(login, async (client) => {
      for (let n = 1; n <= 3; n++) await client.append('INBOX', testMessage(n), [], new Date(Date.UTC(2021, 0, n)));
    });
    // A damaged file in the store (here: unreadable); Dovecot answers its FETCH with BYE.
    const maildir = join(dovecotHome('jack'), 'Maildir');
    let broken = 0;
    for (const sub of ['cur', 'new'])
      for (const name of existsSync(join(maildir, sub)) ? readdirSync(join(maildir, sub)) : [])
        if (readFileSync(join(maildir, sub, name), 'latin1').includes('Subject: message 2')) {
          chmodSync(join(maildir, sub, name), 0);
          broken++;
        }
    assert.equal(broken, 1);
    const run = await amberAsync(['backup', '--repo', repo, urlOf('jack')]);
    assert.equal(run.status, 3, run.stderr);
    assert.match(ok(['ls', '--repo', repo, 'latest']).stdout, /message 3/);
  });
});
