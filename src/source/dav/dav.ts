// Calendars (CalDAV) and address books (CardDAV) as a source: every collection of the account with
// its properties, and every item (.ics, .vcf) as the exact bytes the server serves for it. The
// snapshot holds /caldav/<collection>/collection.json (the collection, its sync token and its items'
// ETags) and /caldav/<collection>/items/<name> (or /carddav/…). Incremental: RFC 6578
// sync-collection from the previous snapshot's token names what changed and what was removed; a
// server without it, or one that no longer knows the token, is listed by ETag instead. The way
// back into an account is restoreDav (dav-restore.ts).
import { Readable } from 'node:stream';
import { AmberError } from '../../core/errors.ts';
import type { SourceFile, SourceRun } from '../source-url.ts';
import { fileOfFolder } from '../mail/imap.ts';
import {
  type DavAccess,
  type DavClient,
  type DavKind,
  type DavMember,
  type DavTarget,
  davClient,
  hrefIn,
  parseMultistatus,
  type Props,
  textOf,
  xmlText,
} from './dav-client.ts';

/** One item of a collection as collection.json keeps it. */
export interface StoredItem {
  /** Its name in the collection (the href's last segment, decoded). */
  name: string;
  etag: string | null;
  contentType: string | null;
  size: number;
}

/** A collection as collection.json keeps it. */
export interface StoredCollection {
  version: 1;
  kind: 'calendar' | 'addressbook';
  /** Its name in the account (the href's last segment, decoded): restored under the same name. */
  name: string;
  href: string;
  displayName: string | null;
  description: string | null;
  /** Apple's calendar-color and calendar-order, as most clients set them. */
  color: string | null;
  order: string | null;
  /** Calendars: the component types it takes (VEVENT, VTODO, VJOURNAL). */
  components: string[];
  timezone: string | null;
  syncToken: string | null;
  ctag: string | null;
  items: StoredItem[];
}

const NS =
  'xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav" xmlns:A="urn:ietf:params:xml:ns:carddav" xmlns:CS="http://calendarserver.org/ns/" xmlns:I="http://apple.com/ns/ical/"';
const COLLECTION_PROPS = `<D:resourcetype/><D:displayname/><D:sync-token/><CS:getctag/><C:calendar-description/><C:supported-calendar-component-set/><C:calendar-timezone/><I:calendar-color/><I:calendar-order/><A:addressbook-description/>`;
const depth = (n: 0 | 1) => ({ depth: String(n), 'content-type': 'application/xml; charset=utf-8' });

const collectionKind = (kind: DavKind) => (kind === 'caldav' ? 'calendar' : 'addressbook');
const isCollectionOf = (props: Props, kind: DavKind) => {
  const type = props.resourcetype as Record<string, unknown> | undefined;
  return typeof type === 'object' && type !== null && collectionKind(kind) in type;
};

/** A name that may become a file and a URL segment again: not empty, no /, no NUL or line break, not . or .. */
const safeName = (name: unknown): name is string =>
  typeof name === 'string' && name !== '' && name !== '.' && name !== '..' && !/[/\0\r\n]/.test(name);

/** The collection's URL and its members' names: only direct children of the collection count. */
function memberName(collection: URL, href: string): string | undefined {
  let url: URL;
  try {
    url = new URL(href, collection);
  } catch {
    return undefined;
  }
  if (url.origin !== collection.origin || !url.pathname.startsWith(collection.pathname)) return undefined;
  const rest = url.pathname.slice(collection.pathname.length);
  if (rest === '' || rest.includes('/')) return undefined;
  try {
    const name = decodeURIComponent(rest);
    return safeName(name) ? name : undefined;
  } catch {
    return undefined;
  }
}

