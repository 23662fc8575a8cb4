// An HTTP proxy in front of a real server on 127.0.0.1, for tests that must see the requests: it
// counts them by method (GET, REPORT, PROPFIND…), can refuse one method (a server without
// sync-collection) and can stop answering after N requests (a server that dies mid-backup). Bodies pass through unchanged.
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { Socket } from 'node:net';

export interface HttpProxy {
  port: number;
  /** Requests since the last reset, by method. */
  counts(): Record<string, number>;
  /** Requests since the last reset, as "METHOD /path?query". */
  requests(): string[];
  reset(): void;
  /** Drop every connection from the Nth request on (undefined: never). */
  failFrom(count: number | undefined): void;
  /** Answer every request of this method with this status instead of passing it on (undefined: pass all). */
  refuse(method: string | undefined, status?: number): void;
  close(): Promise<void>;
}

export async function startHttpProxy(target: { host: string; port: number }): Promise<HttpProxy> {
  let counts: Record<string, number> = {};
  let requests: string[] = [];
  let seen = 0;
  let failAt: number | undefined;
  let refused: { method: string; status: number } | undefined;
  const sockets = new Set<Socket>();
  const server: Server = createServer((incoming, outgoing) => {
    seen += 1;
    counts[incoming.method ?? '?'] = (counts[incoming.method ?? '?'] ?? 0) + 1;
    requests.push(`${incoming.method} ${incoming.url}`);
    if (failAt !== undefined && seen >= failAt) {
      incoming.socket.destroy();
      return;
    }
    if (refused && incoming.method === refused.method) {
      incoming.resume();
      outgoing.writeHead(refused.status).end();
      return;
    }
    const upstream = httpRequest(
      { host: target.host, port: target.port, method: incoming.method, path: incoming.url, headers: incoming.headers },
      (answer) => {
        outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(outgoing);
      },
    );
    upstream.on('error', () => incoming.socket.destroy());
    incoming.pipe(upstream);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : 0,
    counts: () => ({ ...counts }),
    requests: () => [...requests],
    reset() {
      counts = {};
      requests = [];
      seen = 0;
    },
    failFrom(count) {
      failAt = count;
    },
    refuse(method, status = 501) {
      refused = method === undefined ? undefined : { method, status };
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
