import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createProgressLine } from './progress.ts';
import type { Clock } from '../core/clock.ts';

function capture() {
  let text = '';
  const stream = new Writable({
    write(chunk, _encoding, done) {
      text += chunk;
      done();
    },
  });
  return { stream, text: () => text };
}

function fakeClock(): Clock & { advance(ms: number): void } {
  let now = 0;
  return { nowMs: () => now, monotonicMs: () => now, advance: (ms) => (now += ms) };
}

test('progress shows files, bytes, rate and ETA, redrawn in place at most every 200 ms', () => {
  const out = capture();
  const clock = fakeClock();
  const line = createProgressLine(out.stream, clock, true);
  clock.advance(1000);
  line.update({ files: 10, bytes: 50 * 1024 * 1024, totalBytes: 100 * 1024 * 1024, label: '/data/x' });
  assert.match(
    out.text(),
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the progress line is drawn with ESC [K
    /\r\x1b\[K\[1\.0s\] {2}10 files {2}50\.0 MiB \/ 100\.0 MiB {2}50\.0 MiB\/s {2}ETA 1\.0s {2}\/data\/x/,
  );
  const drawn = out.text();
  clock.advance(50);
  line.update({ files: 11, bytes: 51 * 1024 * 1024 });
  assert.equal(out.text(), drawn, 'no redraw within 200 ms');
  line.done();
  assert.ok(out.text().endsWith('\r\x1b[K'), 'the line is cleared at the end');
});

test('progress is silent when disabled (pipes, --json, --quiet)', () => {
  const out = capture();
  const clock = fakeClock();
  const line = createProgressLine(out.stream, clock, false);
  clock.advance(1000);
  line.update({ files: 1, bytes: 1 });
  line.done();
  assert.equal(out.text(), '');
});
