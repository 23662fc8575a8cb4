// Setting file times to the nanosecond. Node's utimes takes seconds as a double, which keeps about
// 240 ns (nodejs/node#50859), and no maintained npm package with prebuilt binaries offers
// utimensat. Python's os.utime does take integer nanoseconds, so a restore hands the times it set
// through Node to one python3 process, which sets them again exactly: one line per entry on its
// standard input, failures named on its standard output. Without python3 the times stay as Node
// set them, and the restore says so once (docs/decisions/0006-exact-times.md).
import { spawn } from 'node:child_process';
import { nameBytes, nameFromBytes } from '../../core/byte-names.ts';

const SCRIPT = `
import errno, os, sys
for line in sys.stdin.buffer:
    path, atime, mtime = line.rstrip(b"\\n").split(b"\\t")
    try:
        os.utime(bytes.fromhex(path.decode()), ns=(int(atime), int(mtime)), follow_symlinks=False)
    except OSError as error:
        sys.stdout.write(path.decode() + "\\t" + errno.errorcode.get(error.errno, str(error.errno)) + "\\n")
        sys.stdout.flush()
`;

export interface ExactTimes {
  /** Sets the times of `path` itself (never through a symlink) exactly, soon; the caller set them approximately. */
  set(path: string, atimeNs: bigint, mtimeNs: bigint): void;
  /** Waits until every time is set; what could not be set exactly, and why. */
  close(): Promise<ExactTimesOutcome>;
  /** Stops at once (an interrupted restore). */
  kill(): void;
}

export interface ExactTimesOutcome {
  /** python3 could not be started: every time stays within about 240 ns of its value. */
  unavailable?: string;
  failures: { path: string; errno: string }[];
}

export function startExactTimes(python = 'python3'): ExactTimes {
  // Its own process group: a Ctrl-C meant for the restore must not kill it first; the restore stops
  // it itself, and if the restore dies outright the end of its standard input ends it.
  const child = spawn(python, ['-c', SCRIPT], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, LC_ALL: 'C' },
    detached: true,
  });
  let unavailable: string | undefined;
  let output = '';
  let errors = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => (output += text));
  child.stderr.setEncoding('utf8').on('data', (text: string) => (errors += text));
  child.stdin.on('error', () => {}); // a child that failed to start: reported by 'error' or its exit
  const exited = new Promise<number | null>((resolve) => {
    child.on('error', (error: NodeJS.ErrnoException) => {
      unavailable = `python3 could not be started (${error.code ?? error.message})`;
      resolve(null);
    });
    child.on('close', (code) => resolve(code));
  });
  return {
    set(path, atimeNs, mtimeNs) {
      if (unavailable) return;
      const hex = nameBytes(path).toString('hex');
      child.stdin.write(`${hex}\t${atimeNs}\t${mtimeNs}\n`);
    },
    async close() {
      child.stdin.end();
      const code = await exited;
      if (unavailable) return { unavailable, failures: [] };
      if (code !== 0)
        return { unavailable: `python3 failed (${errors.trim().split('\n').pop() ?? code})`, failures: [] };
      const failures = output
        .split('\n')
        .filter(Boolean)
        .map((line) => {
          const [hex, errno] = line.split('\t');
          return { path: nameFromBytes(Buffer.from(hex, 'hex')), errno };
        });
      return { failures };
    },
    kill() {
      child.kill('SIGKILL');
    },
  };
}
