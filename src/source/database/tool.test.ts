import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withoutPassword } from './tool.ts';

test('a password in a URL never reaches a message, also when the user name holds an @', () => {
  const cases: [string, string][] = [
    ['postgresql://backup:s3cret@db1:5432/shop', 'postgresql://backup:***@db1:5432/shop'],
    [
      'caldav://alice@example.org:s3cret@dav.example.org/alice/',
      'caldav://alice@example.org:***@dav.example.org/alice/',
    ],
    ['imaps://a%40b.org:s3cret@mail.example.org/', 'imaps://a%40b.org:***@mail.example.org/'],
    ['s3src+https://KEY:s3cret@s3.example.net/bucket/', 's3src+https://KEY:***@s3.example.net/bucket/'],
    ['caldav://u:pa:ss@w@rd@host/', 'caldav://u:***@host/'],
  ];
  for (const [url, shown] of cases) {
    assert.equal(withoutPassword(url), shown);
    assert.doesNotMatch(withoutPassword(url), /s3cret|pa:ss/);
  }
  // Without a password nothing changes.
  for (const url of [
    'postgresql://backup@db1:5432/shop',
    'imap://alice@127.0.0.1:143/',
    'caldav://a@b.org@host:8443/x/',
  ])
    assert.equal(withoutPassword(url), url);
});
