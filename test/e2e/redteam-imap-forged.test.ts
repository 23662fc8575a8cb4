// Red team: a snapshot written by a write-only key (a backup client on a host that is not trusted,
// or one whose network is) becomes the parent of the next backup by the owner's full key, and that
// backup takes over what the forged snapshot says a UID holds: its bytes (when they are a blob the
// owner stored, which a writer can dedup against) and its flags (when its HIGHESTMODSEQ is the
// server's). The owner's own snapshot then holds message 1 twice, no message 3, and every message
// \Deleted; every later backup by the owner carries the same from it.
//
// The writer here runs unmodified Amber against a lying server behind the same URL (a TCP switch
// on 127.0.0.1: first the real Dovecot, then the lying one, then Dovecot again).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sourceCli } from '../../src/testing/cli-runner.ts';
import { type DovecotServer, startDovecot, whyNoDovecot } from '../../src/testing/dovecot-server.ts';
import {
  type ImapLogin,
  imapSession,
  mailboxDigest,
  testMessage,
  wipeMailbox,
} from '../../src/testing/imap-account.ts';
import { type FakeImap, startFakeImap } from '../../src/testing/redteam-imap-server.ts';
import { type SwitchProxy, startSwitchProxy } from '../../src/testing/redteam-switch-proxy.ts';
import { removeTree } from '../../src/testing/repo-fixture.ts';

const PASSWORD = 'dora imap password';
const SPECIAL = ['Sent', 'Drafts', 'Trash', 'Junk'];
let imap: DovecotServer;
let proxy: SwitchProxy;
let liar: FakeImap | undefined;
let dir: string;
let repo: string;
let login: ImapLogin;
const { amber, ok, amberAsync } = sourceCli({
  dir: () => dir,
  passphrase: 'the forged imap passphrase',
  sourcePassword: () => PASSWORD,
});
const url = () => `imap://dora@127.0.0.1:${proxy.port}/`;
const WRITER = 'dora writer passphrase';

async function backup(extra?: Record<string, string>) {
  const run = await amberAsync(['backup', '--repo', repo, url(), '--json'], extra);
  assert.equal(run.status, 0, run.stderr);
  return JSON.parse(run.stdout) as { id: string; source: { carried: number; fetched: number } };
}

describe('red team: IMAP parent written by a write-only key', { skip: whyNoDovecot() }, () => {
  before(async () => {
    imap = await startDovecot();
    imap.addUser('dora', PASSWORD);
    login = { host: '127.0.0.1', port: imap.port, user: 'dora', password: PASSWORD };
    proxy = await startSwitchProxy(imap.port);
    dir = mkdtempSync(join(tmpdir(), 'amber-rt-forged-'));
    repo = join(dir, 'repo');
    await imapSession(login, async (client) => {
      for (let n = 1; n <= 3; n++)
        await client.append('INBOX', testMessage(n), ['\\Seen'], new Date(Date.UTC(2021, 0, n)));
    });
    ok(['init', '--repo', repo]);
  });
  after(async () => {
    await liar?.close();
    await proxy?.close();
    await imap?.stop();
    if (dir) await removeTree(dir);
  });

  test("a write-only key's snapshot cannot make the owner's next backup keep wrong bytes or flags under a UID", async () => {
    const truth = await mailboxDigest(login);
    const first = await backup();
    assert.equal(first.source.fetched, 3);

    // The writer: a write-only key of the same repository, on the same host name (--host would do too).
    const added = amber(['key', 'add', '--repo', repo, '--write-only', '--label', 'mail-client', '--json'], {
      AMBER_NEW_PASSWORD: WRITER,
    });
    assert.equal(added.status, 0, added.stderr);
    // What the real INBOX says of itself (the writer can log in to the account, as its backups do).
    const { uidValidity, highestModseq } = await imapSession(login, async (client) => {
      const lock = await client.getMailboxLock('INBOX', { readOnly: true });
      try {
        const box = client.mailbox as { uidValidity: bigint; highestModseq: bigint };
        return { uidValidity: Number(box.uidValidity), highestModseq: Number(box.highestModseq) };
      } finally {
        lock.release();
      }
    });
    // The lying server: the same UIDVALIDITY and HIGHESTMODSEQ; UID 3 holds message 1's bytes, every message \Deleted.
    liar = await startFakeImap({
      user: 'dora',
      password: PASSWORD,
      condstore: true,
      folders: [
        {
          wire: '"INBOX"',
          path: 'INBOX',
          uidValidity,
          highestModseq,
          messages: [1, 2, 1].map((n, i) => ({
            uid: i + 1,
            flags: '\\Seen \\Deleted',
            body: testMessage(n),
            modseq: 1,
          })),
        },
      ],
    });
    proxy.to(liar.port);
    await backup({ AMBER_PASSWORD: WRITER, AMBER_CACHE_DIR: join(dir, 'writer-cache') });
    proxy.to(imap.port);

    // The owner's backup, against the real account, which has not changed.
    const owners = await backup();
    const again = await backup();
    assert.deepEqual(await mailboxDigest(login), truth, 'the account itself is as it was');
    await wipeMailbox(login, SPECIAL);
    ok(['restore', again.id, '--repo', repo, '--to', imap.url('dora')]);
    assert.deepEqual(
      await mailboxDigest(login),
      truth,
      `the owner's snapshot ${again.id.slice(0, 8)} (after ${owners.id.slice(0, 8)}: carried ${owners.source.carried}, fetched ${owners.source.fetched}) restores the account as it was`,
    );
  });
  test('held: a tampered writer cache (AMBER_CACHE_DIR) is not believed: the writer reads every message again', async () => {
    const cache = join(dir, 'writer-cache');
    const files: string[] = [];
    const walk = (at: string) => {
      for (const name of readdirSync(at)) {
        const path = join(at, name);
        if (statSync(path).isDirectory()) walk(path);
        else files.push(path);
      }
    };
    walk(cache);
    const list = files.find((f) => f.endsWith('snapshots.jsonl'));
    assert.ok(list, 'the writer keeps a list of its snapshots');
    const entry = JSON.parse(readFileSync(list, 'utf8').trim().split('\n').at(-1)!);
    // A snapshot that is not in the repository, dated in the future, and every cached blob changed by one byte.
    appendFileSync(list, `${JSON.stringify({ ...entry, id: 'ab'.repeat(32), time: '2999-01-01T00:00:00.000Z' })}\n`);
    for (const file of files.filter((f) => !f.endsWith('.jsonl'))) {
      const bytes = readFileSync(file);
      bytes[bytes.length - 1] ^= 1;
      writeFileSync(file, bytes);
    }
    const run = await backup({ AMBER_PASSWORD: WRITER, AMBER_CACHE_DIR: cache });
    assert.equal(run.source.fetched, 3, 'read in full from the account');
    assert.equal(run.source.carried, 0);
  });
});
