// A mailbox snapshot back into an IMAP account: each folder created where missing (under --into, if
// given, keeping the hierarchy) and subscribed when it was (its special use is not set: the server's
// own Sent, Trash… are used as they are, and a folder that had one is created without it), and
// each message APPENDed with its original flags, keywords and internal date. A message already in
// the folder (the same Message-ID and the same bytes, or the same bytes when it has none) is not
// appended again, so a restore can be repeated or resumed without duplicates.
import { createHash } from 'node:crypto';
import type { ImapFlow } from 'imapflow';
import { AmberError } from '../../core/errors.ts';
import { connectError, connectImap, type ImapAccess, type ImapTarget, type StoredFolder } from './imap.ts';

export interface FolderToRestore {
  stored: StoredFolder;
  /** A message's bytes, read from the repository (every blob checked). */
  message(uid: number): Promise<Buffer>;
}

export interface ImapRestoreResult {
  folders: number;
  appended: number;
  /** Messages that were there already (matched by Message-ID and content). */
  present: number;
  bytes: number;
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** The folder's name in the account: under `into` (with the server's delimiter), with the snapshot's delimiter mapped to the server's. */
function targetName(stored: StoredFolder, into: string | undefined, delimiter: string): string {
  const parts = stored.delimiter ? stored.name.split(stored.delimiter) : [stored.name];
  const name = parts.join(delimiter);
  if (!into) return name;
  // INBOX under a prefix is a folder like any other.
  return `${into}${delimiter}${name}`;
}

export async function restoreImap(options: {
  target: ImapTarget;
  access: ImapAccess;
  folders: FolderToRestore[];
  into?: string;
  signal?: AbortSignal;
}): Promise<ImapRestoreResult> {
  const client = await connectImap(options.target, options.access);
  const result: ImapRestoreResult = { folders: 0, appended: 0, present: 0, bytes: 0 };
  const progress = () =>
    `${result.appended} message(s) were appended before it; running the restore again adds only the rest`;
  try {
    const existing = new Map((await client.list()).map((f) => [f.path, f]));
    const delimiter = [...existing.values()].find((f) => f.delimiter)?.delimiter ?? '/';
    // Parents before children: a folder's name sorts after its parent's.
    const ordered = [...options.folders].sort((a, b) => (a.stored.name < b.stored.name ? -1 : 1));
    for (const folder of ordered) {
      if (options.signal?.aborted) throw new AmberError('INTERRUPTED', 'the restore was interrupted');
      const name = targetName(folder.stored, options.into, delimiter);
      const noSelect = folder.stored.attributes.includes('\\Noselect');
      if (!existing.has(name) && !(name.toUpperCase() === 'INBOX')) {
        await client.mailboxCreate(name).catch((error: unknown) => {
          throw new AmberError(
            'SOURCE_FAILED',
            `the folder ${name} could not be created on ${options.target.display}: ${(error as { responseText?: string }).responseText ?? (error as Error).message}`,
          );
        });
        existing.set(name, { path: name } as never);
      }
      if (folder.stored.subscribed) await client.mailboxSubscribe(name).catch(() => {});
      result.folders += 1;
      if (noSelect || folder.stored.messages.length === 0) continue;
      await restoreMessages(client, name, folder, result, options.signal);
    }
  } catch (error) {
    if (error instanceof AmberError) throw error;
    const failed = connectError(options.target, error, options.access, 'session');
    throw new AmberError(failed.code, `${failed.message} during the restore`, { hint: progress(), cause: error });
  } finally {
    await client.logout().catch(() => client.close());
  }
  return result;
}

async function restoreMessages(
  client: ImapFlow,
  name: string,
  folder: FolderToRestore,
  result: ImapRestoreResult,
  signal?: AbortSignal,
): Promise<void> {
  // What the folder holds already: by Message-ID (and size), to be compared by content.
  const there = new Map<string, number[]>();
  const bySize = new Map<number, number[]>();
  const lock = await client.getMailboxLock(name);
  try {
    if ((client.mailbox as { exists: number }).exists > 0)
      for await (const m of client.fetch('1:*', { uid: true, size: true, envelope: true })) {
        const id = m.envelope?.messageId;
        if (id) there.set(id, [...(there.get(id) ?? []), m.uid]);
        bySize.set(m.size ?? 0, [...(bySize.get(m.size ?? 0) ?? []), m.uid]);
      }
    // Each message of the account matches at most one of the snapshot: two copies stay two.
    const matched = new Set<number>();
    const hashes = new Map<number, string>();
    const hashOf = async (uid: number) => {
      let hash = hashes.get(uid);
      if (hash === undefined) {
        const fetched = await client.fetchOne(String(uid), { source: true }, { uid: true });
        hash = fetched !== false && fetched?.source ? sha256(fetched.source) : '';
        hashes.set(uid, hash);
      }
      return hash;
    };
    let refused: string | undefined;
    for (const message of folder.stored.messages) {
      if (signal?.aborted)
        throw new AmberError('INTERRUPTED', `the restore was interrupted in ${name}`, {
          hint: 'run it again: messages already appended are recognised and not added twice',
        });
      const bytes = await folder.message(message.uid);
      const candidates =
        (message.messageId ? there.get(message.messageId) : undefined) ?? bySize.get(bytes.length) ?? [];
      const digest = sha256(bytes);
      let present = false;
      for (const uid of candidates)
        if (!matched.has(uid) && (await hashOf(uid)) === digest) {
          matched.add(uid);
          present = true;
          break;
        }
      if (present) {
        result.present += 1;
        continue;
      }
      let appended: unknown;
      try {
        appended = await client.append(
          name,
          bytes,
          message.flags,
          message.internalDate === null ? undefined : new Date(message.internalDate),
        );
      } catch (error) {
        if (!client.usable) throw error; // the connection is gone: said once, by restoreImap
        appended = undefined;
        refused = (error as { responseText?: string }).responseText ?? (error as Error).message;
      }
      if (!appended)
        throw new AmberError(
          'SOURCE_FAILED',
          `the server refused to take message ${message.uid} of ${folder.stored.name} into ${name}${refused ? `: ${refused}` : ''}`,
          {
            hint: 'read the server’s answer (a quota, a size limit); messages appended before it stay, and running the restore again adds only the rest',
          },
        );
      result.appended += 1;
      result.bytes += bytes.length;
    }
  } finally {
    lock.release();
  }
}
