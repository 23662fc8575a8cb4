import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fsPath, nameFromBytes } from '../../core/byte-names.ts';
import { startExactTimes } from './exact-times.ts';
import { whyPythonXattrsUnavailable } from '../../testing/fidelity/python-xattrs.ts';

const noPython = whyPythonXattrsUnavailable();

test('times are set to the nanosecond, before 1970 and after 2038, on a symlink itself, by bytes', {
  skip: noPython,
}, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'amber-exact-times-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, nameFromBytes(Buffer.from([0x63, 0xe9])));
  writeFileSync(fsPath(file), 'x');
  const link = join(dir, 'link');
  symlinkSync('c', link);
  const times = startExactTimes();
  times.set(file, -86_400_123_456_789n, 4_102_444_800_123_456_789n);
  times.set(link, 1_700_000_000_000_000_001n, 1_796_000_000_987_654_321n);
  times.set(join(dir, 'missing'), 1n, 1n);
  const outcome = await times.close();
  assert.equal(outcome.unavailable, undefined);
  assert.deepEqual(outcome.failures, [{ path: join(dir, 'missing'), errno: 'ENOENT' }]);
  const f = lstatSync(fsPath(file), { bigint: true });
  assert.deepEqual([f.atimeNs, f.mtimeNs], [-86_400_123_456_789n, 4_102_444_800_123_456_789n]);
  const l = lstatSync(link, { bigint: true });
  assert.deepEqual([l.atimeNs, l.mtimeNs], [1_700_000_000_000_000_001n, 1_796_000_000_987_654_321n]);
});

test('without python3 the setter says so and sets nothing', async () => {
  const times = startExactTimes('/nonexistent/python3');
  times.set('/tmp/whatever', 1n, 1n);
  const outcome = await times.close();
  assert.match(outcome.unavailable ?? '', /python3 could not be started \(ENOENT\)/);
  assert.deepEqual(outcome.failures, []);
});
