// Calendars and address books back into an account: each collection made again under its own
// name in the account's home (MKCALENDAR for a calendar, RFC 4791; extended MKCOL for an address
// book, RFC 5689) with its name, description, colour and component set, unless it is there (found
// by its decoded name, so that a server's spelling of the href does not matter), and each item PUT
// with If-None-Match: * so that nothing already there is overwritten. An item that is there with
// the same bytes counts as present; one with other bytes, or one the server refuses because the
// same UID is there under another name, is left as it is and reported as a conflict.
import { AmberError } from '../../core/errors.ts';
import { type DavAccess, type DavClient, type DavTarget, davClient, parseMultistatus, xmlText } from './dav-client.ts';
import { discoverCollections, isCollectionOf, type StoredCollection, type StoredItem, segmentOf } from './dav.ts';

export interface CollectionToRestore {
  stored: StoredCollection;
  /** An item's bytes, read from the repository (every blob checked). */
  item(name: string): Promise<Buffer>;
}

export interface DavRestoreResult {
  collections: number;
  /** Collections that did not exist and were made. */
  created: number;
  put: number;
  /** Items that were there already with the same bytes. */
  present: number;
  /** Items that were there with other bytes, or refused because their UID is there under another name: left as they are. */
  conflicts: string[];
  bytes: number;
}

function collectionBody(stored: StoredCollection): string {
  const prop = (tag: string, value: string | null) => (value === null ? '' : `<${tag}>${xmlText(value)}</${tag}>`);
  const props = [
    prop('D:displayname', stored.displayName),
    stored.kind === 'calendar'
      ? prop('C:calendar-description', stored.description)
      : prop('A:addressbook-description', stored.description),
    prop('I:calendar-color', stored.color),
    prop('I:calendar-order', stored.order),
    stored.kind === 'calendar' && stored.components.length
      ? `<C:supported-calendar-component-set>${stored.components.map((c) => `<C:comp name="${xmlText(c)}"/>`).join('')}</C:supported-calendar-component-set>`
      : '',
    prop('C:calendar-timezone', stored.timezone),
  ].join('');
  const ns =
    'xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav" xmlns:A="urn:ietf:params:xml:ns:carddav" xmlns:I="http://apple.com/ns/ical/"';
  return stored.kind === 'calendar'
    ? `<?xml version="1.0" encoding="utf-8"?><C:mkcalendar ${ns}><D:set><D:prop>${props}</D:prop></D:set></C:mkcalendar>`
    : `<?xml version="1.0" encoding="utf-8"?><D:mkcol ${ns}><D:set><D:prop><D:resourcetype><D:collection/><A:addressbook/></D:resourcetype>${props}</D:prop></D:set></D:mkcol>`;
}

export async function restoreDav(options: {
  target: DavTarget;
  access: DavAccess;
  collections: CollectionToRestore[];
  signal?: AbortSignal;
}): Promise<DavRestoreResult> {
  const client = davClient(options.target, options.access, 'restore');
  // Every collection of the home, even when the URL names one of them: those there are reused, not made again.
  const { home, collections: existing } = await discoverCollections(client, { wholeHome: true });
  const there = new Set(existing.map((found) => found.name));
  const result: DavRestoreResult = { collections: 0, created: 0, put: 0, present: 0, conflicts: [], bytes: 0 };
  for (const { stored, item } of options.collections) {
    if (options.signal?.aborted) throw new AmberError('INTERRUPTED', 'the restore was interrupted');
    const want = stored.kind === 'calendar' ? 'caldav' : 'carddav';
    if (want !== options.target.kind)
      throw new AmberError(
        'USAGE',
        `the snapshot holds ${stored.kind === 'calendar' ? 'calendars' : 'address books'}: --to takes a ${want}:// URL`,
      );
    const url = new URL(`${segmentOf(stored.name)}/`, home);
    if (!there.has(stored.name) && (await makeCollection(client, url, stored))) result.created += 1;
    there.add(stored.name);
    result.collections += 1;
    for (const entry of stored.items) {
      if (options.signal?.aborted) throw new AmberError('INTERRUPTED', 'the restore was interrupted');
      await putItem(client, url, stored, entry, await item(entry.name), result);
    }
  }
  return result;
}

/**
 * MKCALENDAR (or extended MKCOL) for a collection the listing did not show; true when it was made.
 * A 405 or 409 is what a server answers when the collection is there after all (a listing that
 * missed it, a client that made it meanwhile): then it is reused.
 */
async function makeCollection(client: DavClient, url: URL, stored: StoredCollection): Promise<boolean> {
  const method = stored.kind === 'calendar' ? 'MKCALENDAR' : 'MKCOL';
  const made = await client.request(method, url, {
    headers: { 'content-type': 'application/xml; charset=utf-8' },
    body: collectionBody(stored),
    ok: [201, 405, 409],
  });
  if (made.status === 201) return true;
  const self = await client.request('PROPFIND', url, {
    headers: { depth: '0', 'content-type': 'application/xml; charset=utf-8' },
    body: '<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:prop><D:resourcetype/></D:prop></D:propfind>',
    ok: [207, 404],
  });
  const [member] =
    self.status === 207 ? parseMultistatus(self.body, `the server ${client.target.display}`).members : [];
  if (member && isCollectionOf(member.props, client.target.kind)) return false;
  throw client.refused(method, url, made);
}

/**
 * One item PUT with If-None-Match: *, so that nothing there is overwritten. There already (412):
 * present when its bytes are the same, else a conflict left as it is. Refused as a UID conflict
 * (409, or 403 with no-uid-conflict, RFC 4791 §5.3.2.1 and RFC 6352 §6.3.2.1: the same event or
 * contact is there under another name): a conflict too, and the restore goes on.
 */
async function putItem(
  client: DavClient,
  collection: URL,
  stored: StoredCollection,
  entry: StoredItem,
  bytes: Buffer,
  result: DavRestoreResult,
): Promise<void> {
  const url = new URL(segmentOf(entry.name), collection);
  const put = await client.request('PUT', url, {
    headers: {
      'content-type':
        entry.contentType ??
        (stored.kind === 'calendar' ? 'text/calendar; charset=utf-8' : 'text/vcard; charset=utf-8'),
      'if-none-match': '*',
    },
    body: bytes,
    ok: [200, 201, 204, 403, 409, 412],
  });
  const where = `${stored.name}/${entry.name}`;
  if (put.status === 403 && !/no-uid-conflict/.test(put.body.toString('utf8'))) throw client.refused('PUT', url, put);
  if (put.status === 403 || put.status === 409) {
    result.conflicts.push(where);
    return;
  }
  if (put.status !== 412) {
    result.put += 1;
    result.bytes += bytes.length;
    return;
  }
  const now = await client.request('GET', url, { ok: [200] });
  if (now.body.equals(bytes)) result.present += 1;
  else result.conflicts.push(where);
}
