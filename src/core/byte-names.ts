// Names and paths as the bytes the filesystem holds. Linux names are bytes (anything but "/" and
// NUL), not text; most are UTF-8 and stay ordinary strings here. A byte that is not part of valid
// UTF-8 is carried as one lone low surrogate, U+DC80 + (byte − 0x80), the "surrogateescape"
// convention of Python's os module (PEP 383). Valid UTF-8 never decodes to a lone surrogate, so the
// mapping is one-to-one: every byte string has exactly one such string and back. Strings flow
// through the code as before; only calls into the filesystem (fsPath), the tree encoding (nameBytes)
// and what people read (displayName) need to know.

/** A lone low surrogate in the escape range: not preceded by a high surrogate. */
const ESCAPED = /(?<![\uD800-\uDBFF])[\uDC80-\uDCFF]/;

/** True when `name` carries bytes that are not UTF-8 (it must then reach the kernel as bytes). */
export function hasEscapedBytes(name: string): boolean {
  return ESCAPED.test(name);
}

/** Decodes bytes as UTF-8, keeping every byte that is not valid UTF-8 as an escaped byte. */
export function nameFromBytes(bytes: Uint8Array): string {
  const buffer = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const text = buffer.toString('utf8');
  // Decoding replaces bad bytes with U+FFFD; a name without one (or whose U+FFFD was real) is done.
  if (!text.includes('\uFFFD') || Buffer.from(text, 'utf8').equals(buffer)) return text;
  let out = '';
  let i = 0;
  while (i < buffer.length) {
    const length = validSequenceLength(buffer, i);
    if (length > 0) {
      out += buffer.toString('utf8', i, i + length);
      i += length;
    } else {
      out += String.fromCharCode(0xdc00 + buffer[i]);
      i += 1;
    }
  }
  return out;
}

/** Length of the valid UTF-8 sequence starting at `i` (RFC 3629: no overlongs, no surrogates), or 0. */
function validSequenceLength(b: Buffer, i: number): number {
  const first = b[i];
  if (first < 0x80) return 1;
  let length: number;
  let min: number;
  if (first >= 0xc2 && first <= 0xdf) [length, min] = [2, 0x80];
  else if (first >= 0xe0 && first <= 0xef) [length, min] = [3, 0x800];
  else if (first >= 0xf0 && first <= 0xf4) [length, min] = [4, 0x10000];
  else return 0;
  if (i + length > b.length) return 0;
  let code = first & (0x7f >> length);
  for (let k = 1; k < length; k++) {
    const next = b[i + k];
    if ((next & 0xc0) !== 0x80) return 0;
    code = (code << 6) | (next & 0x3f);
  }
  if (code < min || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return 0;
  return length;
}

/** The bytes a name stands for: UTF-8, with escaped bytes put back as they were. */
export function nameBytes(name: string): Buffer {
  if (!hasEscapedBytes(name)) return Buffer.from(name, 'utf8');
  const parts: Buffer[] = [];
  let run = '';
  for (let i = 0; i < name.length; i++) {
    const unit = name.charCodeAt(i);
    const lone = unit >= 0xdc80 && unit <= 0xdcff && !(i > 0 && isHigh(name.charCodeAt(i - 1)));
    if (!lone) {
      run += name[i];
      continue;
    }
    if (run) parts.push(Buffer.from(run, 'utf8'));
    run = '';
    parts.push(Buffer.of(unit - 0xdc00));
  }
  if (run) parts.push(Buffer.from(run, 'utf8'));
  return Buffer.concat(parts);
}

const isHigh = (unit: number) => unit >= 0xd800 && unit <= 0xdbff;

/** What to hand Node's fs for `path`: the string itself, or its bytes when it carries escaped bytes. */
export function fsPath(path: string): string | Buffer {
  return hasEscapedBytes(path) ? nameBytes(path) : path;
}

/** Orders names by their bytes, as trees are sorted. */
export function compareNameBytes(a: string, b: string): number {
  return Buffer.compare(nameBytes(a), nameBytes(b));
}

/**
 * A name or path as a person should read it, on one line: a byte that is not UTF-8 as `\xHH`, control
 * characters as `\n`, `\t`, `\r` or `\xHH`, and the backslash doubled so the escapes are unambiguous.
 * Names that need none of this (nearly all) come back unchanged.
 */
export function displayName(name: string): string {
  if (!NEEDS_ESCAPE.test(name)) return name;
  let out = '';
  for (let i = 0; i < name.length; i++) {
    const unit = name.charCodeAt(i);
    if (unit >= 0xdc80 && unit <= 0xdcff && !(i > 0 && isHigh(name.charCodeAt(i - 1)))) {
      out += `\\x${(unit - 0xdc00).toString(16).padStart(2, '0')}`;
    } else if (unit === 0x5c) out += '\\\\';
    else if (unit === 0x0a) out += '\\n';
    else if (unit === 0x09) out += '\\t';
    else if (unit === 0x0d) out += '\\r';
    else if (unit < 0x20 || unit === 0x7f) out += `\\x${unit.toString(16).padStart(2, '0')}`;
    else out += name[i];
  }
  return out;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it finds
const NEEDS_ESCAPE = /[\x00-\x1f\x7f\\\uDC80-\uDCFF]/;

/** True when displayName would change `name`: JSON output then carries the raw bytes beside it. */
export function needsRawForm(name: string): boolean {
  return NEEDS_ESCAPE.test(name);
}

/**
 * The entry a path component someone typed names: the one shown (by ls, in warnings) as exactly
 * that, else the one whose name it is. The shown form goes first: `caf\xe9.txt` is how ls shows a
 * name with the byte 0xE9, and a file literally named `caf\xe9.txt` (a backslash) is shown as
 * `caf\\xe9.txt`; matching by the exact name first would give that file for what ls shows of the other.
 */
export function findNamed<T extends { name: string }>(entries: readonly T[], wanted: string): T | undefined {
  return (
    entries.find((entry) => needsRawForm(entry.name) && displayName(entry.name) === wanted) ??
    entries.find((entry) => entry.name === wanted)
  );
}

/** For --json: the readable form, with the exact bytes in base64 beside it when they differ. */
export function jsonName(name: string): { text: string; base64?: string } {
  return needsRawForm(name) ? { text: displayName(name), base64: nameBytes(name).toString('base64') } : { text: name };
}
