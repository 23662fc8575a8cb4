// Calendars and address books back into an account: each collection made again under its own
// name in the account's home (MKCALENDAR for a calendar, RFC 4791; extended MKCOL for an address
// book, RFC 5689) with its name, description, colour and component set, and each item PUT with
// If-None-Match: * so that nothing already there is overwritten. An item that is there with the
// same bytes counts as present; one with other bytes is left as it is and reported as a conflict.
import { AmberError } from '../../core/errors.ts';
import { type DavAccess, type DavTarget, davClient, xmlText } from './dav-client.ts';
import { discoverCollections, type StoredCollection } from './dav.ts';

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
  /** Items that were there with other bytes: left as they are. */
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
  const client = davClient(options.target, options.access);
  const { home, collections: existing } = await discoverCollections(client);
  const there = new Set(existing.map((member) => new URL(member.href, home).pathname.replace(/\/?$/, '/')));
  const result: DavRestoreResult = { collections: 0, created: 0, put: 0, present: 0, conflicts: [], bytes: 0 };
  for (const { stored, item } of options.collections) {
    if (options.signal?.aborted) throw new AmberError('INTERRUPTED', 'the restore was interrupted');
    const want = stored.kind === 'calendar' ? 'caldav' : 'carddav';
    if (want !== options.target.kind)
      throw new AmberError(
        'USAGE',
        `the snapshot holds ${stored.kind === 'calendar' ? 'calendars' : 'address books'}: --to takes a ${want}:// URL`,
      );
    const url = new URL(`${encodeURIComponent(stored.name)}/`, home);
    if (!there.has(url.pathname)) {
      await client.request(stored.kind === 'calendar' ? 'MKCALENDAR' : 'MKCOL', url, {
        headers: { 'content-type': 'application/xml; charset=utf-8' },
        body: collectionBody(stored),
        ok: [201],
      });
      there.add(url.pathname);
      result.created += 1;
    }
    result.collections += 1;
    for (const entry of stored.items) {
      if (options.signal?.aborted) throw new AmberError('INTERRUPTED', 'the restore was interrupted');
      const bytes = await item(entry.name);
      const itemUrl = new URL(encodeURIComponent(entry.name), url);
      const put = await client.request('PUT', itemUrl, {
        headers: {
          'content-type':
            entry.contentType ??
            (stored.kind === 'calendar' ? 'text/calendar; charset=utf-8' : 'text/vcard; charset=utf-8'),
          'if-none-match': '*',
        },
        body: bytes,
        ok: [200, 201, 204, 412],
      });
      if (put.status !== 412) {
        result.put += 1;
        result.bytes += bytes.length;
        continue;
      }
      const now = await client.request('GET', itemUrl, { ok: [200] });
      if (now.body.equals(bytes)) result.present += 1;
      else result.conflicts.push(`${stored.name}/${entry.name}`);
    }
  }
  return result;
}
