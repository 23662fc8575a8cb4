// Red team: a TCP forwarder on 127.0.0.1 whose upstream port can be switched between connections,
// so that two different IMAP servers answer under one URL (imap://USER@127.0.0.1:PORT/): the real
// account for one backup, a lying server for another. Upstreams are always on 127.0.0.1.
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export interface SwitchProxy {
  port: number;
  /** Where new connections go from now on. */
  to(port: number): void;
  close(): Promise<void>;
}

export async function startSwitchProxy(initial: number): Promise<SwitchProxy> {
  let target = initial;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = createConnection(target, '127.0.0.1');
    sockets.add(client).add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : 0,
    to(port) {
      target = port;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
