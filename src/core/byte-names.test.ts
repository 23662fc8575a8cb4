import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { compareNameBytes, displayName, fsPath, hasEscapedBytes, nameBytes, nameFromBytes } from './byte-names.ts';

test('every byte string survives the round trip through a name, and valid UTF-8 stays a plain string', () => {
  const samples = [
    Buffer.from('café.txt'),
    Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x2e, 0x74]), // caf\xe9.t (Latin-1)
    Buffer.from([0xff, 0xfe]),
    Buffer.from([0xed, 0xa0, 0x80]), // an encoded surrogate: not valid UTF-8
    Buffer.from([0xc0, 0xaf]), // overlong "/"
    Buffer.from([0xf0, 0x9f, 0x82, 0x80]), // U+1F080, whose low surrogate lies in the escape range
    Buffer.from('real \uFFFD replacement'),
    Buffer.from([0xe2, 0x82]), // truncated sequence
  ];
  for (let i = 0; i < 2000; i++) samples.push(randomBytes(1 + (i % 12)));
  for (const bytes of samples) {
    const name = nameFromBytes(bytes);
    assert.deepEqual(nameBytes(name), bytes, `round trip of ${bytes.toString('hex')}`);
  }
  assert.equal(nameFromBytes(Buffer.from('café.txt')), 'café.txt');
  assert.equal(hasEscapedBytes('café.txt'), false);
  assert.equal(hasEscapedBytes(nameFromBytes(Buffer.from([0xf0, 0x9f, 0x82, 0x80]))), false);
  assert.equal(hasEscapedBytes(nameFromBytes(Buffer.from([0xff]))), true);
  assert.equal(typeof fsPath('/a/café'), 'string');
  assert.deepEqual(
    fsPath(`/a/${nameFromBytes(Buffer.from([0xff, 0xfe]))}`),
    Buffer.from([0x2f, 0x61, 0x2f, 0xff, 0xfe]),
  );
});

test('names are shown escaped on one line and sorted by their bytes', () => {
  assert.equal(displayName(nameFromBytes(Buffer.from([0x63, 0x61, 0x66, 0xe9]))), 'caf\\xe9');
  assert.equal(displayName('a\nb\\c\td\x01'), 'a\\nb\\\\c\\td\\x01');
  assert.equal(displayName('plain name'), 'plain name');
  const names = ['b', nameFromBytes(Buffer.from([0xff])), 'a', '\u{1F600}', '\uFFFD'].sort(compareNameBytes);
  assert.deepEqual(
    names.map((name) => nameBytes(name).toString('hex')),
    ['61', '62', 'efbfbd', 'f09f9880', 'ff'],
  );
});
