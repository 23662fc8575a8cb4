// A proxy on 127.0.0.1 in front of the test suite's S3 server (RGW) for red-team tests: every
// request passes through unchanged, but a hook sees it first (method, path with query) and may
// act on the bucket meanwhile (overwrite or delete an object) before the request goes on — the
// deterministic way to show what a concurrent writer does between two requests of Amber's.
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { Socket } from 'node:net';

export interface HookedProxy {
  port: number;
  requests: string[];
  close(): Promise<void>;
}

export async function startHookedProxy(
  target: { host: string; port: number },
  hook: (method: string, path: string) => Promise<void>,
): Promise<HookedProxy> {
  const requests: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((incoming, outgoing) => {
    const method = incoming.method ?? '?';
    const path = incoming.url ?? '/';
    requests.push(`${method} ${path}`);
    incoming.pause();
    hook(method, path)
      .catch(() => {})
      .then(() => {
        const upstream = httpRequest(
          { host: target.host, port: target.port, method, path, headers: incoming.headers },
          (answer) => {
            outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
            answer.pipe(outgoing);
          },
        );
        upstream.on('error', () => incoming.socket.destroy());
        incoming.pipe(upstream);
        incoming.resume();
      });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : 0,
    requests,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
