// A TCP proxy between an IMAP client and a real server on 127.0.0.1, for tests that must see the
// conversation: it counts the server's untagged FETCH responses (what "read only what changed"
// means on the wire), can run a step of the test when the client sends a given command (a folder
// deleted just as it is opened), and can cut every connection after N FETCH responses (a server
// that dies mid-backup). Lines are matched outside literals only as far as a test's messages never
// hold "\r\n* N FETCH" or a command line themselves.
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export interface ImapProxy {
  port: number;
  /** Untagged FETCH responses the server sent since the last reset. */
  fetches(): number;
  /** Commands the client sent since the last reset (their names, e.g. "UID FETCH", "EXAMINE"). */
  commands(): string[];
  reset(): void;
  /** Before the client's first command matching `pattern` reaches the server, run `step`. */
  beforeCommand(pattern: RegExp, step: () => Promise<void>): void;
  /** Cut every connection once the server has sent this many FETCH responses (undefined: never). */
  cutAfterFetches(count: number | undefined): void;
  close(): Promise<void>;
}

const FETCH = /(?:^|\r\n)\* \d+ FETCH /g;

export async function startImapProxy(target: { host: string; port: number }): Promise<ImapProxy> {
  let fetches = 0;
  let commands: string[] = [];
  let cutAt: number | undefined;
  const hooks: { pattern: RegExp; step: () => Promise<void> }[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = createConnection(target.port, target.host);
    sockets.add(client).add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    let tail = '';
    upstream.on('data', (data: Buffer) => {
      // The last bytes of the previous chunk, so a response split across chunks is still counted once.
      const text = tail + data.toString('latin1');
      const before = (tail.match(FETCH) ?? []).length;
      fetches += (text.match(FETCH) ?? []).length - before;
      tail = text.slice(-32);
      if (cutAt !== undefined && fetches >= cutAt) {
        client.write(data, () => end());
        return;
      }
      client.write(data);
    });
    // Client to server: one command line at a time, so a hook can run before a command goes on.
    let pending = Buffer.alloc(0);
    let busy = false;
    const pump = async () => {
      if (busy) return;
      busy = true;
      try {
        for (;;) {
          const eol = pending.indexOf('\r\n');
          if (eol < 0) break;
          const line = pending.subarray(0, eol + 2);
          pending = pending.subarray(eol + 2);
          const words = line.toString('latin1').trim().split(' ');
          const name = (words[1] === 'UID' ? `UID ${words[2]}` : (words[1] ?? '')).toUpperCase();
          if (name) commands.push(name);
          const text = line.toString('utf8');
          const hook = hooks.findIndex((h) => h.pattern.test(text));
          if (hook >= 0) await hooks.splice(hook, 1)[0].step();
          upstream.write(line);
        }
        // The rest of a line (or of a literal) goes on as it is: the stream stays in order.
        if (pending.length > 0) upstream.write(pending);
        pending = Buffer.alloc(0);
      } finally {
        busy = false;
      }
    };
    client.on('data', (data: Buffer) => {
      pending = Buffer.concat([pending, data]);
      void pump();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : 0,
    fetches: () => fetches,
    commands: () => [...commands],
    reset() {
      fetches = 0;
      commands = [];
    },
    beforeCommand(pattern, step) {
      hooks.push({ pattern, step });
    },
    cutAfterFetches(count) {
      cutAt = count;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
