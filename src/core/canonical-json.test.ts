import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalJson } from './canonical-json.ts';
import { merkleRoot } from './merkle.ts';

test('canonical JSON sorts keys by UTF-16 units and serialises like RFC 8785', () => {
  // Key order example from RFC 8785 §3.2.3: sorting is by UTF-16 code units, not code points.
  const keys = {
    '\u20ac': 'Euro Sign',
    '\r': 'Carriage Return',
    '\ufb33': 'Hebrew Letter Dalet With Dagesh',
    '1': 'One',
    '\ud83d\ude00': 'Emoji: Grinning Face',
    '\u0080': 'Control',
    '\u00f6': 'Latin Small Letter O With Diaeresis',
  };
  const order = [...canonicalJson(keys).matchAll(/"([^"]*)":"[^"]*"/g)].map((match) => JSON.parse(`"${match[1]}"`));
  assert.deepEqual(order, ['\r', '1', '\u0080', '\u00f6', '\u20ac', '\ud83d\ude00', '\ufb33']);
  assert.equal(
    canonicalJson({ b: [1, 'x', null, true], a: { d: 1e21, c: 0.5 } }),
    '{"a":{"c":0.5,"d":1e+21},"b":[1,"x",null,true]}',
  );
  assert.equal(canonicalJson({ a: undefined, b: -0 }), '{"b":0}');
  assert.throws(() => canonicalJson({ a: Number.NaN }));
});

test('the Merkle root depends on the set of names, not their order, and tells sets apart', () => {
  assert.equal(merkleRoot(['b', 'a', 'c']), merkleRoot(['c', 'a', 'b', 'a']));
  assert.notEqual(merkleRoot(['a', 'b']), merkleRoot(['a', 'b', 'c']));
  assert.notEqual(merkleRoot(['ab']), merkleRoot(['a', 'b']));
  assert.match(merkleRoot([]), /^[0-9a-f]{64}$/);
});
