// A real IMAP server for tests: Debian's Dovecot (dovecot-imapd) with a configuration of its own in
// a scratch directory, listening on a free port of 127.0.0.1 only (plain IMAP: a test server on
// loopback), with password users in a file and Maildir mailboxes; stopped (and the directory
// removed) by stop(). The standard special-use folders (Sent, Drafts, Trash, Junk) exist for every user.
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../source/database/scratch-server.ts';
import { startTestDaemon } from './test-daemon.ts';

const DOVECOT = ['/usr/sbin/dovecot', '/usr/local/sbin/dovecot'].find((path) => existsSync(path));

export function whyNoDovecot(): string | undefined {
  if (!DOVECOT) return 'Dovecot is not installed (apt-get install dovecot-imapd)';
  if (process.getuid?.() === 0 && spawnSync('id', ['-u', 'dovenull']).status !== 0)
    return 'running as root, and there is no dovenull user for Dovecot’s login processes';
  return undefined;
}

export interface DovecotServer {
  host: string;
  port: number;
  /** imap://USER@127.0.0.1:PORT/ */
  url(user: string): string;
  /** Adds a user with this password (and an empty mailbox). */
  addUser(user: string, password: string): void;
  /** Stops the server and removes its directory. */
  stop(): Promise<void>;
  /** Ends the server at once (SIGKILL). */
  kill(): void;
}

const idOf = (flag: string, name: string) => Number(spawnSync('id', [flag, name], { encoding: 'utf8' }).stdout);

export interface DovecotOptions {
  /** Also take OAuth2 bearer tokens (XOAUTH2, OAUTHBEARER), checked by POSTing them to this RFC 7662 introspection URL. */
  oauth2IntrospectionUrl?: string;
}

export async function startDovecot(options: DovecotOptions = {}): Promise<DovecotServer> {
  if (!DOVECOT) throw new Error(whyNoDovecot());
  const dir = mkdtempSync(join(tmpdir(), 'amber-dovecot-'));
  chmodSync(dir, 0o755);
  const asRoot = process.getuid?.() === 0;
  // As root, mail is owned by the dovecot user; as another user, by that user.
  const mailUser = asRoot ? 'dovecot' : userInfo().username;
  const uid = asRoot ? idOf('-u', 'dovecot') : process.getuid!();
  const gid = asRoot ? idOf('-g', 'dovecot') : process.getgid!();
  const home = join(dir, 'home');
  mkdirSync(home);
  chownSync(home, uid, gid);
  const users = join(dir, 'users');
  writeFileSync(users, '');
  const port = await freePort();
  const config = join(dir, 'dovecot.conf');
  writeFileSync(
    config,
    `base_dir = ${dir}/run
state_dir = ${dir}/state
log_path = ${dir}/log
info_log_path = ${dir}/log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login${options.oauth2IntrospectionUrl ? ' xoauth2 oauthbearer' : ''}
default_internal_user = ${asRoot ? 'dovecot' : mailUser}
default_internal_group = ${asRoot ? 'dovecot' : userInfo().username}
default_login_user = ${asRoot ? 'dovenull' : mailUser}
first_valid_uid = ${uid}
first_valid_gid = ${gid}
mail_location = maildir:~/Maildir:LAYOUT=fs
mail_max_userip_connections = 50
passdb {
  driver = passwd-file
  mechanisms = plain login
  args = scheme=PLAIN username_format=%u ${users}
}
${
  options.oauth2IntrospectionUrl
    ? `passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = ${join(dir, 'oauth2.conf')}
}
`
    : ''
}userdb {
  driver = static
  args = uid=${uid} gid=${gid} home=${home}/%u
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = ${port}
  }
  inet_listener imaps {
    port = 0
  }
}
service anvil {
  chroot =
}
service imap-login {
  chroot =
}
namespace inbox {
  inbox = yes
  separator = /
  mailbox Sent {
    special_use = \\Sent
    auto = create
  }
  mailbox Drafts {
    special_use = \\Drafts
    auto = create
  }
  mailbox Trash {
    special_use = \\Trash
    auto = create
  }
  mailbox Junk {
    special_use = \\Junk
    auto = create
  }
}
`,
  );
  if (options.oauth2IntrospectionUrl)
    writeFileSync(
      join(dir, 'oauth2.conf'),
      `introspection_mode = post
introspection_url = ${options.oauth2IntrospectionUrl}
force_introspection = yes
username_attribute = username
active_attribute = active
active_value = true
`,
    );
  const daemon = await startTestDaemon({
    name: 'dovecot',
    command: DOVECOT,
    args: ['-F', '-c', config],
    port,
    greets: true,
    dir,
    logHint: join(dir, 'log'),
  });
  return {
    host: '127.0.0.1',
    port,
    url: (user) => `imap://${encodeURIComponent(user)}@127.0.0.1:${port}/`,
    addUser(user, password) {
      writeFileSync(users, `${user}:{PLAIN}${password}::::::\n`, { flag: 'a' });
    },
    kill: () => daemon.kill(),
    stop: () => daemon.stop(),
  };
}
