// The key → snapshot path mapping of the bucket source (filesOfKeys): S3 keys are any UTF-8 up to
// 1,024 bytes, `/` included anywhere, so every key must get a path of its own made of names a
// snapshot tree takes (src/repo/tree.ts: non-empty, not . or .., no / or NUL), and no file may
// share its name with a directory beside it. And checkStoredBucket takes what the dump writes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkStoredBucket, filesOfKeys, fileOfVersion } from './s3-bucket.ts';

/** A tree entry name as src/repo/tree.ts accepts it. */
const goodName = (name: string) => name !== '' && name !== '.' && name !== '..' && !/[/\0]/.test(name);

/** Every path is valid, all are distinct, and no file is named like a directory of another path. */
function assertSound(files: Map<string, string>, keys: readonly string[]): void {
  const paths = keys.map((key) => files.get(key)!);
  for (const [n, path] of paths.entries())
    for (const name of path.split('/'))
      assert.ok(goodName(name), `${JSON.stringify(keys[n])} → ${JSON.stringify(path)}`);
  assert.equal(new Set(paths).size, keys.length, `two keys share a path: ${JSON.stringify(paths)}`);
  const dirs = new Set(
    paths.flatMap((path) =>
      path
        .split('/')
        .slice(0, -1)
        .map((_, i, all) => all.slice(0, i + 1).join('/')),
    ),
  );
  for (const [n, path] of paths.entries())
    assert.ok(!dirs.has(path), `${JSON.stringify(keys[n])} → ${path}, also a directory of another key`);
}

/** In key order (as the dump yields them) the files of each directory come together: a directory once left is never entered again. */
function assertGrouped(files: Map<string, string>, keys: readonly string[]): void {
  const left = new Set<string>();
  let open: string[] = [];
  for (const key of [...keys].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))) {
    const dirs = files.get(key)!.split('/').slice(0, -1);
    let same = 0;
    while (same < open.length && same < dirs.length && open[same] === dirs[same]) same++;
    for (let i = same; i < open.length; i++) left.add(open.slice(0, i + 1).join('/'));
    for (let i = same; i < dirs.length; i++)
      assert.ok(
        !left.has(dirs.slice(0, i + 1).join('/')),
        `${JSON.stringify(key)} goes back into ${dirs.slice(0, i + 1).join('/')}`,
      );
    open = dirs;
  }
}

const pathsOf = (keys: string[], prefix = '') => Object.fromEntries(filesOfKeys(keys, prefix));

test('plain keys are their segments; a folder marker is % in its directory; a key beside its own directory gets a %', () => {
  assert.deepEqual(pathsOf(['a', 'a/', 'a/b', 'c']), { a: 'a%', 'a/': 'a/%', 'a/b': 'a/b', c: 'c' });
  assert.deepEqual(pathsOf(['photos/', 'photos/2024/a.jpg']), {
    'photos/': 'photos/%',
    'photos/2024/a.jpg': 'photos/2024/a.jpg',
  });
});

test('an empty segment is the directory %, never an empty name', () => {
  assert.deepEqual(pathsOf(['a//b']), { 'a//b': 'a/%/b' });
  assert.deepEqual(pathsOf(['/a']), { '/a': '%/a' });
  assert.deepEqual(pathsOf(['//']), { '//': '%/%/%' });
  assert.deepEqual(pathsOf(['']), { '': '%' });
});

test('keys that differ only by an empty segment get paths of their own', () => {
  for (const [keys, prefix] of [
    [['x', '/x'], ''],
    [['p/x', 'p//x'], 'p/'],
    [['p/', 'p//'], 'p/'],
    [['a/', 'a//', 'a///', 'a//b', 'a/b', 'a'], ''],
    [['/', '//', '///', '', '%', '%%', '%/'], ''],
  ] as const) {
    const files = filesOfKeys(keys, prefix);
    assertSound(files, keys);
  }
  assert.deepEqual(pathsOf(['p/', 'p//'], 'p/'), { 'p/': '%%', 'p//': '%/%' });
  assert.deepEqual(pathsOf(['/', '//']), { '/': '%/%%', '//': '%/%/%' });
});