/** The account's collections of this kind: the URL itself if it is one, else those of its home set. */
export async function discoverCollections(client: DavClient): Promise<{ home: URL; collections: DavMember[] }> {
  const { target } = client;
  const homeProp = target.kind === 'caldav' ? 'calendar-home-set' : 'addressbook-home-set';
  const propfind = async (url: URL, n: 0 | 1, props: string) =>
    parseMultistatus(
      (
        await client.request('PROPFIND', url, {
          headers: depth(n),
          body: `<?xml version="1.0" encoding="utf-8"?><D:propfind ${NS}><D:prop>${props}</D:prop></D:propfind>`,
        })
      ).body,
      `the server ${target.display}`,
    ).members;
  const [self] = await propfind(
    target.base,
    0,
    `${COLLECTION_PROPS}<D:current-user-principal/><C:calendar-home-set/><A:addressbook-home-set/>`,
  );
  if (self && isCollectionOf(self.props, target.kind)) {
    const url = target.base;
    return { home: new URL('..', url), collections: [{ ...self, href: url.pathname }] };
  }
  let homeHref = self && hrefIn(self.props[homeProp]);
  if (!homeHref && self) {
    const principal = hrefIn(self.props['current-user-principal']);
    if (principal) {
      const [found] = await propfind(
        new URL(principal, target.base),
        0,
        `<C:calendar-home-set/><A:addressbook-home-set/>`,
      );
      homeHref = found && hrefIn(found.props[homeProp]);
    }
  }
  const home = new URL(homeHref ?? target.base.pathname, target.base);
  if (!home.pathname.endsWith('/')) home.pathname += '/';
  if (home.origin !== target.base.origin)
    throw new AmberError(
      'SOURCE_FAILED',
      `the server ${target.display} names a home on another server (${home.origin})`,
    );
  const members = (await propfind(home, 1, COLLECTION_PROPS)).filter(
    (member) =>
      isCollectionOf(member.props, target.kind) && memberName(home, member.href.replace(/\/$/, '')) !== undefined,
  );
  return { home, collections: members };
}

/**
 * A collection.json read back from a snapshot, checked field by field: its names become URLs and
 * its properties go into request bodies on a restore, and a snapshot may have been written by a
 * write-only key on a host that is not trusted.
 */
export function checkStoredCollection(value: unknown, where: string): StoredCollection {
  const bad = (what: string): never => {
    throw new AmberError('OBJECT_CORRUPT', `${where} ${what}`, {
      hint: 'the snapshot was not written by Amber’s CalDAV/CardDAV source as it is; restore from another snapshot and run amber verify',
    });
  };
  const c = value as Partial<StoredCollection> | null;
  if (!c || typeof c !== 'object' || c.version !== 1) bad('is not a collection record of version 1');
  const collection = c as StoredCollection;
  if (collection.kind !== 'calendar' && collection.kind !== 'addressbook')
    bad('is neither a calendar nor an address book');
  if (!safeName(collection.name)) bad('names no collection (or one that is not a plain name)');
  for (const key of ['displayName', 'description', 'color', 'order', 'timezone', 'syncToken', 'ctag'] as const)
    if (collection[key] !== null && typeof collection[key] !== 'string') bad(`has a ${key} that is not text`);
  if (!Array.isArray(collection.components) || !collection.components.every((x) => /^[A-Z][A-Z0-9-]*$/.test(String(x))))
    bad('has component names that are not iCalendar names');
  if (!Array.isArray(collection.items)) bad('has no item list');
  const names = new Set<string>();
  for (const item of collection.items) {
    if (!item || typeof item !== 'object' || !safeName(item.name) || names.has(item.name))
      bad('lists an item without a unique plain name');
    names.add(item.name);
    if (item.contentType !== null && (typeof item.contentType !== 'string' || /[\r\n]/.test(item.contentType)))
      bad(`gives ${item.name} a content type that is not one`);
  }
  return collection;
}

/** The directory of a collection's files in the snapshot, and the file of one item. */
export const dirOfCollection = (name: string) => fileOfFolder(name);
export const fileOfItem = (dir: string, name: string) => `${dir}/items/${fileOfFolder(name)}`;

const PREVIOUS_COLLECTION_BYTES = 64 * 1024 * 1024;
/** Items fetched at once: a few requests in flight, each item held in memory until it is stored. */
const IN_FLIGHT = 8;

interface CollectionSummary {
  name: string;
  displayName: string | null;
  items: number;
  fetched: number;
  /** How the changes were found: sync-collection from the previous token, or a full listing by ETag. */
  by: 'sync-token' | 'etag';
  syncToken: string | null;
}

/**
 * Every collection of the account, one after another: each item's bytes as COLLECTION/items/NAME,
 * then COLLECTION/collection.json. `done` receives the record of what was read.
 */
