// A mailbox snapshot as the IMAP source wrote it: /imap/<folder>/folder.json beside <UID>.eml,
// read for `amber ls` and for a restore into an account. Each folder.json is checked before use:
// a snapshot may have been written by a write-only key on a host that is not trusted.
import { AmberError } from '../core/errors.ts';
import type { TreeId } from '../core/ids.ts';
import type { BlobReader } from '../repo/blob-reader.ts';
import { checkStoredFolder, type StoredFolder } from '../source/mail/imap.ts';
import { readFileNode, readTree, resolvePath } from './tree-walk.ts';

export interface SnapshotFolder {
  /** Its directory's name under /imap. */
  dir: string;
  stored: StoredFolder;
  /** One message's exact bytes. */
  message(uid: number): Promise<Buffer>;
}

export async function readMailbox(reader: BlobReader, tree: TreeId, snapshot: string): Promise<SnapshotFolder[]> {
  const top = await resolvePath(reader, tree, '/imap');
  const folders: SnapshotFolder[] = [];
  for (const dir of top.subtree ? (await readTree(reader, top.subtree)).nodes : []) {
    if (dir.type !== 'dir' || !dir.subtree) continue;
    const nodes = new Map((await readTree(reader, dir.subtree)).nodes.map((n) => [n.name, n]));
    const meta = nodes.get('folder.json');
    const where = `/imap/${dir.name}/folder.json of snapshot ${snapshot}`;
    if (!meta) throw new AmberError('OBJECT_CORRUPT', `${where} is missing`);
    let parsed: unknown;
    try {
      parsed = JSON.parse((await readFileNode(reader, meta)).toString('utf8'));
    } catch (error) {
      throw new AmberError('OBJECT_CORRUPT', `${where} is not JSON: ${(error as Error).message}`);
    }
    const stored = checkStoredFolder(parsed, where);
    folders.push({
      dir: dir.name,
      stored,
      message: async (uid) => {
        const node = nodes.get(`${uid}.eml`);
        if (!node)
          throw new AmberError(
            'OBJECT_CORRUPT',
            `snapshot ${snapshot} lists message ${uid} of ${stored.name} but does not hold it`,
          );
        return readFileNode(reader, node);
      },
    });
  }
  return folders;
}