test('%, dot segments, case, Unicode normalisation and control characters are escaped apart', () => {
  const keys = [
    '%',
    'a%',
    'a%25',
    'a%/b',
    '.',
    '..',
    'x/./y',
    'x/../y',
    '%2e',
    'A',
    'a',
    'caf\u00e9',
    'cafe\u0301',
    'tab\there',
    'nul\0byte',
    'line\nbreak',
    'a\\b',
  ];
  const files = filesOfKeys(keys, '');
  assertSound(files, keys);
  assert.equal(files.get('%'), '%25');
  assert.equal(files.get('a%'), 'a%25%', '"a%" beside "a%/b"');
  assert.equal(files.get('a%25'), 'a%2525');
  assert.equal(files.get('.'), '%2e');
  assert.equal(files.get('..'), '%2e%2e');
  assert.equal(files.get('x/../y'), 'x/%2e%2e/y');
  assert.equal(files.get('%2e'), '%252e');
  assert.equal(files.get('nul\0byte'), 'nul%00byte');
});

test('very long keys (1,024 bytes, one segment or many) map apart and to valid names', () => {
  const long = 'k'.repeat(1024);
  const keys = [
    long,
    `${long.slice(1)}x`,
    '/'.repeat(1024),
    '/'.repeat(1023),
    `${'%'.repeat(1023)}/`,
    'a/'.repeat(512),
  ];
  assertSound(filesOfKeys(keys, ''), keys);
});

test('all keys over {a, ., /, %} up to 5 characters map soundly, the files of each directory together in key order', () => {
  const keys: string[] = [];
  const grow = (key: string) => {
    keys.push(key);
    if (key.length < 5) for (const c of ['a', '.', '/', '%']) grow(key + c);
  };
  grow('');
  const files = filesOfKeys(keys, '');
  assertSound(files, keys);
  assertGrouped(files, keys);
});

test('the version files of keys sit in directories of their own', () => {
  const keys = ['a', 'a/b', 'a/', '/a', 'a//b'];
  const files = filesOfKeys(keys, '');
  const versions = keys.flatMap((key) => ['v1', 'null', '.', '%'].map((id) => fileOfVersion(files.get(key)!, id)));
  assert.equal(new Set(versions).size, versions.length);
  for (const file of versions) for (const name of file.split('/')) assert.ok(goodName(name), file);
  const dirs = new Set(
    versions.flatMap((f) =>
      f
        .split('/')
        .slice(0, -1)
        .map((_, i, all) => all.slice(0, i + 1).join('/')),
    ),
  );
  for (const file of versions) assert.ok(!dirs.has(file), file);
});

test('checkStoredBucket takes the paths the dump gives, and headers kept as text or as Latin-1', () => {
  const keys = ['a//b', '/x', 'x', 'p/', 'p//', '%'];
  const files = filesOfKeys(keys, '');
  const object = (key: string) => ({
    key,
    file: `objects/${files.get(key)}`,
    size: 0,
    etag: null,
    lastModified: null,
    sha256: '0'.repeat(64),
    contentType: null,
    contentEncoding: null,
    contentDisposition: null,
    contentLanguage: null,
    cacheControl: null,
    expires: '0',
    metadata: { caption: 'café' },
  });
  const stored = checkStoredBucket(
    {
      version: 1,
      bucket: 'b',
      prefix: '',
      objects: [...keys.map(object), { ...object('z'), metadata: { raw: 'caf\u00e9' }, notUtf8: ['x-amz-meta-raw'] }],
      history: [{ ...object('x'), file: fileOfVersion(files.get('x')!, 'v1'), versionId: 'v1', deleteMarker: false }],
    },
    'test',
  );
  assert.equal(stored.objects.length, keys.length + 1);
  assert.throws(
    () =>
      checkStoredBucket(
        { version: 1, bucket: 'b', prefix: '', objects: [{ ...object('x'), notUtf8: ['host'] }] },
        'test',
      ),
    /headers that are not UTF-8/,
  );
  assert.throws(
    () =>
      checkStoredBucket(
        { version: 1, bucket: 'b', prefix: '', objects: [{ ...object('x'), file: 'objects/a//b' }] },
        'test',
      ),
    /a file outside objects/,
  );
});
