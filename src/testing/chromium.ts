// Headless Chromium (Debian's /usr/bin/chromium) for tests of pages Amber writes: the DOM as the
// browser built it and a PNG screenshot, decoded here so a test can look at the pixels.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';

export const CHROMIUM = '/usr/bin/chromium';

/** Why Chromium cannot run here, or undefined when it can. */
export function whyNoChromium(): string | undefined {
  return spawnSync(CHROMIUM, ['--version']).status === 0
    ? undefined
    : `${CHROMIUM} is not installed (apt-get install chromium)`;
}

// Everything that would reach for the network off: the machine's network is closed to all but 127.0.0.1.
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--hide-scrollbars',
];

export interface Rendered {
  dom: string;
  png: { width: number; height: number; rgba: Buffer };
}

export function renderPage(file: string, size = { width: 1280, height: 1400 }): Rendered {
  const profile = mkdtempSync(join(tmpdir(), 'amber-chromium-'));
  try {
    const common = [...FLAGS, `--user-data-dir=${profile}`, `--window-size=${size.width},${size.height}`];
    const dom = spawnSync(CHROMIUM, [...common, '--dump-dom', `file://${file}`], { encoding: 'utf8', timeout: 60_000 });
    if (dom.status !== 0) throw new Error(`chromium --dump-dom failed: ${dom.stderr}`);
    const shot = join(profile, 'shot.png');
    const taken = spawnSync(CHROMIUM, [...common, `--screenshot=${shot}`, `file://${file}`], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    if (taken.status !== 0) throw new Error(`chromium --screenshot failed: ${taken.stderr}`);
    return { dom: dom.stdout, png: decodePng(readFileSync(shot)) };
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}

/** How many pixels have exactly this colour. */
export function countColour(png: Rendered['png'], [r, g, b]: [number, number, number]): number {
  let count = 0;
  for (let i = 0; i < png.rgba.length; i += 4)
    if (png.rgba[i] === r && png.rgba[i + 1] === g && png.rgba[i + 2] === b) count++;
  return count;
}

/** An 8-bit RGB or RGBA, non-interlaced PNG (what Chromium writes) to RGBA pixels. */
export function decodePng(file: Buffer): Rendered['png'] {
  if (!file.subarray(0, 8).equals(Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]))) throw new Error('not a PNG');
  let width = 0;
  let height = 0;
  let channels = 4;
  const data: Buffer[] = [];
  for (let at = 8; at < file.length; ) {
    const length = file.readUInt32BE(at);
    const type = file.toString('latin1', at + 4, at + 8);
    const body = file.subarray(at + 8, at + 8 + length);
    if (type === 'IHDR') {
      width = body.readUInt32BE(0);
      height = body.readUInt32BE(4);
      if (body[8] !== 8 || body[12] !== 0 || (body[9] !== 6 && body[9] !== 2))
        throw new Error('only 8-bit RGB(A) non-interlaced PNGs are decoded');
      channels = body[9] === 6 ? 4 : 3;
    } else if (type === 'IDAT') data.push(body);
    at += 12 + length;
  }
  const raw = inflateSync(Buffer.concat(data));
  const stride = width * channels;
  const out = Buffer.alloc(width * height * 4);
  let previous = Buffer.alloc(stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const row = Buffer.from(raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1)));
    for (let x = 0; x < stride; x++) {
      const left = x >= channels ? row[x - channels] : 0;
      const up = previous[x];
      const upLeft = x >= channels ? previous[x - channels] : 0;
      const paeth = () => {
        const p = left + up - upLeft;
        const [pa, pb, pc] = [Math.abs(p - left), Math.abs(p - up), Math.abs(p - upLeft)];
        return pa <= pb && pa <= pc ? left : pb <= pc ? up : upLeft;
      };
      const add = [0, left, up, (left + up) >> 1, paeth()][filter];
      row[x] = (row[x] + add) & 0xff;
    }
    for (let x = 0; x < width; x++) {
      out[(y * width + x) * 4] = row[x * channels];
      out[(y * width + x) * 4 + 1] = row[x * channels + 1];
      out[(y * width + x) * 4 + 2] = row[x * channels + 2];
      out[(y * width + x) * 4 + 3] = channels === 4 ? row[x * channels + 3] : 255;
    }
    previous = row;
  }
  return { width, height, rgba: out };
}
