// Red team: the IMAP source and restore against a hostile (or merely broken) server: a small fake
// IMAP server in this process on 127.0.0.1 (src/testing/redteam-imap-server.ts) that says what the
// test tells it to. Each test states what should hold; the ones that fail are the findings.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN } from '../../src/testing/agent-fixture.ts';
import { sourceCli } from '../../src/testing/cli-runner.ts';
import {
  type FakeFolder,
  type FakeImap,
  type FakeImapOptions,
  fakeMessage,
  startFakeImap,
} from '../../src/testing/redteam-imap-server.ts';
import { removeTree } from '../../src/testing/repo-fixture.ts';

const PASSWORD = 'hostile server password';
let dir: string;
let repos = 0;
const servers: FakeImap[] = [];
const { env, amber, ok, amberAsync } = sourceCli({
  dir: () => dir,
  passphrase: 'the hostile imap passphrase',
  sourcePassword: () => PASSWORD,
});

const inbox = (extra: Partial<FakeFolder> = {}): FakeFolder => ({
  wire: '"INBOX"',
  path: 'INBOX',
  uidValidity: 7,
  highestModseq: 5,
  messages: [1, 2, 3].map((n) => ({ uid: n, flags: '\\Seen', body: fakeMessage(n), modseq: n })),
  ...extra,
});

async function fake(options: Partial<FakeImapOptions> = {}): Promise<FakeImap> {
  const server = await startFakeImap({
    user: 'u',
    password: PASSWORD,
    condstore: true,
    folders: [inbox()],
    ...options,
  });
  servers.push(server);
  return server;
}

function newRepo(): string {
  const repo = join(dir, `repo${repos++}`);
  ok(['init', '--repo', repo]);
  return repo;
}

/** A backup of the fake server into a new repository: its run, and the repository. */
async function backupOf(server: FakeImap, args: string[] = [], repo = newRepo()) {
  const run = await amberAsync(['backup', '--repo', repo, server.url(), ...args]);
  return { run, repo };
}

/** Restores the latest snapshot into an empty fake account; what it APPENDed. */
async function restoreOf(repo: string, args: string[] = []) {
  const target = await fake({ folders: [inbox({ messages: [] })] });
  const run = await amberAsync(['restore', '--repo', repo, 'latest', '--to', target.url(), ...args]);
  return { run, target };
}

const lines = (run: { stdout: string; stderr: string }) => `${run.stdout}${run.stderr}`;

