// A folder.json read back from a snapshot is checked before its fields go into IMAP commands: a
// snapshot may come from a write-only key on a host that is not trusted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkStoredFolder, folderMatcher, uidSet, parseImapUrl } from './imap.ts';

const good = () => ({
  version: 1,
  name: 'Archive/2024',
  delimiter: '/',
  attributes: ['\\HasNoChildren'],
  specialUse: null,
  subscribed: true,
  uidValidity: '17',
  uidNext: 3,
  highestModseq: null,
  messages: [
    { uid: 1, flags: ['\\Seen', '$Label1'], internalDate: '2024-05-06T07:08:09.000Z', size: 10 },
    { uid: 2, flags: [], internalDate: '2024-05-07T07:08:09.000Z', size: 10 },
  ],
});

test('a folder record as the IMAP source writes it passes', () => {
  assert.equal(checkStoredFolder(good(), 'x').name, 'Archive/2024');
});

test('a flag that would smuggle an IMAP command (a line break, a parenthesis, a space) is refused, naming the message', () => {
  for (const flag of ['\\Seen)\r\nA1 DELETE INBOX', 'two words', 'a(b', '"q"', 'x\u0000', '\\\\Double']) {
    const record = good();
    record.messages[1].flags = [flag];
    assert.throws(
      () => checkStoredFolder(record, '/imap/A/folder.json of snapshot 1234abcd'),
      (error: Error & { code?: string }) =>
        error.code === 'OBJECT_CORRUPT' &&
        /folder\.json of snapshot 1234abcd gives message 2 a flag/.test(error.message),
      JSON.stringify(flag),
    );
  }
});

test('a folder name with a line break, a repeated UID, a missing date or a record that is not one are refused', () => {
  const cases: [unknown, RegExp][] = [
    [{ ...good(), name: 'INBOX\r\nA1 LOGOUT' }, /names no folder/],
    [{ ...good(), messages: [good().messages[0], good().messages[0]] }, /without a unique UID/],
    [{ ...good(), messages: [{ ...good().messages[0], internalDate: 'soon' }] }, /an internal date that is not one/],
    [{ ...good(), messages: 'all of them' }, /no message list/],
    [{ ...good(), version: 2 }, /not a folder record/],
    [null, /not a folder record/],
  ];
  for (const [record, message] of cases)
    assert.throws(() => checkStoredFolder(record, 'w'), message, JSON.stringify(record));
});

test('IMAP URLs: the account only, no password, a user required', () => {
  assert.deepEqual(parseImapUrl('imaps://alice%40example.org@mail.example.org/'), {
    secure: true,
    host: 'mail.example.org',
    port: 993,
    user: 'alice@example.org',
    display: 'imaps://alice%40example.org@mail.example.org/',
  });
  assert.equal(parseImapUrl('imap://bob@127.0.0.1:1143/').port, 1143);
  assert.throws(() => parseImapUrl('imaps://alice:secret@mail.example.org/'), /password in it/);
  assert.throws(() => parseImapUrl('imaps://mail.example.org/'), /names no user/);
  assert.throws(() => parseImapUrl('imaps://alice@mail.example.org/INBOX'), /names more than an account/);
});

test('folder patterns: * crosses levels, % stays within one, INBOX in any case, other characters literal', () => {
  const match = folderMatcher(['Archive/%', 'inbox', 'Projects*', 'a.b']);
  assert.equal(match('Archive/2024', '/'), true);
  assert.equal(match('Archive/2024/Q1', '/'), false, '% does not cross the delimiter');
  assert.equal(match('Archive', '/'), false);
  assert.equal(match('INBOX', '/'), true);
  assert.equal(match('Projects/X/Y', '/'), true);
  assert.equal(match('a.b', '/'), true);
  assert.equal(match('aXb', '/'), false, 'a dot is a dot');
  assert.equal(match('Archive.2024', '.'), false, 'the delimiter is the folder’s own');
  assert.equal(folderMatcher(['Archive.%'])('Archive.2024', '.'), true);
  assert.equal(folderMatcher([])('anything', null), true);
  assert.equal(folderMatcher(undefined)('anything', '/'), true);
});

test('UID sets are written as ranges', () => {
  assert.equal(uidSet([1, 2, 3, 4, 7, 9, 10, 11, 12]), '1:4,7,9:12');
  assert.equal(uidSet([5]), '5');
  assert.equal(uidSet([]), '');
});
