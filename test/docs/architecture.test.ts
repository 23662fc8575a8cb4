// docs/architecture.md names every folder of src/ (two levels deep) and every command, and nothing
// that is gone: a moved folder or a new command fails here until the document says so.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildProgram } from '../../src/cli/main.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DOC = readFileSync(join(ROOT, 'docs/architecture.md'), 'utf8');

/** First cells of the table rows under the heading `## title`, without their backticks. */
function firstCells(title: string): string[] {
  const section = DOC.split(/^## /m).find((part) => part.startsWith(`${title}\n`));
  assert.ok(section, `docs/architecture.md has a "## ${title}" section`);
  return section.split('\n').flatMap((line) => {
    const match = /^\|\s*`([^`]+)`\s*\|/.exec(line);
    return match ? [match[1]] : [];
  });
}

function foldersUnder(dir: string, depth: number): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .flatMap((entry) => {
      const path = join(dir, entry.name);
      return [`${relative(ROOT, path)}/`, ...(depth > 1 ? foldersUnder(path, depth - 1) : [])];
    });
}

test('the folder table lists exactly the folders of src/ (two levels deep), and the test folders that exist', () => {
  const documented = firstCells('What each folder owns');
  const srcFolders = foldersUnder(join(ROOT, 'src'), 2).sort();
  const documentedSrc = documented.filter((folder) => folder.startsWith('src/')).sort();
  assert.deepEqual(
    {
      missingFromDoc: srcFolders.filter((f) => !documentedSrc.includes(f)),
      gone: documentedSrc.filter((f) => !srcFolders.includes(f)),
    },
    { missingFromDoc: [], gone: [] },
  );
  const others = documented.filter((folder) => !folder.startsWith('src/'));
  const existing = new Set([...foldersUnder(join(ROOT, 'test'), 1), 'bench/']);
  assert.deepEqual(
    others.filter((folder) => !existing.has(folder)),
    [],
    'every other folder the table names exists',
  );
  assert.deepEqual(
    [...existing].filter((folder) => !others.includes(folder)),
    [],
    'every test folder is in the table',
  );
});

test('the command table lists exactly the commands the CLI has, with their subcommands, and services that exist', () => {
  const { program } = buildProgram(() => {});
  const commands = program.commands.map((command) => `amber ${command.name()}`).sort();
  const documented = firstCells('Commands').sort();
  assert.deepEqual(documented, commands);
  const rows = new Map(
    DOC.split('\n').flatMap((line) => {
      const match = /^\|\s*`amber ([a-z-]+)`\s*\|(.*)\|\s*$/.exec(line);
      return match ? [[match[1], match[2]] as const] : [];
    }),
  );
  for (const command of program.commands) {
    const row = rows.get(command.name())!;
    for (const sub of command.commands)
      assert.match(row, new RegExp(`\\b${sub.name()}\\b`), `amber ${command.name()} ${sub.name()} is named in its row`);
    for (const [, file] of row.matchAll(/`([a-z-]+\/[a-z-]+\.ts)`/g)) {
      assert.doesNotThrow(() => readFileSync(join(ROOT, 'src', file)), `amber ${command.name()}: src/${file} exists`);
    }
  }
});
