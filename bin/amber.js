#!/usr/bin/env -S node --max-semi-space-size=2
// The package entry point stays plain JavaScript so any Node can start it; the CLI itself is
// TypeScript that Node 24 runs directly (type stripping). On an older Node, hand over to the
// Node 24 that the project pins as a dev dependency, or say clearly what is needed.
// A 2 MiB young generation (the shebang's flag) keeps garbage from a backup's many small objects
// from piling up: 200,000 small files peaked at 430-570 MB without it and 280 MB with it.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import module from 'node:module';
import { fileURLToPath } from 'node:url';

const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  const pinned = fileURLToPath(new URL('../node_modules/node/bin/node', import.meta.url));
  if (!existsSync(pinned) || process.env.AMBER_REEXEC === '1') {
    process.stderr.write(`error: Amber needs Node.js 24 or later; this is ${process.version}\nhint: run \`npm ci\` in the project and use \`npx amber\`, or install Node.js 24\n`);
    process.exit(1);
  }
  const child = spawnSync(pinned, ['--max-semi-space-size=2', fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, AMBER_REEXEC: '1' },
  });
  process.exit(child.status ?? 1);
}

// Node keeps the compiled (type-stripped) modules on disk between runs: half the start-up time.
module.enableCompileCache?.();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
