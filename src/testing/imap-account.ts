// An IMAP account as tests see it: a logged-in session, a digest of everything in it (each folder
// with its special use, each message's content hash, flags and internal date), and a wipe that
// empties it as a user or an attacker would (every message, every folder the server lets go).
import { createHash } from 'node:crypto';
import { ImapFlow } from 'imapflow';

export interface ImapLogin {
  host: string;
  port: number;
  user: string;
  password: string;
}

export async function imapSession<T>(login: ImapLogin, work: (client: ImapFlow) => Promise<T>): Promise<T> {
  const client = new ImapFlow({
    host: login.host,
    port: login.port,
    secure: false,
    auth: { user: login.user, pass: login.password },
    logger: false,
  });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.logout();
  }
}

const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** Every folder (name, special use) with each message's content hash, flags and internal date, in a stable order; under `prefix` only, with it cut off. */
export async function mailboxDigest(login: ImapLogin, prefix = ''): Promise<string[]> {
  return imapSession(login, async (client) => {
    const out: string[] = [];
    for (const folder of await client.list()) {
      if (folder.flags.has('\\Noselect')) continue;
      if (prefix && !folder.path.startsWith(prefix)) continue;
      const lock = await client.getMailboxLock(folder.path);
      const messages: string[] = [];
      try {
        if ((client.mailbox as { exists: number }).exists > 0)
          for await (const m of client.fetch('1:*', { source: true, flags: true, internalDate: true }))
            messages.push(
              `${sha(m.source!)} ${[...m.flags!]
                .filter((f) => f !== '\\Recent')
                .sort()
                .join(' ')} ${new Date(m.internalDate!).toISOString()}`,
            );
      } finally {
        lock.release();
      }
      const special = [...folder.flags].find((f) => ['\\Sent', '\\Drafts', '\\Trash', '\\Junk'].includes(f)) ?? '';
      out.push(`${folder.path.slice(prefix.length)} ${special}: ${messages.sort().join(' | ')}`);
    }
    return out.sort();
  });
}

/** Deletes every message of every folder, then every folder but INBOX and those in `keep`. */
export async function wipeMailbox(login: ImapLogin, keep: readonly string[] = []): Promise<void> {
  await imapSession(login, async (client) => {
    const folders = await client.list();
    for (const folder of folders) {
      if (folder.flags.has('\\Noselect')) continue;
      const lock = await client.getMailboxLock(folder.path);
      try {
        if ((client.mailbox as { exists: number }).exists > 0) await client.messageDelete('1:*');
      } finally {
        lock.release();
      }
    }
    // Children first: a folder sorts after its parent.
    for (const folder of [...folders].sort((a, b) => (a.path < b.path ? 1 : -1)))
      if (folder.path.toUpperCase() !== 'INBOX' && !keep.includes(folder.path)) await client.mailboxDelete(folder.path);
  });
}

/** A small RFC 822 message numbered n, with a Message-ID and a Date of its own. */
export const testMessage = (n: number, extra = '') =>
  Buffer.from(
    `From: "Alice Example" <alice@example.org>\r\nTo: bob@example.org\r\nSubject: message ${n}\r\nMessage-ID: <m${n}@example.org>\r\nDate: Mon, 2 Mar 2020 10:00:${String(n % 60).padStart(2, '0')} +0000\r\n${extra}\r\nbody of message ${n}\r\n`,
  );
