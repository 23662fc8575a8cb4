// A server a test starts from its distribution's binary (Dovecot, Radicale): spawned, waited for
// until it accepts connections on its port of 127.0.0.1 (and, for a server that greets, until it
// says something), and stopped with TERM, then KILL if it lingers, its scratch directory removed.
import { type ChildProcess, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export interface TestDaemon {
  kill(): void;
  stop(): Promise<void>;
}

export async function startTestDaemon(options: {
  name: string;
  command: string;
  args: string[];
  port: number;
  /** Wait for the server's first bytes (a greeting), not only for the connection. */
  greets: boolean;
  /** Removed by stop(). */
  dir: string;
  /** Where its log is, for the error if it does not come up. */
  logHint?: string;
}): Promise<TestDaemon> {
  const child: ChildProcess = spawn(options.command, options.args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr?.setEncoding('utf8').on('data', (text: string) => {
    log = (log + text).slice(-4000);
  });
  let exited = false;
  const gone = new Promise<void>((resolve) =>
    child.on('exit', () => {
      exited = true;
      resolve();
    }),
  );
  const said = () => `${log}${options.logHint ? ` (see ${options.logHint})` : ''}`;
  for (let i = 0; ; i++) {
    if (exited) throw new Error(`${options.name} exited at start: ${said()}`);
    const up = await new Promise<boolean>((resolve) => {
      const probe = connect(options.port, '127.0.0.1', () => {
        if (options.greets) return;
        probe.destroy();
        resolve(true);
      });
      probe.once('data', () => {
        probe.destroy();
        resolve(true);
      });
      probe.once('error', () => resolve(false));
    });
    if (up) break;
    if (i > 200) throw new Error(`${options.name} did not answer within 20 s: ${said()}`);
    await sleep(100);
  }
  return {
    kill() {
      child.kill('SIGKILL');
    },
    async stop() {
      if (!exited) {
        child.kill('SIGTERM');
        await Promise.race([gone, sleep(20_000, undefined, { ref: false })]);
        if (!exited) child.kill('SIGKILL');
      }
      rmSync(options.dir, { recursive: true, force: true });
    },
  };
}
