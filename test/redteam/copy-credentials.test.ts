// Red team, issue 18: which credential reaches which site, and what a hostile primary server can
// make the copy site do. docs/isolation.md: "The copy's own AMBER_VAULT_TOKEN or AWS settings are
// never used for the primary, and the primary's never for the copy", and the primary holds nothing
// of the copy's and cannot reach it. Every server here is a fake on 127.0.0.1 that records what it
// is sent.
// - broke, and fixed on main meanwhile (cli/from-repo.ts, 2bd21bd): an S3 primary without
//   --from-aws-profile or AMBER_FROM_AWS_* keys was read with the AWS SDK's default chain, so the
//   copy site's own AWS_ACCESS_KEY_ID signed every request sent to the primary's endpoint.
// - broke: `audit verify --repo PRIMARY --anchors-from VAULT` without --anchors-token-file sent
//   AMBER_VAULT_TOKEN, the token of --repo, to the copy's vault. Fixed: refused (cli/commands/audit.ts).
// - broke: the http store followed redirects, so a hostile primary vault could send the copy site's
//   requests to any address it can reach, the copy's own vault included. Fixed: redirect 'error'.
// - broke: a hostile server could answer a ranged read, or a listing, with a body without end; the
//   http store buffered all of it. Fixed: bodies are read no further than asked (storage/http).
// - broke: a listing line naming no valid object (`snapshots/../x`, a number, null) was passed on;
//   reading it threw INVALID_OBJECT_NAME, which no reader takes for a bad record, so one such line
//   ended every `amber copy` of that primary. Fixed: skipped, as the fs and S3 stores skip them.
// - broke (small): `s3:https://HOST/bucket/a/../b` was folded by URL into prefix `b`, past the
//   check that refuses "." and ".." segments. Fixed: the path is checked as typed (s3-location.ts).
// - held: a vault primary never gets the copy's AMBER_VAULT_TOKEN; a vault copy never gets
//   AMBER_FROM_VAULT_TOKEN; `init --from-repo`, `copy`, `copy status` and `audit verify
//   --anchors-from` write nothing to the primary; encoded segments in a vault location are refused.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { promises as fs } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isAmberError } from '../../src/core/errors.ts';
import { backup } from '../../src/engine/backup.ts';
import { createHttpStore } from '../../src/storage/http/http-store.ts';
import { parseS3Location } from '../../src/storage/s3/s3-location.ts';
import {
  createTestRepo,
  makeTempDir,
  removeTree,
  seededBytes,
  TEST_PASSPHRASE,
} from '../../src/testing/repo-fixture.ts';

const BIN = fileURLToPath(new URL('../../bin/amber.js', import.meta.url));
const COPY_TOKEN = `amber_${'c'.repeat(16)}_copysitesecret`;
const PRIMARY_TOKEN = `amber_${'a'.repeat(16)}_primarysecret`;

interface Seen {
  method: string;
  url: string;
  authorization: string;
}

/** A server that records every request and answers with `answer` (default: 401, as a vault would). */
async function fakeServer(answer?: (req: IncomingMessage, res: ServerResponse) => void) {
  const seen: Seen[] = [];
  const server: Server = createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', authorization: String(req.headers.authorization ?? '') });
    if (answer) return answer(req, res);
    res.writeHead(401, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { code: 'TOKEN_INVALID', message: 'no' } }));
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  servers.push(server);
  return { seen, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

const servers: Server[] = [];
let dir = '';
let primaryPath = '';

before(async () => {
  dir = await makeTempDir('rt-copy-creds');
  primaryPath = join(dir, 'primary');
  const primary = await createTestRepo(primaryPath);
  const source = join(dir, 'src');
  await fs.mkdir(source);
  await fs.writeFile(join(source, 'a.bin'), seededBytes(4_000, 'creds'));
  await backup({ repo: primary, paths: [source] });
});

after(async () => {
  for (const server of servers) server.closeAllConnections();
  await Promise.all(servers.map((server) => new Promise((done) => server.close(done))));
  await removeTree(dir);
});

/** Runs amber with only the given environment (and a HOME of its own: no ~/.aws of this host). */
function amber(args: string[], env: Record<string, string>) {
  const result = spawnSync(process.execPath, [BIN, ...args], {
    env: { PATH: process.env.PATH, HOME: join(dir, 'home'), AMBER_CACHE_DIR: join(dir, 'cache'), ...env },
  });
  return { status: result.status, stdout: String(result.stdout), stderr: String(result.stderr) };
}

/** The same, without waiting: the fake servers of this process must answer meanwhile. */
function amberAsync(args: string[], env: Record<string, string>) {
  return new Promise<{ status: number | null; stderr: string }>((done) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { PATH: process.env.PATH, HOME: join(dir, 'home'), AMBER_CACHE_DIR: join(dir, 'cache'), ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (part) => (stderr += part));
    child.on('close', (status) => done({ status, stderr }));
  });
}

