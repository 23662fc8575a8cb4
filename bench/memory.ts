// Peak memory of the real CLI on the two shapes that break naive backup tools: one huge file and a
// very large number of small files. Prints peak RSS (from /usr/bin/time -v) for each phase.
//   node bench/memory.ts [--file-gib 2] [--small-files 200000]
import { spawn } from 'node:child_process';
import { createCipheriv } from 'node:crypto';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { removeTree } from './lib/remove-tree.ts';

const BIN = fileURLToPath(new URL('../bin/amber.js', import.meta.url));
const { values } = parseArgs({
  options: { 'file-gib': { type: 'string', default: '2' }, 'small-files': { type: 'string', default: '200000' } },
});

interface Measured {
  status: number | null;
  peakRssMb: number;
  seconds: number;
  stdout: string;
}

/** Runs the CLI under /usr/bin/time -v, optionally feeding `input` chunks to its stdin. */
function run(args: string[], env: Record<string, string>, input?: AsyncIterable<Buffer>): Promise<Measured> {
  const started = performance.now();
  const child = spawn('/usr/bin/time', ['-v', process.execPath, '--max-semi-space-size=2', BIN, ...args], {
    env: { ...process.env, ...env },
    stdio: [input ? 'pipe' : 'ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (data) => (stdout += data));
  child.stderr!.on('data', (data) => (stderr += data));
  if (input) {
    void (async () => {
      for await (const chunk of input) {
        if (!child.stdin!.write(chunk)) await new Promise((resolve) => child.stdin!.once('drain', resolve));
      }
      child.stdin!.end();
    })();
  }
  return new Promise((resolve) => {
    child.on('close', (status) => {
      const kb = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(stderr)?.[1] ?? NaN);
      if (status !== 0) process.stderr.write(stderr);
      resolve({ status, peakRssMb: kb / 1024, seconds: (performance.now() - started) / 1000, stdout });
    });
  });
}

async function* pseudoRandom(totalBytes: number): AsyncGenerator<Buffer> {
  const cipher = createCipheriv('aes-256-ctr', Buffer.alloc(32, 1), Buffer.alloc(16));
  const zeros = Buffer.alloc(4 * 1024 * 1024);
  for (let done = 0; done < totalBytes; done += zeros.length) {
    yield cipher.update(zeros.subarray(0, Math.min(zeros.length, totalBytes - done)));
  }
}

async function makeSmallFiles(root: string, count: number): Promise<void> {
  const perDir = 100;
  for (let dir = 0; dir * perDir < count; dir++) {
    const path = join(root, `d${Math.floor(dir / 100)}`, `e${dir % 100}`);
    await mkdir(path, { recursive: true });
    const writes: Promise<void>[] = [];
    for (let file = 0; file < perDir && dir * perDir + file < count; file++) {
      const n = dir * perDir + file;
      writes.push(writeFile(join(path, `f${file}.txt`), `file ${n}\n`.repeat(1 + (n % 200))));
    }
    await Promise.all(writes);
  }
}

const dir = await mkdtemp(join(tmpdir(), 'amber-memory-'));
const env = { AMBER_PASSWORD: 'bench', AMBER_KDF_LOG_N: '10' };
try {
  const fileBytes = Number(values['file-gib']) * 1024 ** 3;
  const big = join(dir, 'big-repo');
  await run(['init', '--repo', big], env);
  const one = await run(
    ['backup', '--repo', big, '--stdin', '--stdin-filename', 'big.bin', '--json'],
    env,
    pseudoRandom(fileBytes),
  );
  console.log(
    `one ${values['file-gib']} GiB file: status ${one.status}, peak RSS ${one.peakRssMb.toFixed(0)} MB, ${one.seconds.toFixed(1)} s`,
  );

  const count = Number(values['small-files']);
  const tree = join(dir, 'small');
  await makeSmallFiles(tree, count);
  const smallRepo = join(dir, 'small-repo');
  await run(['init', '--repo', smallRepo], env);
  const many = await run(['backup', '--repo', smallRepo, tree, '--json'], env);
  console.log(
    `${count} small files: status ${many.status}, peak RSS ${many.peakRssMb.toFixed(0)} MB, ${many.seconds.toFixed(1)} s`,
  );
  const again = await run(['backup', '--repo', smallRepo, tree, '--json'], env);
  console.log(
    `${count} small files, no change: status ${again.status}, peak RSS ${again.peakRssMb.toFixed(0)} MB, ${again.seconds.toFixed(1)} s`,
  );
} finally {
  await removeTree(dir);
}