export async function* dumpDav(
  target: DavTarget,
  access: DavAccess,
  run: SourceRun,
  done: (record: Record<string, unknown>) => void,
): AsyncGenerator<SourceFile> {
  const client = davClient(target, access);
  const { home, collections } = await discoverCollections(client);
  const summary: CollectionSummary[] = [];
  const totals = { items: 0, fetched: 0, carried: 0, bytes: 0 };
  for (const member of collections) {
    const url = new URL(member.href, target.base);
    if (!url.pathname.endsWith('/')) url.pathname += '/';
    const name =
      memberName(home, url.pathname.replace(/\/$/, '')) ?? decodeURIComponent(url.pathname.split('/').at(-2)!);
    const dir = dirOfCollection(name);
    const props = member.props;
    const stored: StoredCollection = {
      version: 1,
      kind: collectionKind(target.kind),
      name,
      href: url.pathname,
      displayName: textOf(props.displayname),
      description: textOf(props['calendar-description']) ?? textOf(props['addressbook-description']),
      color: textOf(props['calendar-color']),
      order: textOf(props['calendar-order']),
      components: (
        (props['supported-calendar-component-set'] as { comp?: { '@_name'?: string }[] } | undefined)?.comp ?? []
      )
        .map((comp) => String(comp['@_name'] ?? ''))
        .filter((comp) => /^[A-Z][A-Z0-9-]*$/.test(comp)),
      timezone: textOf(props['calendar-timezone']),
      syncToken: null,
      ctag: textOf(props.getctag),
      items: [],
    };
    const previous = await previousCollection(run, dir, stored);
    const listing = await changesSince(client, url, previous);
    stored.syncToken = listing.syncToken ?? textOf(props['sync-token']);
    const line: CollectionSummary = {
      name,
      displayName: stored.displayName,
      items: 0,
      fetched: 0,
      by: listing.by,
      syncToken: stored.syncToken,
    };
    const toFetch: string[] = [];
    for (const item of listing.items) {
      const before = previous?.items.find((p) => p.name === item.name);
      const same =
        before !== undefined && (listing.unchanged.has(item.name) || (item.etag !== null && before.etag === item.etag));
      if (same && (await run.canCarry(fileOfItem(dir, item.name)))) {
        stored.items.push(before);
        totals.carried += 1;
        yield { name: fileOfItem(dir, item.name), carried: true };
      } else toFetch.push(item.name);
    }
    for (let i = 0; i < toFetch.length; i += IN_FLIGHT) {
      const got = await Promise.all(toFetch.slice(i, i + IN_FLIGHT).map((item) => getItem(client, url, item)));
      for (const item of got) {
        if (!item) continue; // deleted since the listing: not in this snapshot (it is in earlier ones)
        stored.items.push(item.stored);
        line.fetched += 1;
        totals.bytes += item.bytes.length;
        yield {
          name: fileOfItem(dir, item.stored.name),
          stream: Readable.from([item.bytes]),
          finished: Promise.resolve(),
        };
      }
    }
    stored.items.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    line.items = stored.items.length;
    totals.items += stored.items.length;
    totals.fetched += line.fetched;
    summary.push(line);
    yield {
      name: `${dir}/collection.json`,
      stream: Readable.from([Buffer.from(`${JSON.stringify(stored, null, 1)}\n`)]),
      finished: Promise.resolve(),
      keep: true,
    };
  }
  done({ kind: target.kind, url: target.display, collections: summary, ...totals });
}

async function previousCollection(
  run: SourceRun,
  dir: string,
  now: StoredCollection,
): Promise<StoredCollection | undefined> {
  const bytes = await run.read(`${dir}/collection.json`, PREVIOUS_COLLECTION_BYTES);
  if (!bytes) return undefined;
  try {
    const previous = checkStoredCollection(JSON.parse(bytes.toString('utf8')), 'the previous collection.json');
    return previous.href === now.href && previous.kind === now.kind ? previous : undefined;
  } catch {
    return undefined; // unsound: list the collection in full
  }
}

interface Listing {
  /** The collection's members now, with the ETag the server gave (when it gave one). */
  items: { name: string; etag: string | null }[];
  /** Members the sync report did not name: unchanged since the previous token. */
  unchanged: Set<string>;
  syncToken?: string;
  by: 'sync-token' | 'etag';
}

/**
 * What the collection holds now. With a previous token: sync-collection (RFC 6578) names the
 * members changed or removed since; the others are unchanged. Without one, or when the server
 * refuses the token (it expired) or has no sync-collection: every member with its ETag.
 */