test('held (fixed on main meanwhile): an S3 primary named without credentials of its own is never read with the copy site’s AWS keys', async () => {
  const s3 = await fakeServer((_req, res) => {
    res.writeHead(403, { 'content-type': 'application/xml' });
    res.end('<?xml version="1.0"?><Error><Code>AccessDenied</Code><Message>no</Message></Error>');
  });
  const copySite = {
    AMBER_FROM_PASSWORD: TEST_PASSPHRASE,
    AMBER_PASSWORD: TEST_PASSPHRASE,
    AWS_ACCESS_KEY_ID: 'AKIACOPYSITEOWNKEY',
    AWS_SECRET_ACCESS_KEY: 'copy site secret',
    AWS_REGION: 'us-east-1',
  };
  const from = `s3:${s3.url}/primary-bucket/finance`;
  const refused = await amberAsync(['copy', '--repo', join(dir, 'copy-s3'), '--from-repo', from], copySite);
  assert.deepEqual(
    s3.seen.filter(({ authorization }) => authorization.includes('AKIACOPYSITEOWNKEY')).map(({ url }) => url),
    [],
    "the copy's own AWS key must never sign a request to the primary",
  );
  assert.notEqual(refused.status, 0);
  assert.match(refused.stderr, /needs credentials of its own/);
  // With keys of its own for the primary, those are the ones the primary's endpoint sees.
  await amberAsync(['copy', '--repo', join(dir, 'copy-s3'), '--from-repo', from], {
    ...copySite,
    AMBER_FROM_AWS_ACCESS_KEY_ID: 'AKIAPRIMARYREADER',
    AMBER_FROM_AWS_SECRET_ACCESS_KEY: 'primary reader secret',
  });
  assert.ok(s3.seen.length > 0 && s3.seen.every(({ authorization }) => authorization.includes('AKIAPRIMARYREADER')));
});

test('held: neither site’s vault token is sent to the other by `copy`', async () => {
  const primaryVault = await fakeServer();
  const withCopyToken = await amberAsync(
    ['copy', '--repo', join(dir, 'copy-v'), '--from-repo', `${primaryVault.url}/finance`],
    { AMBER_FROM_PASSWORD: TEST_PASSPHRASE, AMBER_PASSWORD: TEST_PASSPHRASE, AMBER_VAULT_TOKEN: COPY_TOKEN },
  );
  assert.notEqual(withCopyToken.status, 0);
  assert.deepEqual(primaryVault.seen, [], withCopyToken.stderr);

  const copyVault = await fakeServer();
  const withPrimaryToken = await amberAsync(
    ['copy', '--repo', `${copyVault.url}/finance-copy`, '--from-repo', primaryPath],
    { AMBER_FROM_PASSWORD: TEST_PASSPHRASE, AMBER_PASSWORD: TEST_PASSPHRASE, AMBER_FROM_VAULT_TOKEN: PRIMARY_TOKEN },
  );
  assert.notEqual(withPrimaryToken.status, 0);
  assert.deepEqual(
    copyVault.seen.filter(({ authorization }) => authorization.includes(PRIMARY_TOKEN)),
    [],
    withPrimaryToken.stderr,
  );
});

test('broke: `audit verify --anchors-from VAULT` sent the token of --repo to the copy’s vault', async () => {
  const copyVault = await fakeServer();
  const verified = await amberAsync(
    ['audit', 'verify', '--repo', primaryPath, '--anchors-from', `${copyVault.url}/finance-copy`],
    { AMBER_VAULT_TOKEN: PRIMARY_TOKEN },
  );
  assert.notEqual(verified.status, 0);
  assert.match(verified.stderr, /--anchors-token-file/);
  assert.deepEqual(copyVault.seen, []);
});

test('broke: a primary vault that answers with a redirect sent the copy site’s requests elsewhere', async () => {
  const elsewhere = await fakeServer();
  const primaryVault = await fakeServer((_req, res) => {
    res.writeHead(307, { location: `${elsewhere.url}/v1/repos/finance-copy/objects/config` });
    res.end();
  });
  const copied = await amberAsync(
    ['copy', '--repo', join(dir, 'copy-r'), '--from-repo', `${primaryVault.url}/finance`],
    {
      AMBER_FROM_PASSWORD: TEST_PASSPHRASE,
      AMBER_PASSWORD: TEST_PASSPHRASE,
      AMBER_FROM_VAULT_TOKEN: PRIMARY_TOKEN,
    },
  );
  assert.notEqual(copied.status, 0);
  assert.ok(primaryVault.seen.length > 0);
  assert.deepEqual(elsewhere.seen, [], 'no request may follow the redirect');
});

