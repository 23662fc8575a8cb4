// A calendar or address-book snapshot as the CalDAV/CardDAV source wrote it:
// /caldav/<collection>/collection.json beside items/<name> (or /carddav/…), read for a restore into
// an account. Each collection.json is checked before use: a snapshot may have been written by a
// write-only key on a host that is not trusted.
import { AmberError } from '../core/errors.ts';
import type { TreeId } from '../core/ids.ts';
import type { BlobReader } from '../repo/blob-reader.ts';
import { checkStoredCollection } from '../source/dav/dav.ts';
import type { CollectionToRestore } from '../source/dav/dav-restore.ts';
import { fileOfFolder } from '../source/mail/imap.ts';
import { readFileNode, readTree, resolvePath } from './tree-walk.ts';

export async function readCollections(
  reader: BlobReader,
  tree: TreeId,
  top: 'caldav' | 'carddav',
  snapshot: string,
): Promise<CollectionToRestore[]> {
  const root = await resolvePath(reader, tree, `/${top}`);
  const collections: CollectionToRestore[] = [];
  for (const dir of root.subtree ? (await readTree(reader, root.subtree)).nodes : []) {
    if (dir.type !== 'dir' || !dir.subtree) continue;
    const nodes = new Map((await readTree(reader, dir.subtree)).nodes.map((n) => [n.name, n]));
    const meta = nodes.get('collection.json');
    const where = `/${top}/${dir.name}/collection.json of snapshot ${snapshot}`;
    if (!meta) throw new AmberError('OBJECT_CORRUPT', `${where} is missing`);
    let parsed: unknown;
    try {
      parsed = JSON.parse((await readFileNode(reader, meta)).toString('utf8'));
    } catch (error) {
      throw new AmberError('OBJECT_CORRUPT', `${where} is not JSON: ${(error as Error).message}`);
    }
    const stored = checkStoredCollection(parsed, where);
    const itemsDir = nodes.get('items');
    const items =
      itemsDir?.type === 'dir' && itemsDir.subtree
        ? new Map((await readTree(reader, itemsDir.subtree)).nodes.map((n) => [n.name, n]))
        : new Map();
    collections.push({
      stored,
      item: async (name) => {
        const node = items.get(fileOfFolder(name));
        if (!node)
          throw new AmberError(
            'OBJECT_CORRUPT',
            `snapshot ${snapshot} lists ${stored.name}/${name} but does not hold it`,
          );
        return readFileNode(reader, node);
      },
    });
  }
  return collections;
}