describe('red team: IMAP against a hostile server', () => {
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'amber-rt-hostile-'));
  });
  after(async () => {
    for (const server of servers) await server.close();
    if (dir) await removeTree(dir);
  });

  test('a flag the server sends that is not an IMAP atom leaves the snapshot listable and restorable', async () => {
    const server = await fake({
      folders: [
        inbox({
          messages: [
            { uid: 1, flags: '\\Seen "two words"', body: fakeMessage(1) },
            { uid: 2, flags: '\\Seen', body: fakeMessage(2) },
          ],
        }),
      ],
    });
    const { run, repo } = await backupOf(server);
    // The flag cannot be kept (nor APPENDed again): the backup names it and marks the snapshot partial.
    assert.equal(run.status, 3, run.stderr);
    assert.match(run.stderr, /its flag "two words" is not an IMAP atom and was not kept/);
    const ls = amber(['ls', '--repo', repo, 'latest']);
    assert.equal(ls.status, 0, lines(ls));
    const { run: restored } = await restoreOf(repo);
    assert.equal(restored.status, 0, lines(restored));
  });

  test('a folder whose name decodes to a NUL byte does not make the other folders unrestorable', async () => {
    // "&AAA-" is U+0000 in IMAP's modified UTF-7.
    const server = await fake({
      folders: [inbox(), { wire: '"a&AAA-b"', path: 'a&AAA-b', uidValidity: 9, messages: [] }],
    });
    const { run, repo } = await backupOf(server);
    // That folder cannot be kept: named in a warning, the snapshot partial, the others whole.
    assert.equal(run.status, 3, run.stderr);
    assert.match(run.stderr, /has a name Amber cannot keep/);
    const { run: restored, target } = await restoreOf(repo, ['--folder', 'INBOX']);
    assert.equal(restored.status, 0, lines(restored));
    assert.equal(target.appended.length, 3);
  });

  test('a folder with an empty name does not make the snapshot unreadable', async () => {
    const server = await fake({
      folders: [
        inbox(),
        { wire: '""', path: '', uidValidity: 9, messages: [{ uid: 1, flags: '', body: fakeMessage(9) }] },
      ],
    });
    const { run, repo } = await backupOf(server);
    assert.equal(run.status, 3, run.stderr);
    assert.match(run.stderr, /has a name Amber cannot keep .*: ""/);
    const ls = amber(['ls', '--repo', repo, 'latest']);
    assert.equal(ls.status, 0, lines(ls));
  });

  test('a second FETCH response for one message (a flag update carrying its UID) leaves the snapshot restorable', async () => {
    // RFC 3501 §7.4.2 lets a server send a FETCH response at any time; with QRESYNC (and on some
    // servers always) it carries the UID. Here it comes in the middle of the folder's listing.
    const server = await fake({
      afterFetch: (_folder, items, uid) =>
        !uid && items.includes('ENVELOPE') ? Buffer.from('* 2 FETCH (UID 2 FLAGS (\\Seen \\Flagged))\r\n') : undefined,
    });
    const { run, repo } = await backupOf(server);
    assert.equal(run.status, 0, run.stderr);
    const { run: restored, target } = await restoreOf(repo);
    assert.equal(restored.status, 0, lines(restored));
    assert.equal(target.appended.length, 3);
  });

  test('a message the server lists but whose bytes it never sends is named in a warning (exit 3), not left out silently', async () => {
    const server = await fake({
      fetchLine: (message, seq, items) =>
        message.uid === 2 && items.some((item) => /^BODY/i.test(item))
          ? Buffer.from(`* ${seq} FETCH (UID 2)\r\n`)
          : undefined,
    });
    const { run, repo } = await backupOf(server, ['--json']);
    const ls = ok(['ls', '--repo', repo, 'latest']).stdout;
    assert.doesNotMatch(ls, /INBOX\/2\.eml/, 'message 2 is not in the snapshot');
    // It is still in the account (UID SEARCH says so), but the backup reports a complete snapshot.
    assert.equal(run.status, 3, `exit ${run.status}; warnings ${JSON.stringify(JSON.parse(run.stdout).warnings)}`);
  });

  test('--max-message-size holds against a server whose RFC822.SIZE is smaller than the message', async () => {
    const big = Buffer.concat([fakeMessage(1), Buffer.alloc(300_000, 'x')]);
    const server = await fake({ folders: [inbox({ messages: [{ uid: 1, flags: '', body: big, size: 100 }] })] });
    const { run, repo } = await backupOf(server, ['--max-message-size', '1K']);
    const ls = ok(['ls', '--repo', repo, 'latest']).stdout;
    assert.doesNotMatch(
      ls,
      /INBOX\/1\.eml/,
      `a 300 KB message is in a snapshot limited to 1 KiB (exit ${run.status}): ${ls}`,
    );
  });

  test('one message with an INTERNALDATE that does not parse does not fail the backup of the whole account', async () => {
    const server = await fake({
      folders: [
        inbox({
          messages: [
            { uid: 1, flags: '', body: fakeMessage(1), internalDate: '"31-Foo-2021 99:99:99 +0000"' },
            { uid: 2, flags: '', body: fakeMessage(2) },
          ],
        }),
      ],
    });
    const { run } = await backupOf(server);
    assert.ok(run.status === 0 || run.status === 3, `exit ${run.status}: ${run.stderr}`);
  });

  test('a command the server refuses mid-backup is not blamed on STARTTLS', async () => {
    const server = await fake({
      onCommand: (command, session) => {
        if (command.name !== 'LIST') return false;
        session.send(`${command.tag} NO [LIMIT] too many folders today\r\n`);
        return true;
      },
    });
    const { run } = await backupOf(server);
    assert.equal(run.status, 1);
    assert.match(run.stderr, /too many folders today/);
    assert.doesNotMatch(run.stderr, /STARTTLS/, run.stderr);
  });

  test('a LIST that names a folder twice is backed up once', async () => {
    const server = await fake({ folders: [inbox(), inbox()] });
    const { run } = await backupOf(server);
    assert.equal(run.status, 0, run.stderr);
  });

  test('a keyword the backup keeps is kept by the restore (or refused, with a warning, by the backup)', async () => {
    const server = await fake({
      folders: [inbox({ messages: [{ uid: 1, flags: '\\Seen Ärger', body: fakeMessage(1) }] })],
    });
    const { run, repo } = await backupOf(server);
    // IMAP4rev1 keywords are ASCII atoms: this one cannot be APPENDed again, so the backup says so.
    assert.equal(run.status, 3, run.stderr);
    assert.match(run.stderr, /its flag "Ärger" is not an IMAP atom and was not kept/);
    assert.match(ok(['ls', '--repo', repo, 'latest']).stdout, /\[\\Seen\]/);
    const { run: restored, target } = await restoreOf(repo);
    assert.equal(restored.status, 0, lines(restored));
    assert.match(target.appended[0].flags, /\\Seen/);
  });

  test('held: a HIGHESTMODSEQ lower than the previous snapshot’s is not believed; every flag is read again', async () => {
    const folder = inbox({ highestModseq: 50 });
    const server = await fake({ folders: [folder] });
    const { repo } = await backupOf(server);
    folder.highestModseq = 3; // the server went back
    folder.messages[0].flags = '\\Seen \\Flagged';
    folder.messages[0].modseq = 2;
    const { run } = await backupOf(server, [], repo);
    assert.equal(run.status, 0, run.stderr);
    assert.match(ok(['ls', '--repo', repo, 'latest']).stdout, /1\.eml .* \[\\Flagged \\Seen\]/);
    assert.ok(server.commands.filter((c) => c === 'UID FETCH').length >= 2);
  });

  test('held: a server that names UIDs it was not asked for in a body FETCH cannot put them in the snapshot', async () => {
    const server = await fake({
      afterFetch: (_folder, items, uid) =>
        uid && items.some((item) => /^BODY/i.test(item))
          ? Buffer.concat([
              Buffer.from(`* 9 FETCH (UID 99 BODY[] {${fakeMessage(99).length}}\r\n`),
              fakeMessage(99),
              Buffer.from(')\r\n'),
            ])
          : undefined,
    });
    const { run, repo } = await backupOf(server);
    assert.equal(run.status, 0, run.stderr);
    assert.doesNotMatch(ok(['ls', '--repo', repo, 'latest']).stdout, /99\.eml|fake 99/);
  });

  test('held: a line break in the user name or password cannot add an IMAP command, and the password is not shown', async () => {
    const seen: string[] = [];
    const server = await fake({
      onCommand: (command) => {
        seen.push(command.line);
        return false;
      },
    });
    const repo = newRepo();
    const a = await amberAsync([
      'backup',
      '--repo',
      repo,
      `imap://u%0D%0Aa1%20DELETE%20INBOX@127.0.0.1:${server.port}/`,
    ]);
    const b = await amberAsync(['backup', '--repo', repo, server.url()], {
      AMBER_SOURCE_PASSWORD: 'pw\r\nA1 DELETE INBOX',
    });
    assert.notEqual(a.status, 0);
    assert.notEqual(b.status, 0);
    assert.ok(!server.commands.includes('DELETE'), server.commands.join(','));
    assert.doesNotMatch(a.stderr + b.stderr, /pw|hostile server password/);
  });

  test('held: over imap:// to a host not named as this machine, a server without STARTTLS never gets the password', async () => {
    // "vm" is this machine's name in /etc/hosts (127.0.0.1) but not one of Amber's loopback names.
    const server = await fake();
    const run = await amberAsync(['backup', '--repo', newRepo(), `imap://u@vm:${server.port}/`]);
    assert.equal(run.status, 1, run.stderr);
    assert.ok(
      !server.commands.includes('LOGIN') && !server.commands.includes('AUTHENTICATE'),
      server.commands.join(','),
    );
  });

  test('a server that keeps talking but never finishes EXAMINE does not hold the backup for ever', {
    timeout: 120_000,
  }, async () => {
    const timers: NodeJS.Timeout[] = [];
    const server = await fake({
      onCommand: (command, session) => {
        if (command.name !== 'EXAMINE') return false;
        timers.push(setInterval(() => session.send('* OK still thinking\r\n'), 2_000));
        return true;
      },
    });
    const repo = newRepo();
    const child = spawn(process.execPath, [BIN, 'backup', '--repo', repo, server.url(), '--source-timeout', '10s'], {
      env: env(),
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (text: string) => {
      stderr += text;
    });
    let status: number | null = null;
    const ended = new Promise<boolean>((resolve) =>
      child.on('close', (code) => {
        status = code;
        resolve(true);
      }),
    );
    // Its own connection and greeting timeouts are 30 s; a minute is twice that.
    const done = await Promise.race([
      ended,
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 60_000).unref()),
    ]);
    // Ctrl-C ends it (the shell's 130); no snapshot, the repository verifies.
    child.kill('SIGINT');
    await ended;
    for (const timer of timers) clearInterval(timer);
    assert.equal(JSON.parse(ok(['snapshots', '--repo', repo, '--json']).stdout).length, 0);
    ok(['verify', '--repo', repo]);
    assert.ok(done, 'the backup was still waiting on the server after 60 s');
    assert.equal(status, 1, stderr);
    assert.match(stderr, /made no progress for 10 s while opening INBOX .*\[SOURCE_UNREACHABLE\]/);
  });

  test("an APPEND the server refuses stops the restore with the server's reason, not as an Amber bug", async () => {
    const source = await fake({
      folders: [inbox({ messages: [1, 2, 3, 4, 5].map((n) => ({ uid: n, flags: '', body: fakeMessage(n) })) })],
    });
    const { repo } = await backupOf(source);
    const target = await fake({
      folders: [inbox({ messages: [] })],
      onAppend: (_appended, count) =>
        count === 3 ? 'NO [OVERQUOTA] Quota exceeded (mailbox for user is full)' : undefined,
    });
    const run = await amberAsync(['restore', '--repo', repo, 'latest', '--to', target.url()]);
    assert.equal(run.status, 1);
    assert.doesNotMatch(run.stderr, /unexpected error|this is a bug/, run.stderr);
    assert.match(run.stderr, /Quota exceeded|OVERQUOTA/, run.stderr);
    // Held: run again, it adds what is missing and nothing twice.
    const again = await amberAsync(['restore', '--repo', repo, 'latest', '--to', target.url(), '--json']);
    assert.equal(again.status, 0, again.stderr);
    assert.equal(target.folders[0].messages.length, 5);
  });

  test('a server that drops the connection in the middle of a restore is said clearly, not as an Amber bug', async () => {
    const source = await fake({
      folders: [inbox({ messages: [1, 2, 3, 4].map((n) => ({ uid: n, flags: '', body: fakeMessage(n) })) })],
    });
    const { repo } = await backupOf(source);
    const target: FakeImap = await fake({
      folders: [inbox({ messages: [] })],
      onCommand: (command, session) => {
        if (command.name !== 'APPEND' || target.appended.length < 2) return false;
        session.socket.destroy();
        return true;
      },
    });
    const run = await amberAsync(['restore', '--repo', repo, 'latest', '--to', target.url()]);
    assert.equal(run.status, 1);
    assert.doesNotMatch(run.stderr, /unexpected error|this is a bug/, run.stderr);
  });

  test('Ctrl-C during a restore into an account ends it with INTERRUPTED (130), as docs/errors.md says of restore', async () => {
    const source = await fake({
      folders: [inbox({ messages: [1, 2, 3, 4, 5].map((n) => ({ uid: n, flags: '', body: fakeMessage(n) })) })],
    });
    const { repo } = await backupOf(source);
    const target = await fake({
      folders: [inbox({ messages: [] })],
      onCommand: async (command) => {
        if (command.name === 'APPEND') await new Promise((resolve) => setTimeout(resolve, 1_000));
        return false;
      },
    });
    const child = spawn(process.execPath, [BIN, 'restore', '--repo', repo, 'latest', '--to', target.url()], {
      env: env(),
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (text: string) => {
      stderr += text;
    });
    while (target.appended.length < 1) await new Promise((resolve) => setTimeout(resolve, 50));
    child.kill('SIGINT');
    const [code, signal] = await new Promise<[number | null, string | null]>((resolve) =>
      child.on('close', (c, s) => resolve([c, s])),
    );
    assert.equal(code, 130, `exit ${code}, signal ${signal}, stderr ${JSON.stringify(stderr)}`);
    assert.match(stderr, /INTERRUPTED/);
  });

  test('a restore keeps both copies of a message that is twice in a folder, when the account has one already', async () => {
    const twice = fakeMessage(7);
    const source = await fake({
      folders: [
        inbox({
          messages: [
            { uid: 1, flags: '', body: twice },
            { uid: 2, flags: '', body: twice },
          ],
        }),
      ],
    });
    const { repo } = await backupOf(source);
    // The account as a restore interrupted after its first APPEND left it.
    const target = await fake({ folders: [inbox({ messages: [{ uid: 1, flags: '', body: twice }] })] });
    const run = await amberAsync(['restore', '--repo', repo, 'latest', '--to', target.url()]);
    assert.equal(run.status, 0, run.stderr);
    assert.equal(target.folders[0].messages.length, 2, run.stdout);
  });

  test('held: a folder name with quotes in it goes into CREATE on restore as one name, no second command', async () => {
    const source = await fake({
      folders: [
        inbox(),
        {
          wire: '"a\\" DELETE \\"INBOX"',
          path: 'a" DELETE "INBOX',
          uidValidity: 3,
          messages: [{ uid: 1, flags: '', body: fakeMessage(5) }],
        },
      ],
    });
    const { run, repo } = await backupOf(source);
    assert.equal(run.status, 0, run.stderr);
    const { run: restored, target } = await restoreOf(repo);
    assert.equal(restored.status, 0, lines(restored));
    assert.ok(!target.commands.includes('DELETE'), target.commands.join(','));
    assert.ok(target.folders.some((f) => f.path === 'a" DELETE "INBOX'));
  });
  test('held: --folder patterns are IMAP wildcards only: regex metacharacters in them are literal', async () => {
    const folder = (path: string, uidValidity: number): FakeFolder => ({
      wire: `"${path}"`,
      path,
      uidValidity,
      messages: [{ uid: 1, flags: '', body: fakeMessage(uidValidity) }],
    });
    const server = await fake({
      folders: [
        inbox(),
        folder('a.b', 11),
        folder('axb', 12),
        folder('(x)', 13),
        folder('[y]', 14),
        folder('y', 15),
        folder('p/q', 16),
      ],
    });
    const { run } = await backupOf(server, [
      '--json',
      '--folder',
      'a.b',
      '--folder',
      '(x)',
      '--folder',
      '[y]',
      '--folder',
      'p%',
    ]);
    assert.equal(run.status, 0, run.stderr);
    const names = (JSON.parse(run.stdout).source.folders as { name: string }[]).map((f) => f.name).sort();
    assert.deepEqual(names, ['(x)', '[y]', 'a.b']);
  });

  test('held: --max-message-size 0, 1e3, -1 and 0x10 are refused as usage errors before anything is read', async () => {
    const server = await fake();
    const repo = newRepo();
    for (const size of ['0', '1e3', '-1', '0x10', '99999999T']) {
      const run = await amberAsync(['backup', '--repo', repo, server.url(), '--max-message-size', size]);
      assert.equal(run.status, 2, `${size}: ${run.stderr}`);
      assert.match(run.stderr, /--max-message-size: ".*" is not a size/);
    }
    assert.ok(!server.commands.includes('LOGIN'));
  });
  test("a folder name's terminal escapes are not written raw into an error", async () => {
    // "&ABs-" is ESC in modified UTF-7: the folder is "Bad<ESC>]0;owned<BEL>" once imapflow decodes it.
    const server = await fake({
      folders: [
        inbox(),
        { wire: '"Bad&ABs-]0;owned&AAc-"', path: 'Bad&ABs-]0;owned&AAc-', uidValidity: 4, messages: [] },
      ],
      onCommand: (command, session) => {
        if (command.name !== 'EXAMINE' || !command.line.includes('Bad')) return false;
        session.send(`${command.tag} NO [NOPERM] not for you\r\n`);
        return true;
      },
    });
    const { run } = await backupOf(server);
    assert.equal(run.status, 1);
    assert.match(run.stderr, /could not be opened/);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it looks for
    assert.doesNotMatch(run.stderr, /[\x07\x1b]/, JSON.stringify(run.stderr));
  });
  test('a folder whose name decodes to CR LF does not fail the backup of every other folder', async () => {
    // "&AA0ACg-" is CR LF in modified UTF-7; imapflow then refuses to send the name back in EXAMINE.
    const server = await fake({
      folders: [inbox(), { wire: '"Evil&AA0ACg-X"', path: 'Evil&AA0ACg-X', uidValidity: 9, messages: [] }],
    });
    const { run } = await backupOf(server);
    assert.ok(run.status === 0 || run.status === 3, `exit ${run.status}: ${JSON.stringify(run.stderr)}`);
  });

  test('held: a server that echoes the LOGIN line in its refusal does not get the password shown', async () => {
    const server = await fake({
      onCommand: (command, session) => {
        if (command.name !== 'LOGIN') return false;
        session.send(`${command.tag} NO [AUTHENTICATIONFAILED] you sent ${command.line}\r\n`);
        return true;
      },
    });
    const run = await amberAsync(['backup', '--repo', newRepo(), server.url()]);
    assert.equal(run.status, 1);
    assert.match(run.stderr, /refused the login/);
    assert.doesNotMatch(run.stdout + run.stderr, /hostile server password/);
  });
});
