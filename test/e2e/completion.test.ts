// Shell completion and the man page come from the command tree itself: the bash script is valid
// and completes commands, subcommands and options as bash runs it; the man page renders with man
// and names every command; the fish script completes every command.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN } from '../../src/testing/agent-fixture.ts';
import { buildProgram } from '../../src/cli/main.ts';

const amber = (args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });
const commands = buildProgram(() => {})
  .program.commands.map((c) => c.name())
  .filter((name) => name !== 'help');

test('bash completion completes commands, subcommands and options as bash runs it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'amber-completion-'));
  try {
    const script = amber(['completion', 'bash']);
    assert.equal(script.status, 0, script.stderr);
    writeFileSync(join(dir, 'amber.bash'), script.stdout);
    assert.equal(spawnSync('bash', ['-n', join(dir, 'amber.bash')]).status, 0, 'valid bash');
    const complete = (...words: string[]) =>
      spawnSync(
        'bash',
        [
          '-c',
          `source ${join(dir, 'amber.bash')}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _amber; echo "\${COMPREPLY[@]}"`,
        ],
        { encoding: 'utf8' },
      ).stdout.trim();
    assert.equal(complete('amber', 'snap'), 'snapshots');
    assert.equal(
      complete('amber', 'lock', ''),
      'extend lift status --version --repo --password-file --json --quiet --utc',
    );
    assert.equal(complete('amber', '--repo', '/srv/r', 'backup', '--ta'), '--tag');
    assert.equal(complete('amber', 'drill', 'run', '--che'), '--check --check-sql --check-timeout');
    const zsh = amber(['completion', 'zsh']).stdout;
    assert.match(zsh, /^autoload -U \+X bashcompinit && bashcompinit\n/);
    const fish = amber(['completion', 'fish']).stdout;
    for (const name of commands) assert.match(fish, new RegExp(`-a ${name} -d `), `fish completes ${name}`);
    const wrong = amber(['completion', 'tcsh']);
    assert.equal(wrong.status, 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the man page renders and names every command', {
  skip: existsSync('/usr/bin/man') ? undefined : 'man is not installed',
}, () => {
  const dir = mkdtempSync(join(tmpdir(), 'amber-man-'));
  try {
    const page = amber(['man']);
    assert.equal(page.status, 0, page.stderr);
    assert.match(page.stdout, /^\.TH AMBER 1 /);
    writeFileSync(join(dir, 'amber.1'), page.stdout);
    const shown = spawnSync('man', ['-l', join(dir, 'amber.1')], {
      encoding: 'utf8',
      env: { ...process.env, MANPAGER: 'cat', MANWIDTH: '100' },
    });
    assert.equal(shown.status, 0, shown.stderr);
    for (const name of commands)
      assert.match(shown.stdout, new RegExp(`amber ${name}\\b`), `the page has amber ${name}`);
    assert.match(shown.stdout, /amber lock extend/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
