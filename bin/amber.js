#!/usr/bin/env -S node --max-semi-space-size=2
// The entry point stays plain JavaScript so any Node can start it and say what it needs.
// - In a checkout (src/ is here) it runs the TypeScript sources, which Node 24 runs directly (type
//   stripping). On an older Node it hands over to the Node 24 that the project pins as a dev
//   dependency, forwarding signals to it and exiting as it exits.
// - In the installed package (no src/, see "files" in package.json) it runs the JavaScript that
//   `npm run build` emitted into dist/, on any Node that package.json's "engines" allows.
// The checkout never runs dist/: a build left there would be stale the moment src/ changes.
// A 2 MiB young generation (the shebang's flag, passed again on a hand-over) keeps garbage from a
// backup's many small objects from piling up: 200,000 small files peaked at 430-570 MB without it
// and 280 MB with it.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import module from 'node:module';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'];
const fromSource = existsSync(fileURLToPath(new URL('../src/cli/main.ts', import.meta.url)));
const [major, minor] = process.versions.node.split('.').map(Number);

if (fromSource && major < 24) handOver();
else await run();

async function run() {
  // The package's floor is zstd in node:zlib (22.15 on 22.x, 23.8 on 23.x); it must match "engines".
  if (!fromSource && !(major > 23 || (major === 23 && minor >= 8) || (major === 22 && minor >= 15))) {
    fail(
      `Amber needs Node.js 22.15 or later (23.8 or later on 23.x); this is ${process.version}`,
      'install a current Node.js LTS',
    );
  }
  // Node keeps the compiled (or type-stripped) modules on disk between runs: half the start-up time.
  module.enableCompileCache?.();
  const { main } = fromSource ? await import('../src/cli/main.ts') : await import('../dist/cli/main.js');
  process.exitCode = await main(process.argv.slice(2));
}

function handOver() {
  const pinned = fileURLToPath(new URL('../node_modules/node/bin/node', import.meta.url));
  if (!existsSync(pinned) || process.env.AMBER_REEXEC === '1') {
    fail(
      `Amber's sources need Node.js 24 or later; this is ${process.version}`,
      'run `npm ci` in the project and use `npx amber`, or install Node.js 24',
    );
  }
  const child = spawn(pinned, ['--max-semi-space-size=2', fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, AMBER_REEXEC: '1' },
  });
  // The child is the real amber: a signal meant for this process is meant for it (`kill` of a
  // `vault serve` must stop the server, not orphan it). Ctrl-C on a terminal is the exception: the
  // terminal sends it to the whole foreground process group, the child included, and a second
  // SIGINT would end a restore before it removes its partial files.
  const forward = (signal) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    if (signal === 'SIGINT' && inTerminalForeground()) return;
    child.kill(signal);
  };
  for (const signal of SIGNALS) process.on(signal, forward);
  child.on('error', (error) => fail(`could not start ${pinned}: ${error.message}`));
  child.on('exit', (code, signal) => {
    for (const name of SIGNALS) process.removeListener(name, forward);
    if (signal === null) process.exit(code ?? 1);
    // Die of the same signal, so a shell or supervisor sees what the child saw; if the signal does
    // not end this process, exit as a shell reports a signal's death.
    process.kill(process.pid, signal);
    setTimeout(() => process.exit(128 + (constants.signals[signal] ?? 0)), 1000);
  });
}

/** Whether this process (and so the child, in the same process group) is a terminal's foreground job. */
function inTerminalForeground() {
  try {
    // /proc/self/stat: pid (comm) state ppid pgrp session tty_nr tpgid ...
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const [, , pgrp, , ttyNr, tpgid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ttyNr !== '0' && pgrp === tpgid;
  } catch {
    return process.stdin.isTTY === true;
  }
}

function fail(message, hint) {
  process.stderr.write(`error: ${message}\n${hint ? `hint: ${hint}\n` : ''}`);
  process.exit(1);
}
