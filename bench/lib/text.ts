// Realistic, compressible text in several styles (source code, prose, logs, CSV, SQL dumps, config,
// JSON), built from a Zipf-distributed pseudo-vocabulary so it compresses like real text (about 3×
// with zstd) rather than like a repeated pattern (100×) or noise (1×).
import { createRandom, type Random } from './random.ts';

export const TEXT_STYLES = ['source', 'prose', 'log', 'csv', 'sql', 'config', 'json'] as const;
export type TextStyle = (typeof TEXT_STYLES)[number];

export interface TextSource {
  /** Writes whole lines into `out` and returns how many bytes it wrote (at least out.length - MAX_LINE_BYTES). */
  fill(out: Buffer): number;
}

/** No generated line is longer than this, so a buffer with this much room always takes one more. */
export const MAX_LINE_BYTES = 1024;

const VOCABULARY_SIZE = 4096;
const LETTERS =
  'eeeeeeeeeeeetttttttttaaaaaaaaoooooooiiiiiiinnnnnnnsssssshhhhhhrrrrrrddddllllcccuuummmwwffggyyppbbvkjxqz';

interface Vocabulary {
  words: string[];
  /** 65536 entries: a uniform 16-bit number picks a word with Zipf probability. */
  zipf: Uint16Array;
}

let vocabulary: Vocabulary | undefined;

function getVocabulary(): Vocabulary {
  if (vocabulary) return vocabulary;
  const random = createRandom('amber-bench-vocabulary');
  const seen = new Set<string>();
  const words: string[] = [];
  while (words.length < VOCABULARY_SIZE) {
    const length = Math.min(12, 2 + Math.floor(random.logNormal(3.5, 0.45)));
    let word = '';
    for (let i = 0; i < length; i++) word += LETTERS[random.int(0, LETTERS.length)];
    if (!seen.has(word)) {
      seen.add(word);
      words.push(word);
    }
  }
  const weights = words.map((_, rank) => 1 / (rank + 2.7));
  const total = weights.reduce((sum, weight) => sum + weight, 0);
  const zipf = new Uint16Array(65536);
  let cumulative = 0;
  let rank = 0;
  for (let slot = 0; slot < zipf.length; slot++) {
    while (rank < words.length - 1 && ((cumulative + weights[rank]) / total) * 65536 < slot + 0.5)
      cumulative += weights[rank++];
    zipf[slot] = rank;
  }
  vocabulary = { words, zipf };
  return vocabulary;
}

interface LineState {
  random: Random;
  word: () => string;
  words: (count: number) => string;
  indent: number;
  timeMs: number;
  row: number;
}

const KEYWORDS = [
  'const',
  'return',
  'if',
  'else',
  'for',
  'function',
  'import',
  'export',
  'let',
  'await',
  'async',
  'new',
  'this',
  'null',
  'true',
  'false',
  'self',
  'def',
  'struct',
  'int',
];
const LEVELS = ['INFO ', 'INFO ', 'INFO ', 'INFO ', 'DEBUG', 'DEBUG', 'WARN ', 'ERROR'];

function sourceLine(s: LineState): string {
  const pad = '  '.repeat(s.indent);
  const kind = s.random.int(0, 12);
  if (kind === 0) return '\n';
  if (kind === 1 && s.indent < 6) {
    s.indent++;
    return `${pad}${s.random.pick(KEYWORDS)} (${s.word()} === ${s.word()}.${s.word()}) {\n`;
  }
  if (kind <= 3 && s.indent > 0) {
    s.indent--;
    return `${'  '.repeat(s.indent)}}\n`;
  }
  if (kind === 4) return `${pad}// ${s.words(s.random.int(3, 12))}\n`;
  if (kind === 5) return `${pad}${s.random.pick(KEYWORDS)} ${s.word()}(${s.word()}, ${s.random.int(0, 4096)});\n`;
  if (kind === 6) return `${pad}${s.word()}.${s.word()} = '${s.words(s.random.int(1, 4))}';\n`;
  return `${pad}${s.random.pick(KEYWORDS)} ${s.word()}_${s.word()} = ${s.word()}.${s.word()}(${s.word()}, ${s.word()});\n`;
}

function proseLine(s: LineState): string {
  const kind = s.random.int(0, 30);
  if (kind === 0) return '\n';
  if (kind === 1) return `## ${s.words(s.random.int(2, 6))}\n\n`;
  let line = '';
  while (line.length < 72) line += `${s.word()}${s.random.chance(0.08) ? '.' : s.random.chance(0.06) ? ',' : ''} `;
  return `${line.trimEnd()}\n`;
}

function logLine(s: LineState): string {
  s.timeMs += s.random.int(0, 2500);
  const time = new Date(s.timeMs).toISOString();
  return `${time} ${s.random.pick(LEVELS)} [${s.word()}-${s.random.int(0, 8)}] ${s.words(s.random.int(2, 9))} id=${s.random.int(0, 1e6)} took=${s.random.int(0, 900)}ms\n`;
}

const DAYS = Array.from({ length: 4096 }, (_, day) => new Date(1.6e12 + day * 86_400_000).toISOString().slice(0, 10));
const cents = (random: Random) => `${random.int(0, 1e4)}.${random.int(10, 100)}`;

function csvLine(s: LineState): string {
  s.row++;
  return `${s.row},${s.word()},${s.random.int(0, 1e5)},${cents(s.random)},${s.word()} ${s.word()},${DAYS[(s.row >> 10) % DAYS.length]}\n`;
}

function sqlLine(s: LineState): string {
  s.row++;
  if (s.row % 500 === 1)
    return `\nCREATE TABLE ${s.word()}_${s.word()} (id integer PRIMARY KEY, name text, amount numeric, note text);\n`;
  return `INSERT INTO ${s.word()} VALUES (${s.row}, '${s.word()} ${s.word()}', ${cents(s.random)}, '${s.words(s.random.int(1, 8))}');\n`;
}

function configLine(s: LineState): string {
  const kind = s.random.int(0, 10);
  if (kind === 0) return `\n[${s.word()}]\n`;
  if (kind === 1) return `# ${s.words(s.random.int(3, 10))}\n`;
  return `${s.word()}_${s.word()} = ${s.random.chance(0.5) ? s.random.int(0, 65536) : s.word()}\n`;
}

function jsonLine(s: LineState): string {
  s.row++;
  return `  {"id": ${s.row}, "${s.word()}": "${s.words(s.random.int(1, 5))}", "${s.word()}": ${s.random.int(0, 1e6)}, "${s.word()}": ${s.random.chance(0.5)}},\n`;
}

const LINES: Record<TextStyle, (s: LineState) => string> = {
  source: sourceLine,
  prose: proseLine,
  log: logLine,
  csv: csvLine,
  sql: sqlLine,
  config: configLine,
  json: jsonLine,
};

export function createTextSource(style: TextStyle, seed: string): TextSource {
  const { words, zipf } = getVocabulary();
  const random = createRandom(`text:${style}:${seed}`);
  const word = () => words[zipf[random.uint32() >>> 16]];
  const state: LineState = {
    random,
    word,
    words(count) {
      let text = word();
      for (let i = 1; i < count; i++) text += ` ${word()}`;
      return text;
    },
    indent: 0,
    timeMs: 1.7e12 + random.int(0, 1e9),
    row: 0,
  };
  const line = LINES[style];
  return {
    fill(out) {
      let position = 0;
      while (position + MAX_LINE_BYTES <= out.length) position += out.write(line(state), position, 'latin1');
      return position;
    },
  };
}
