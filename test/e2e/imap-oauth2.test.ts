// OAuth2 bearer tokens for IMAP (XOAUTH2, as Microsoft 365 and Google require): a real Dovecot
// whose oauth2 passdb asks an RFC 7662 introspection endpoint, served by the test on 127.0.0.1,
// whether a token is active and whose it is. A backup and a restore with --source-token-file log in
// with the token; an expired (inactive) token is refused clearly and writes no snapshot.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sourceCli } from '../../src/testing/cli-runner.ts';
import { type DovecotServer, startDovecot, whyNoDovecot } from '../../src/testing/dovecot-server.ts';
import { imapSession, mailboxDigest, testMessage, wipeMailbox } from '../../src/testing/imap-account.ts';
import { removeTree } from '../../src/testing/repo-fixture.ts';

const TOKEN = 'ya29.a-test-access-token-for-dora';
let imap: DovecotServer;
let introspection: Server;
let introspected: string[] = [];
let dir: string;
let repo: string;
const { ok, amberAsync } = sourceCli({
  dir: () => dir,
  passphrase: 'the oauth2 test passphrase',
  sourcePassword: () => '',
});
const login = () => ({ host: '127.0.0.1', port: imap.port, user: 'dora', password: 'dora password' });

describe('IMAP with OAuth2 tokens', { skip: whyNoDovecot() }, () => {
  before(async () => {
    introspection = createServer((request, response) => {
      let body = '';
      request.on('data', (chunk) => {
        body += chunk;
      });
      request.on('end', () => {
        const token = new URLSearchParams(body).get('token') ?? '';
        introspected.push(token);
        response.setHeader('content-type', 'application/json');
        response.end(JSON.stringify(token === TOKEN ? { active: true, username: 'dora' } : { active: false }));
      });
    });
    await new Promise<void>((resolve) => introspection.listen(0, '127.0.0.1', resolve));
    const address = introspection.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    imap = await startDovecot({ oauth2IntrospectionUrl: `http://127.0.0.1:${port}/introspect` });
    imap.addUser('dora', 'dora password');
    dir = mkdtempSync(join(tmpdir(), 'amber-imap-oauth2-'));
    repo = join(dir, 'repo');
    await imapSession(login(), async (client) => {
      for (let n = 1; n <= 3; n++)
        await client.append('INBOX', testMessage(n), ['\\Seen'], new Date(Date.UTC(2024, 1, n)));
    });
    writeFileSync(join(dir, 'token'), `${TOKEN}\n`);
    writeFileSync(join(dir, 'expired'), 'ya29.expired\n');
    ok(['init', '--repo', repo]);
  });
  after(async () => {
    await imap?.stop();
    introspection?.close();
    if (dir) await removeTree(dir);
  });

  test('a backup and a restore log in with the token from --source-token-file', async () => {
    const before = await mailboxDigest(login());
    introspected = [];
    const run = await amberAsync([
      'backup',
      '--repo',
      repo,
      imap.url('dora'),
      '--source-token-file',
      join(dir, 'token'),
      '--json',
    ]);
    assert.equal(run.status, 0, run.stderr);
    assert.ok(introspected.includes(TOKEN), 'the server asked the identity provider about the token');
    assert.equal(JSON.parse(run.stdout).source.messages, 3);
    await wipeMailbox(login(), ['Sent', 'Drafts', 'Trash', 'Junk']);
    const restore = await amberAsync([
      'restore',
      'latest',
      '--repo',
      repo,
      '--to',
      imap.url('dora'),
      '--source-token-file',
      join(dir, 'token'),
    ]);
    assert.equal(restore.status, 0, restore.stderr);
    assert.deepEqual(await mailboxDigest(login()), before);
  });

  test('an inactive token is refused clearly, without the token in the message, and no snapshot is written', async () => {
    const count = JSON.parse(ok(['snapshots', '--repo', repo, '--json']).stdout).length;
    const run = await amberAsync([
      'backup',
      '--repo',
      repo,
      imap.url('dora'),
      '--source-token-file',
      join(dir, 'expired'),
    ]);
    assert.equal(run.status, 1, run.stderr);
    assert.match(run.stderr, /refused the login of dora .*\[SOURCE_AUTH_FAILED\]/);
    assert.match(run.stderr, /OAuth2 token \(--source-token-file\) is current/);
    assert.doesNotMatch(run.stderr, /ya29/);
    assert.equal(JSON.parse(ok(['snapshots', '--repo', repo, '--json']).stdout).length, count);
  });
});
