// `npm run build` (and `npm pack`, through prepack): the package's JavaScript in dist/, emitted by tsc
// from src/ (tsconfig.build.json: no tests, no test helpers), then checked for what tsc does not
// promise: every relative import names a .js file that exists, nothing under src/testing came in
// through an import, and every worker a module starts by its .ts name has its .js beside it
// (src/engine/worker-pool.ts swaps the extension). docs/packaging.md says why.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = join(root, 'dist');
const tsc = join(root, 'node_modules', '.bin', 'tsc');

rmSync(dist, { recursive: true, force: true });
const compiled = spawnSync(tsc, ['-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
if (compiled.error) throw compiled.error;
if (compiled.status !== 0) process.exit(compiled.status ?? 1);

const files = readdirSync(dist, { recursive: true, withFileTypes: true })
  .filter((entry) => entry.isFile())
  .map((entry) => join(entry.parentPath, entry.name));
const problems: string[] = [];
for (const file of files) {
  const name = relative(dist, file);
  if (!name.endsWith('.js')) problems.push(`${name}: not JavaScript`);
  if (name.startsWith('testing/') || /\.(test|bench)\.js$/.test(name))
    problems.push(`${name}: test code in the package (imported by the CLI?)`);
  if (!name.endsWith('.js')) continue;
  const text = readFileSync(file, 'utf8');
  const specifiers = [...text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)'(\.{1,2}\/[^']*)'/g)].map(
    (match) => match[1],
  );
  for (const specifier of specifiers) {
    if (!specifier.endsWith('.js')) problems.push(`${name}: import '${specifier}' does not name a .js file`);
    else if (!existsSync(resolve(dirname(file), specifier))) problems.push(`${name}: import '${specifier}' is missing`);
  }
  for (const match of text.matchAll(/new URL\('(\.{1,2}\/[^']+)\.ts', import\.meta\.url\)/g)) {
    if (!existsSync(resolve(dirname(file), `${match[1]}.js`)))
      problems.push(`${name}: worker ${match[1]}.js is missing`);
  }
}
if (problems.length > 0) {
  process.stderr.write(
    `build: dist/ is not a package that runs:\n${problems.map((problem) => `  ${problem}\n`).join('')}`,
  );
  process.exit(1);
}
process.stdout.write(`build: ${files.length} files in dist/\n`);
