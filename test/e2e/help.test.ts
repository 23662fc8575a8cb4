// Every command's --help, as `amber CMD --help` prints it: each has an "Examples:" section, and
// every example that runs amber is a command line the parser accepts (known command, known options,
// the arguments it needs). Values such as durations are checked by the commands themselves, so an
// example's values are not judged here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Command } from 'commander';
import { buildProgram } from '../../src/cli/main.ts';

interface Found {
  path: string[];
  command: Command;
}

function everyCommand(command: Command, path: string[] = []): Found[] {
  return command.commands.flatMap((sub) => [
    { path: [...path, sub.name()], command: sub },
    ...everyCommand(sub, [...path, sub.name()]),
  ]);
}

/** What `--help` prints, including the text added after the options. */
function helpOf(command: Command): string {
  let out = '';
  command.configureOutput({
    writeOut: (text) => {
      out += text;
    },
    writeErr: (text) => {
      out += text;
    },
  });
  command.outputHelp();
  return out;
}

/** The example lines: indented lines after "Examples:", up to the first line that is not. */
function examplesOf(help: string): string[] | undefined {
  const at = help.indexOf('\nExamples:\n');
  if (at < 0) return undefined;
  const lines: string[] = [];
  for (const line of help.slice(at + '\nExamples:\n'.length).split('\n')) {
    if (!line.startsWith('  ')) break;
    lines.push(line.trim());
  }
  return lines;
}

/**
 * The simple commands of a shell line, as argument vectors: quotes, `#` comments, `&&`, `||`, `|`
 * and `;` are understood, redirections and their targets dropped. Enough for help examples.
 */
function shellCommands(line: string): string[][] {
  const commands: string[][] = [];
  let words: string[] = [];
  let word = '';
  let inWord = false;
  let quote = '';
  let redirect = false;
  const endWord = () => {
    if (inWord && !redirect) words.push(word);
    if (inWord) redirect = false;
    word = '';
    inWord = false;
  };
  const endCommand = () => {
    endWord();
    if (words.length > 0) commands.push(words);
    words = [];
  };
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === quote) quote = '';
      else word += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (c === '#' && !inWord) {
      break;
    } else if (c === ' ' || c === '\t') {
      endWord();
    } else if (c === '|' || c === ';' || c === '&') {
      if (line[i + 1] === c) i++;
      endCommand();
    } else if (c === '>' || c === '<') {
      endWord();
      redirect = true;
    } else {
      word += c;
      inWord = true;
    }
  }
  assert.equal(quote, '', `unterminated quote in the example "${line}"`);
  endCommand();
  return commands;
}

/** amber's arguments in an example command (after any VAR=value prefixes), or undefined for other programs. */
function amberArguments(words: string[]): string[] | undefined {
  let i = 0;
  while (i < words.length && /^[A-Z_][A-Z0-9_]*=/.test(words[i])) i++;
  return words[i] === 'amber' ? words.slice(i + 1) : undefined;
}

/** Parses an example with every action replaced by a no-op: only the command line is judged. */
async function parseError(args: string[]): Promise<string | undefined> {
  const { program } = buildProgram(() => {});
  const silent = { writeOut: () => {}, writeErr: () => {} };
  program.configureOutput(silent);
  for (const { command } of everyCommand(program)) {
    command.configureOutput(silent);
    // A group with an action of its own (`amber copy`, whose `status` is a subcommand) is a command line too.
    const ownAction = (command as unknown as { _actionHandler?: unknown })._actionHandler !== null;
    if (command.commands.length === 0 || ownAction) command.action(() => {});
  }
  try {
    await program.parseAsync(args, { from: 'user' });
    return undefined;
  } catch (error) {
    return (error as { exitCode?: number }).exitCode === 0 ? undefined : (error as Error).message;
  }
}

test('every command and subcommand has help with examples', () => {
  const { program } = buildProgram(() => {});
  const lacking = [{ path: [], command: program }, ...everyCommand(program)]
    .filter(({ command }) => command.name() !== 'help' && examplesOf(helpOf(command)) === undefined)
    .map(({ path }) => `amber ${path.join(' ')}`.trim());
  assert.deepEqual(lacking, [], 'commands whose --help has no "Examples:" section');
  const noGlobals = everyCommand(program)
    .filter(
      ({ command }) =>
        command.name() !== 'help' &&
        !/\nGlobal Options:\n[\s\S]*--repo[\s\S]*--json[\s\S]*--quiet/.test(helpOf(command)),
    )
    .map(({ path }) => `amber ${path.join(' ')}`);
  assert.deepEqual(noGlobals, [], 'commands whose --help does not list the global options');
});

test('every example in the help is a command line amber accepts', async () => {
  const { program } = buildProgram(() => {});
  const problems: string[] = [];
  let checked = 0;
  for (const { path, command } of [{ path: [] as string[], command: program }, ...everyCommand(program)]) {
    for (const line of examplesOf(helpOf(command)) ?? []) {
      for (const words of shellCommands(line)) {
        const args = amberArguments(words);
        if (args === undefined) continue;
        checked++;
        const error = await parseError(args);
        if (error) problems.push(`amber ${path.join(' ')} --help: "${line}": ${error}`);
      }
    }
  }
  assert.ok(checked > 100, `only ${checked} examples found`);
  assert.deepEqual(problems, []);
});
