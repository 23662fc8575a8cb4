// Exclude patterns with restic's meaning, so users can bring their exclude files along.
//
// A pattern is split at '/' into parts; each part is matched against one path component with
// Go filepath.Match rules: `*` any run of characters (leading dots included), `?` one character,
// `[abc]`, `[a-z]`, `[^a-z]` (or `[!a-z]`) classes and `\` escapes; no part matches across '/'.
// A part that is exactly `**` matches any number of components, zero included.
// - A pattern starting with '/' is anchored at the filesystem root; any other pattern may match at
//   any depth, so `node_modules` and `cache/tmp` match wherever those components appear.
// - A pattern ending in '/' matches directories only.
// - A pattern that matches a directory also matches everything below it.
// Node's path.matchesGlob is not used: its `*` skips dotfiles, restic's does not.
import { promises as fs } from 'node:fs';
import { nameFromBytes } from '../../core/byte-names.ts';
import { AmberError } from '../../core/errors.ts';

/** Says whether the entry at `absolutePath` (whose last component is `name`) is excluded. */
export type ExcludeMatcher = (absolutePath: string, name: string, isDir: boolean) => boolean;

interface CompiledPattern {
  /** Matches a path the pattern names exactly. */
  exact: RegExp;
  /** Matches a path below a directory the pattern names. */
  below: RegExp;
  /** For a single-part pattern: the part alone, tested against the entry's name. */
  namePart: RegExp | undefined;
  dirOnly: boolean;
}

/**
 * `entryOnly`: the entry the pattern names, not what is below a directory it names (what
 * `amber find` reports); an exclude leaves out both.
 */
export function createExcludeMatcher(patterns: string[], options: { entryOnly?: boolean } = {}): ExcludeMatcher {
  const compiled = patterns.filter((pattern) => pattern !== '').map(compilePattern);
  return (absolutePath, name, isDir) => {
    if (!absolutePath.startsWith('/')) throw new Error(`exclude matcher needs an absolute path, got "${absolutePath}"`);
    const path = absolutePath.length > 1 && absolutePath.endsWith('/') ? absolutePath.slice(0, -1) : absolutePath;
    return compiled.some((pattern) => matches(pattern, path, name, isDir, options.entryOnly === true));
  };
}

function matches(pattern: CompiledPattern, path: string, name: string, isDir: boolean, entryOnly: boolean): boolean {
  const exactAllowed = isDir || !pattern.dirOnly;
  if (exactAllowed && name !== '' && pattern.namePart?.test(name) === true) return true;
  return (exactAllowed && pattern.exact.test(path)) || (!entryOnly && pattern.below.test(path));
}

function compilePattern(pattern: string): CompiledPattern {
  const dirOnly = pattern.length > 1 && pattern.endsWith('/');
  const anchored = pattern.startsWith('/');
  const parts = pattern.split('/').filter((part) => part !== '');
  // Each component of "/a/b" is "/" plus a non-empty name; the lookahead keeps `*` off the empty root.
  const body = parts.map((part) => (part === '**' ? '(?:/[^/]+)*' : `/(?=[^/])${compilePart(part, pattern)}`)).join('');
  const start = anchored ? '^' : '^(?:/[^/]+)*?';
  const single = !anchored && parts.length === 1 && parts[0] !== '**';
  return {
    exact: new RegExp(`${start}${body}$`, 'u'),
    below: new RegExp(`${start}${body}/`, 'u'),
    namePart: single ? new RegExp(`^${compilePart(parts[0], pattern)}$`, 'u') : undefined,
    dirOnly,
  };
}

/** Translates one path component pattern into a RegExp source that never matches '/'. */
function compilePart(part: string, pattern: string): string {
  const chars = Array.from(part);
  let source = '';
  for (let i = 0; i < chars.length; i++) {
    const char = chars[i];
    if (char === '*') {
      source += '[^/]*';
    } else if (char === '?') {
      source += '[^/]';
    } else if (char === '\\') {
      if (i + 1 >= chars.length) throw badPattern(pattern, 'it ends with a lone backslash');
      source += escapeOutsideClass(chars[++i]);
    } else if (char === '[') {
      const { classSource, end } = compileClass(chars, i, pattern);
      source += classSource;
      i = end;
    } else {
      source += escapeOutsideClass(char);
    }
  }
  return source;
}

/** Compiles the class opening at `chars[start]`; returns its source and the index of its ']'. */
function compileClass(chars: string[], start: number, pattern: string): { classSource: string; end: number } {
  let i = start + 1;
  const negated = chars[i] === '^' || chars[i] === '!';
  if (negated) i++;
  let body = '';
  let first = true;
  while (i < chars.length && (chars[i] !== ']' || first)) {
    if (chars[i] === ']') throw badPattern(pattern, 'it has an empty [] class');
    const low = readClassChar(chars, i, pattern);
    i = low.next;
    if (chars[i] === '-' && i + 1 < chars.length && chars[i + 1] !== ']') {
      const high = readClassChar(chars, i + 1, pattern);
      if (high.char.codePointAt(0)! < low.char.codePointAt(0)!)
        throw badPattern(pattern, `the range ${low.char}-${high.char} is reversed`);
      body += `${escapeInClass(low.char)}-${escapeInClass(high.char)}`;
      i = high.next;
    } else {
      body += escapeInClass(low.char);
    }
    first = false;
  }
  if (i >= chars.length) throw badPattern(pattern, 'a [ class is not closed');
  return { classSource: negated ? `[^/${body}]` : `(?!/)[${body}]`, end: i };
}

function readClassChar(chars: string[], i: number, pattern: string): { char: string; next: number } {
  if (chars[i] !== '\\') return { char: chars[i], next: i + 1 };
  if (i + 1 >= chars.length) throw badPattern(pattern, 'it ends with a lone backslash');
  return { char: chars[i + 1], next: i + 2 };
}

function escapeOutsideClass(char: string): string {
  return /[\\^$.*+?()[\]{}|/]/.test(char) ? `\\${char}` : char;
}

function escapeInClass(char: string): string {
  return /[\\\][^-]/.test(char) ? `\\${char}` : char;
}

function badPattern(pattern: string, reason: string): AmberError {
  return new AmberError('USAGE', `exclude pattern "${pattern}" is not valid: ${reason}`, {
    hint: 'patterns use * ? [a-z] and ** ; escape a literal *, ?, [ or \\ with a backslash',
    details: { pattern },
  });
}

/**
 * Reads an exclude file: one pattern per line, trailing whitespace removed, blank lines and lines
 * starting with '#' ignored. Leading whitespace is kept, as it may be part of a name.
 */
export async function readExcludeFile(path: string): Promise<string[]> {
  let text: string;
  try {
    // Bytes, not UTF-8 text: a pattern may name a file whose name is not UTF-8, exactly.
    text = nameFromBytes(await fs.readFile(path));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new AmberError('SOURCE_NOT_FOUND', `exclude file "${path}" does not exist`, {
        hint: 'check the path given to --exclude-file',
        cause: error,
        details: { path },
      });
    }
    throw new AmberError('SOURCE_UNREADABLE', `exclude file "${path}" could not be read (${code ?? 'unknown error'})`, {
      cause: error,
      details: { path },
    });
  }
  return text
    .split('\n')
    .map((line) => line.trimEnd())
    .filter((line) => line.trim() !== '' && !line.trimStart().startsWith('#'));
}
