// Shared support for the agent's tests: the real bin as a child process, a webhook receiver on
// 127.0.0.1 that keeps every event it is posted, and waiting for a JSON log line.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../bin/amber.js', import.meta.url));

export interface Run {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function startAmber(
  args: string[],
  env: Record<string, string>,
): { child: ChildProcess; run: Run; done: Promise<Run> } {
  const child = spawn(process.execPath, [BIN, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH, AMBER_KDF_LOG_N: '10', ...env },
  });
  const run: Run = { status: null, signal: null, stdout: '', stderr: '' };
  child.stdout!.setEncoding('utf8').on('data', (piece: string) => {
    run.stdout += piece;
  });
  child.stderr!.setEncoding('utf8').on('data', (piece: string) => {
    run.stderr += piece;
  });
  const done = new Promise<Run>((resolve) =>
    child.on('close', (status, signal) => {
      run.status = status;
      run.signal = signal;
      resolve(run);
    }),
  );
  return { child, run, done };
}

/** The JSON lines of a log so far (lines that are not JSON are kept as {raw}). */
export function logLines(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      try {
        return JSON.parse(line) as Record<string, unknown>;
      } catch {
        return { raw: line };
      }
    });
}

/** Waits until `found` returns something, polling; fails after `timeoutMs` with `what`. */
export async function waitFor<T>(what: string, found: () => T | undefined | false, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = found();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

export interface Receiver {
  url: string;
  events: { headers: Record<string, string | string[] | undefined>; body: string; json: Record<string, unknown> }[];
  /** Answer this status to the next requests (default 200). */
  status: number;
  close(): Promise<void>;
}

/** A webhook receiver on 127.0.0.1 that records every POST. */
export async function startReceiver(): Promise<Receiver> {
  const receiver: Receiver = { url: '', events: [], status: 200, close: async () => {} };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let json: Record<string, unknown> = {};
      try {
        json = JSON.parse(body);
      } catch {}
      receiver.events.push({ headers: req.headers, body, json });
      res.writeHead(receiver.status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  receiver.url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/hook`;
  receiver.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return receiver;
}

export interface Mailbox {
  port: number;
  /** Each message as received (folded header lines unfolded), with the user it authenticated as. */
  mails: { from: string; to: string[]; raw: string; user?: string }[];
  close(): Promise<void>;
}

/**
 * A real SMTP server (the smtp-server library) on 127.0.0.1 that keeps every message: without
 * authentication, or requiring this user and password (AUTH PLAIN/LOGIN over plain text).
 */
export async function startSmtp(login?: { user: string; password: string }): Promise<Mailbox> {
  const mails: Mailbox['mails'] = [];
  const server = new SMTPServer({
    secure: false,
    disabledCommands: login ? ['STARTTLS'] : ['STARTTLS', 'AUTH'],
    allowInsecureAuth: true,
    authOptional: !login,
    onAuth(auth, _session, callback) {
      if (login && auth.username === login.user && auth.password === login.password)
        return callback(null, { user: login.user });
      callback(new Error('invalid login'));
    },
    onData(stream, session, callback) {
      let raw = '';
      stream.setEncoding('utf8').on('data', (piece: string) => {
        raw += piece;
      });
      stream.on('end', () => {
        mails.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((recipient) => recipient.address),
          raw: raw.replace(/\r\n[ \t]+/g, ' '),
          user: session.user as string | undefined,
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.server.address() as AddressInfo).port,
    mails,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
