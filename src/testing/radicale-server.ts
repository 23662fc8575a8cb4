// A real CalDAV/CardDAV server for tests: Debian's Radicale with a configuration of its own in a
// scratch directory, on a free port of 127.0.0.1 only (plain HTTP: a test server on loopback),
// users with plain passwords in an htpasswd file and each user's collections their own; stopped
// (and the directory removed) by stop().
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../source/database/scratch-server.ts';
import { startTestDaemon } from './test-daemon.ts';

const RADICALE = ['/usr/bin/radicale', '/usr/local/bin/radicale'].find((path) => existsSync(path));

export function whyNoRadicale(): string | undefined {
  return RADICALE ? undefined : 'Radicale is not installed (apt-get install radicale)';
}

export interface RadicaleServer {
  port: number;
  /** SCHEME+http://USER@127.0.0.1:PORT/USER/ : the user's home, where the collections are. */
  url(scheme: 'caldav' | 'carddav', user: string, port?: number): string;
  addUser(user: string, password: string): void;
  stop(): Promise<void>;
  kill(): void;
}

export async function startRadicale(): Promise<RadicaleServer> {
  if (!RADICALE) throw new Error(whyNoRadicale());
  const dir = mkdtempSync(join(tmpdir(), 'amber-radicale-'));
  const users = join(dir, 'users');
  writeFileSync(users, '');
  const port = await freePort();
  const config = join(dir, 'config');
  writeFileSync(
    config,
    `[server]
hosts = 127.0.0.1:${port}
[auth]
type = htpasswd
htpasswd_filename = ${users}
htpasswd_encryption = plain
delay = 0
[rights]
type = owner_only
[storage]
filesystem_folder = ${join(dir, 'collections')}
[web]
type = none
[logging]
level = warning
`,
  );
  const daemon = await startTestDaemon({
    name: 'radicale',
    command: RADICALE,
    args: ['--config', config],
    port,
    greets: false,
    dir,
  });
  return {
    port,
    url: (scheme, user, via = port) =>
      `${scheme}+http://${encodeURIComponent(user)}@127.0.0.1:${via}/${encodeURIComponent(user)}/`,
    addUser(user, password) {
      writeFileSync(users, `${user}:${password}\n`, { flag: 'a' });
    },
    kill: () => daemon.kill(),
    stop: () => daemon.stop(),
  };
}