/** Streams `total` bytes of `byte` (in 64 KiB writes, as the reader takes them); resolves with how many went out. */
function endless(res: ServerResponse, total: number, byte: number): Promise<number> {
  const chunk = Buffer.alloc(64 * 1024, byte);
  let sent = 0;
  return new Promise((done) => {
    res.on('close', () => done(sent));
    const pump = () => {
      while (sent < total && !res.destroyed) {
        sent += chunk.length;
        if (!res.write(chunk)) return res.once('drain', pump);
      }
      res.end();
    };
    pump();
  });
}

test('broke: a hostile server answering a ranged read or a listing without end was read to the end', async () => {
  const TOTAL = 96 * 1024 * 1024;
  let sent: Promise<number> = Promise.resolve(0);
  const hostile = await fakeServer((req, res) => {
    if (req.url?.includes('/objects?prefix=data')) {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      sent = endless(res, TOTAL, 0x61); // one line that never ends
    } else {
      res.writeHead(206, { 'content-type': 'application/octet-stream' });
      sent = endless(res, TOTAL, 0);
    }
  });
  const store = createHttpStore(`${hostile.url}/finance`, { token: PRIMARY_TOKEN, attempts: 1 });
  const name = `data/ab/${'ab'.repeat(32)}`;
  await assert.rejects(store.get(name, { offset: 0, length: 4096 }), (error) => isAmberError(error, 'OBJECT_CORRUPT'));
  assert.ok((await sent) < TOTAL / 4, `the store read ${await sent} bytes for a read of 4096`);
  await assert.rejects(
    (async () => {
      for await (const _ of store.list('data/')) {
        // nothing is listed
      }
    })(),
    (error) => isAmberError(error, 'STORAGE_TRANSIENT'),
  );
  assert.ok((await sent) < TOTAL / 4, `the store read ${await sent} bytes of one listing line`);
});

test('held: init --from-repo, copy, copy status and audit verify --anchors-from write nothing to the primary', async () => {
  const snapshotOf = async () => {
    const rows: string[] = [];
    for (const entry of await fs.readdir(primaryPath, { recursive: true, withFileTypes: true })) {
      const path = join(entry.parentPath, entry.name);
      const info = await fs.lstat(path);
      rows.push(`${path} ${info.size} ${info.mtimeMs} ${info.mode}`);
    }
    return rows.sort();
  };
  const before = await snapshotOf();
  const env = { AMBER_FROM_PASSWORD: TEST_PASSPHRASE, AMBER_PASSWORD: TEST_PASSPHRASE, AMBER_KDF_LOG_N: '10' };
  const copyPath = join(dir, 'copy-fs');
  for (const args of [
    ['init', '--repo', copyPath, '--from-repo', primaryPath],
    ['copy', '--repo', copyPath, '--from-repo', primaryPath],
    ['copy', 'status', '--repo', copyPath, '--from-repo', primaryPath],
    ['audit', 'verify', '--repo', primaryPath, '--anchors-from', copyPath],
  ]) {
    const run = amber(args, env);
    assert.equal(run.status, 0, `${args.join(' ')}: ${run.stderr}`);
  }
  assert.deepEqual(await snapshotOf(), before);
});

test('broke: a listing naming what no store holds ended every reader of it (the copy could never run)', async () => {
  const valid = `snapshots/${'a'.repeat(64)}`;
  const hostile = await fakeServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    res.end(
      [
        { name: valid, sizeBytes: 10 },
        { name: 'snapshots/../../keys/x', sizeBytes: 10 },
        { name: 'snapshots/TMP', sizeBytes: 10 },
        { name: 5, sizeBytes: 10 },
        null,
        { name: `keys/${'b'.repeat(64)}`, sizeBytes: 10 },
        { name: `snapshots/${'c'.repeat(64)}`, sizeBytes: -1 },
      ]
        .map((line) => JSON.stringify(line))
        .join('\n'),
    );
  });
  const store = createHttpStore(`${hostile.url}/finance`, { token: PRIMARY_TOKEN, attempts: 1 });
  const names: unknown[] = [];
  for await (const { name } of store.list('snapshots/')) names.push(name);
  // As the fs and S3 stores list: only what could be an object under the prefix.
  assert.deepEqual(names, [valid]);
});

test('held: encoded segments in a vault or S3 location are refused, never sent as another path', () => {
  for (const location of [
    'https://vault1.example:8420/fin%2F..%2Fother',
    'https://vault1.example:8420/finance/..',
    'https://vault1.example:8420/%66inance',
    'https://user:pw@vault1.example:8420/finance',
  ])
    assert.throws(
      () => createHttpStore(location, { token: PRIMARY_TOKEN }),
      (error) => isAmberError(error, 'USAGE'),
      location,
    );
  for (const location of [
    's3:https://s3.example/bucket/a%2F..%2Fb',
    's3:https://s3.example/bucket/a/../b',
    's3:bucket/%2e%2e',
  ])
    assert.throws(
      () => parseS3Location(location),
      (error) => isAmberError(error, 'USAGE'),
      location,
    );
});