async function changesSince(client: DavClient, url: URL, previous: StoredCollection | undefined): Promise<Listing> {
  const where = `the server ${client.target.display}`;
  if (previous?.syncToken) {
    const parsed = await syncReport(client, url, previous.syncToken);
    if (parsed) {
      const removed = new Set<string>();
      const changed = new Map<string, string | null>();
      for (const member of parsed.members) {
        const name = memberName(url, member.href);
        if (name === undefined) continue;
        if (member.status === 404) removed.add(name);
        else changed.set(name, textOf(member.props.getetag));
      }
      const items: Listing['items'] = [];
      const unchanged = new Set<string>();
      for (const item of previous.items)
        if (!removed.has(item.name) && !changed.has(item.name)) {
          items.push({ name: item.name, etag: item.etag });
          unchanged.add(item.name);
        }
      for (const [name, etag] of changed) items.push({ name, etag });
      return { items, unchanged, syncToken: parsed.syncToken, by: 'sync-token' };
    }
  }
  // A full listing: an initial sync-collection where the server has it (it also gives the first token), else PROPFIND.
  const parsed =
    (await syncReport(client, url, '')) ??
    parseMultistatus(
      (
        await client.request('PROPFIND', url, {
          headers: depth(1),
          body: `<?xml version="1.0" encoding="utf-8"?><D:propfind ${NS}><D:prop><D:getetag/><D:resourcetype/></D:prop></D:propfind>`,
        })
      ).body,
      where,
    );
  const items: Listing['items'] = [];
  for (const member of parsed.members) {
    const name = memberName(url, member.href);
    if (name === undefined || member.status === 404) continue;
    const type = member.props.resourcetype as Record<string, unknown> | undefined;
    if (type && typeof type === 'object' && 'collection' in type) continue;
    items.push({ name, etag: textOf(member.props.getetag) });
  }
  return { items, unchanged: new Set(), syncToken: parsed.syncToken, by: 'etag' };
}

/**
 * A sync-collection REPORT, followed while the server truncates its answer (507 on the collection
 * itself, RFC 6578 §3.6): the members it names, later answers over earlier ones, and the last token.
 * Undefined when the server has no sync-collection or refuses the token (the caller lists by ETag).
 */
async function syncReport(
  client: DavClient,
  url: URL,
  token: string,
): Promise<{ members: DavMember[]; syncToken?: string } | undefined> {
  const members = new Map<string, DavMember>();
  let current = token;
  for (let round = 0; round < 10_000; round++) {
    const body = `<?xml version="1.0" encoding="utf-8"?><D:sync-collection xmlns:D="DAV:"><D:sync-token>${xmlText(current)}</D:sync-token><D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop></D:sync-collection>`;
    const answer = await client.request('REPORT', url, {
      headers: depth(0),
      body,
      ok: [207, 400, 403, 404, 405, 409, 412, 415, 501],
    });
    if (answer.status !== 207) return round === 0 ? undefined : { members: [...members.values()], syncToken: current };
    const parsed = parseMultistatus(answer.body, `the server ${client.target.display}`);
    let truncated = false;
    for (const member of parsed.members) {
      if (new URL(member.href, url).pathname.replace(/\/?$/, '/') === url.pathname) truncated ||= member.status === 507;
      else members.set(member.href, member);
    }
    if (!truncated || !parsed.syncToken || parsed.syncToken === current)
      return { members: [...members.values()], syncToken: parsed.syncToken };
    current = parsed.syncToken;
  }
  throw new AmberError(
    'SOURCE_FAILED',
    `the server ${client.target.display} never finished its sync-collection answer`,
  );
}

/** One item's exact bytes; undefined when it was deleted since the listing. */
async function getItem(
  client: DavClient,
  collection: URL,
  name: string,
): Promise<{ stored: StoredItem; bytes: Buffer } | undefined> {
  const answer = await client.request('GET', new URL(encodeURIComponent(name), collection), { ok: [200, 404, 410] });
  if (answer.status !== 200) return undefined;
  return {
    stored: {
      name,
      etag: answer.headers.get('etag'),
      contentType: answer.headers.get('content-type'),
      size: answer.body.length,
    },
    bytes: answer.body,
  };
}
