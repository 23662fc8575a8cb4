// Calendars (CalDAV) and address books (CardDAV) as a source: every collection of the account with
// its properties, and every item (.ics, .vcf) as the exact bytes the server serves for it. The
// snapshot holds /caldav/<collection>/collection.json (the collection, its sync token and its items'
// ETags) and /caldav/<collection>/items/<name> (or /carddav/…). Incremental: each collection is
// listed by ETag, and RFC 6578 sync-collection from the previous snapshot's token names what
// changed; an item is fetched when either says so, and the token is trusted only while what it
// says agrees with the listing. The way back into an account is restoreDav (dav-restore.ts).
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
  MAX_BODY_BYTES,
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
export const isCollectionOf = (props: Props, kind: DavKind) => {
  const type = props.resourcetype as Record<string, unknown> | undefined;
  return typeof type === 'object' && type !== null && collectionKind(kind) in type;
};

/**
 * Each part of a name between slashes (or backslashes) is a plain name: a server that decodes an
 * encoded / in a URL segment finds no empty, . or .. segment in it to climb out of the collection.
 */
const plainSegments = (name: string) =>
  name.split(/[/\\]/).every((part) => part !== '' && part !== '.' && part !== '..');

/**
 * A name that may become a file (fileOfFolder escapes /, % and control characters) and a URL
 * segment again (segmentOf encodes it): plain segments, no NUL or line break.
 */
export const safeName = (name: unknown): name is string =>
  typeof name === 'string' && !/[\0\r\n]/.test(name) && plainSegments(name);

/** A name as one URL path segment: everything but RFC 3986's unreserved characters %-encoded (encodeURIComponent leaves !'()* as they are). */
export const segmentOf = (name: string) =>
  encodeURIComponent(name).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/** An href as a URL against `base`; undefined when it is not one. */
function resolve(href: string, base: URL): URL | undefined {
  try {
    return new URL(href, base);
  } catch {
    return undefined;
  }
}

/** How an href relates to a collection: one of its members (by name), or why it is not one. */
export type Membership =
  | { kind: 'member'; name: string; url: URL }
  /** On another origin: never followed (a request there would carry the password). */
  | { kind: 'elsewhere'; url: URL }
  /** A direct member whose name Amber cannot keep (a NUL or line break, a malformed %-escape). */
  | { kind: 'unkeepable'; segment: string }
  /** Not a member: the collection itself, something deeper or outside, a dot segment, not a URL. */
  | { kind: 'none' };

/** Only direct children of the collection count; `href` without a trailing slash for a collection. */
export function membership(collection: URL, href: string): Membership {
  const url = resolve(href, collection);
  if (!url) return { kind: 'none' };
  if (url.origin !== collection.origin) return { kind: 'elsewhere', url };
  if (!url.pathname.startsWith(collection.pathname)) return { kind: 'none' };
  const segment = url.pathname.slice(collection.pathname.length);
  if (segment === '' || segment.includes('/')) return { kind: 'none' };
  let name: string;
  try {
    name = decodeURIComponent(segment);
  } catch {
    return { kind: 'unkeepable', segment };
  }
  // %2e%2e or a%2F..%2Fb: a way out of the collection on a server that decodes first, never an item.
  if (!plainSegments(name)) return { kind: 'none' };
  return safeName(name) ? { kind: 'member', name, url } : { kind: 'unkeepable', segment };
}

/** Whether an href names the collection itself (with or without its trailing slash). */
const isSelf = (collection: URL, href: string) => {
  const url = resolve(href, collection);
  return url?.origin === collection.origin && url.pathname.replace(/\/?$/, '/') === collection.pathname;
};

/** A collection of the account: its name (the href's last segment, decoded), its URL and properties. */
export interface FoundCollection {
  name: string;
  url: URL;
  props: Props;
}

export interface Discovery {
  home: URL;
  collections: FoundCollection[];
  /** Collections of the kind the server named on another origin: not followed. */
  elsewhere: URL[];
  /** Collections whose names Amber cannot keep (their raw path segments). */
  unkeepable: string[];
}

const propfindBody = (props: string) =>
  `<?xml version="1.0" encoding="utf-8"?><D:propfind ${NS}><D:prop>${props}</D:prop></D:propfind>`;

async function propfind(client: DavClient, url: URL, n: 0 | 1, props: string): Promise<DavMember[]> {
  const answer = await client.request('PROPFIND', url, { headers: depth(n), body: propfindBody(props) });
  return parseMultistatus(answer.body, `the server ${client.target.display}`).members;
}

/**
 * The account's collections of this kind: the URL itself if it is one (with `wholeHome`, as a
 * restore needs: every collection of the home it is in), else those of its home set.
 */
export async function discoverCollections(
  client: DavClient,
  options: { wholeHome?: boolean } = {},
): Promise<Discovery> {
  const { target } = client;
  const homeProp = target.kind === 'caldav' ? 'calendar-home-set' : 'addressbook-home-set';
  const [self] = await propfind(
    client,
    target.base,
    0,
    `${COLLECTION_PROPS}<D:current-user-principal/><C:calendar-home-set/><A:addressbook-home-set/>`,
  );
  if (self && isCollectionOf(self.props, target.kind)) return oneCollection(client, self.props, options);
  let homeHref = self && hrefIn(self.props[homeProp]);
  if (!homeHref && self) {
    const principal = hrefIn(self.props['current-user-principal']);
    const principalUrl = principal === undefined ? undefined : resolve(principal, target.base);
    if (principalUrl) {
      const [found] = await propfind(client, principalUrl, 0, `<C:calendar-home-set/><A:addressbook-home-set/>`);
      homeHref = found && hrefIn(found.props[homeProp]);
    }
  }
  const home = resolve(homeHref ?? target.base.pathname, target.base);
  if (!home) throw new AmberError('SOURCE_FAILED', `the server ${target.display} names a home that is not a URL`);
  if (!home.pathname.endsWith('/')) home.pathname += '/';
  if (home.origin !== target.base.origin)
    throw new AmberError(
      'SOURCE_FAILED',
      `the server ${target.display} names a home on another server (${home.origin}), where Amber sends no password`,
      { hint: `if that is this server under the name it gives itself, back up ${sameAccountAt(target, home)}` },
    );
  return { home, ...(await collectionsOfHome(client, home)) };
}

/** The URL names one collection: it alone, or (wholeHome) every collection of its home, itself among them. */
async function oneCollection(client: DavClient, props: Props, options: { wholeHome?: boolean }): Promise<Discovery> {
  const { target } = client;
  const home = new URL('..', target.base);
  const place = membership(home, target.base.pathname.replace(/\/$/, ''));
  if (place.kind !== 'member')
    throw new AmberError('USAGE', `the URL ${target.display} names a collection without a name Amber can keep`, {
      hint: 'give the URL of the account (its principal or home) instead',
    });
  const self: FoundCollection = { name: place.name, url: target.base, props };
  const alone: Discovery = { home, collections: [self], elsewhere: [], unkeepable: [] };
  if (!options.wholeHome) return alone;
  // The home may not be listable by this account: then only this collection is known to be there.
  const listed = await collectionsOfHome(client, home).catch((error) => {
    if ((error as { code?: string }).code === 'SOURCE_FAILED') return undefined;
    throw error;
  });
  if (!listed) return alone;
  const others = listed.collections.filter((c) => c.name !== self.name);
  return { home, ...listed, collections: [self, ...others] };
}

/** The collections of this kind directly in a home, each name once (a server may spell one href two ways). */
async function collectionsOfHome(client: DavClient, home: URL): Promise<Omit<Discovery, 'home'>> {
  const byName = new Map<string, FoundCollection>();
  const elsewhere: URL[] = [];
  const unkeepable: string[] = [];
  for (const member of await propfind(client, home, 1, COLLECTION_PROPS)) {
    if (!isCollectionOf(member.props, client.target.kind)) continue;
    const place = membership(home, member.href.replace(/\/$/, ''));
    if (place.kind === 'elsewhere') elsewhere.push(resolve(member.href, home) ?? place.url);
    else if (place.kind === 'unkeepable') unkeepable.push(place.segment);
    else if (place.kind === 'member' && !byName.has(place.name))
      byName.set(place.name, { name: place.name, url: new URL(`${place.url.pathname}/`, home), props: member.props });
  }
  return { collections: [...byName.values()], elsewhere, unkeepable };
}

/** The C0 control characters XML 1.0 cannot carry (all but tab and line ends): never in a property's text. */
const CONTROL = /[^\P{Cc}\t\r\n\x7f-\x9f]/u;
/** What an HTTP header value may hold (RFC 9110 field-value): no NUL, line break or other control character. */
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** A property's text as collection.json keeps it: one that holds what a restore would refuse is kept as none. */
const textProp = (value: unknown) => {
  const text = textOf(value);
  return text !== null && CONTROL.test(text) ? null : text;
};

/**
 * A collection.json read back from a snapshot, checked field by field: its names become URLs and
 * its properties go into request bodies and headers on a restore, and a snapshot may have been
 * written by a write-only key on a host that is not trusted.
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
    if (collection[key] !== null && (typeof collection[key] !== 'string' || CONTROL.test(collection[key])))
      bad(`has a ${key} that is not text`);
  if (!Array.isArray(collection.components) || !collection.components.every((x) => /^[A-Z][A-Z0-9-]*$/.test(String(x))))
    bad('has component names that are not iCalendar names');
  if (!Array.isArray(collection.items)) bad('has no item list');
  const names = new Set<string>();
  for (const item of collection.items) {
    if (!item || typeof item !== 'object' || !safeName(item.name) || names.has(item.name))
      bad('lists an item without a unique plain name');
    names.add(item.name);
    if (item.contentType !== null && (typeof item.contentType !== 'string' || !HEADER_VALUE.test(item.contentType)))
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
/** Follow-ups of a truncated sync-collection answer (507) before the collection is listed by ETag instead. */
const SYNC_ROUNDS = 50;

interface CollectionSummary {
  name: string;
  displayName: string | null;
  items: number;
  fetched: number;
  /** Listed, but gone when fetched (deleted meanwhile, or a replica lagging): the next backup lists it again. */
  gone: number;
  /** How the changes were found: sync-collection from the previous token (checked against the listing), or by ETag alone. */
  by: 'sync-token' | 'etag';
  syncToken: string | null;
}

interface Totals {
  items: number;
  fetched: number;
  carried: number;
  bytes: number;
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
  const client = davClient(target, access, 'backup');
  const discovery = await discoverCollections(client);
  reportLeftOut(client, run, discovery);
  const summary: CollectionSummary[] = [];
  const totals: Totals = { items: 0, fetched: 0, carried: 0, bytes: 0 };
  for (const found of discovery.collections) yield* dumpCollection(client, run, found, summary, totals);
  done({ kind: target.kind, url: target.display, collections: summary, ...totals });
}

/** Collections the listing names but Amber does not follow: warnings, and the snapshot is partial. */
function reportLeftOut(client: DavClient, run: SourceRun, discovery: Discovery): void {
  const { target } = client;
  const what = target.kind === 'caldav' ? 'a calendar' : 'an address book';
  for (const url of discovery.elsewhere)
    run.skipped(
      `${dirOfCollection(lastSegment(url))}/`,
      new AmberError(
        'SOURCE_UNREADABLE',
        `the server ${target.display} lists ${what} at ${url.href}, on another origin than the URL's (${target.base.origin}), and Amber sends the password to no other origin: if that is this server under the name it gives itself, back up ${sameAccountAt(target, url)} instead`,
      ),
    );
  for (const segment of discovery.unkeepable)
    run.skipped(
      `${fileOfFolder(segment)}/`,
      new AmberError(
        'SOURCE_UNREADABLE',
        `the server ${target.display} lists ${what} whose name Amber cannot keep (a NUL, a line break or a malformed %-escape): ${JSON.stringify(segment)}`,
        { hint: 'rename it in a client of the server' },
      ),
    );
}

/** The URL of the same account and path on the origin of `url` (a server's own name for itself). */
const sameAccountAt = (target: DavTarget, url: URL) =>
  `${target.kind}${url.protocol === 'http:' ? '+http' : ''}://${encodeURIComponent(target.user)}@${url.host}${target.base.pathname}`;

/** A URL's last path segment, decoded where it can be (for a warning's file name). */
function lastSegment(url: URL): string {
  const segment = url.pathname.replace(/\/$/, '').split('/').at(-1) ?? '';
  try {
    return decodeURIComponent(segment) || segment;
  } catch {
    return segment;
  }
}

/** The collection's properties as collection.json keeps them (items and token come later). */
function storedOf(found: FoundCollection, kind: DavKind): StoredCollection {
  const { props } = found;
  return {
    version: 1,
    kind: collectionKind(kind),
    name: found.name,
    href: found.url.pathname,
    displayName: textProp(props.displayname),
    description: textProp(props['calendar-description']) ?? textProp(props['addressbook-description']),
    color: textProp(props['calendar-color']),
    order: textProp(props['calendar-order']),
    components: (
      (props['supported-calendar-component-set'] as { comp?: { '@_name'?: string }[] } | undefined)?.comp ?? []
    )
      .map((comp) => String(comp['@_name'] ?? ''))
      .filter((comp) => /^[A-Z][A-Z0-9-]*$/.test(comp)),
    timezone: textProp(props['calendar-timezone']),
    syncToken: null,
    ctag: textProp(props.getctag),
    items: [],
  };
}

/** One collection: its items carried over or fetched, then its collection.json. */
async function* dumpCollection(
  client: DavClient,
  run: SourceRun,
  found: FoundCollection,
  summary: CollectionSummary[],
  totals: Totals,
): AsyncGenerator<SourceFile> {
  const stored = storedOf(found, client.target.kind);
  const dir = dirOfCollection(found.name);
  const previous = await previousCollection(run, dir, stored);
  const listing = await changesSince(client, run, found, dir, previous);
  stored.syncToken = listing.syncToken;
  const line: CollectionSummary = {
    name: found.name,
    displayName: stored.displayName,
    items: 0,
    fetched: 0,
    gone: 0,
    by: listing.by,
    syncToken: null,
  };
  const before = new Map((previous?.items ?? []).map((item) => [item.name, item]));
  const toFetch: string[] = [];
  for (const [name, etag] of listing.items) {
    const was = before.get(name);
    const same =
      was !== undefined &&
      !listing.changed.has(name) &&
      (etag !== null && was.etag !== null ? etag === was.etag : listing.by === 'sync-token');
    if (same && (await run.canCarry(fileOfItem(dir, name)))) {
      stored.items.push(was);
      totals.carried += 1;
      yield { name: fileOfItem(dir, name), carried: true };
    } else toFetch.push(name);
  }
  for (let i = 0; i < toFetch.length; i += IN_FLIGHT) {
    const got = await Promise.all(toFetch.slice(i, i + IN_FLIGHT).map((name) => getItem(client, found, name)));
    for (const [n, item] of got.entries()) {
      const name = toFetch[i + n];
      if (item === 'gone') {
        // Deleted since the listing, or a replica that lags: not in this snapshot. The next backup's
        // listing names it again if it is there, and no token of this run is kept to say otherwise.
        line.gone += 1;
        stored.syncToken = null;
      } else if (item instanceof AmberError) {
        run.skipped(fileOfItem(dir, name), item);
        stored.syncToken = null;
      } else {
        stored.items.push(item.stored);
        line.fetched += 1;
        totals.bytes += item.bytes.length;
        yield { name: fileOfItem(dir, name), stream: Readable.from([item.bytes]), finished: Promise.resolve() };
      }
    }
  }
  stored.items.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  line.items = stored.items.length;
  line.syncToken = stored.syncToken;
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
  /** The collection's members now (by name), with the ETag the listing gave (when it gave one). */
  items: Map<string, string | null>;
  /** Members the sync report named as changed since the previous token: fetched whatever their ETag. */
  changed: Set<string>;
  /** The token to keep: one the server gave before the listing was made, so no change after it is missed. */
  syncToken: string | null;
  by: 'sync-token' | 'etag';
}

/**
 * What the collection holds now: always a listing of every member with its ETag (PROPFIND), the
 * one answer that says which items are there. With a previous token, sync-collection (RFC 6578)
 * names what changed since; it is trusted (and its new token kept) only when it agrees with the
 * listing: a token that a collection deleted and made again reuses, a truncated answer, or one
 * that names items the listing does not have are not.
 */
async function changesSince(
  client: DavClient,
  run: SourceRun,
  found: FoundCollection,
  dir: string,
  previous: StoredCollection | undefined,
): Promise<Listing> {
  // Asked before the listing: a change made in between is named again next time, never lost.
  const sync = previous?.syncToken ? await syncReport(client, found.url, previous.syncToken) : undefined;
  let token = textProp(found.props['sync-token']);
  if (!sync && token === null) token = (await syncReport(client, found.url, ''))?.syncToken ?? null;
  const items = await listItems(client, run, found, dir);
  if (!sync || !previous) return { items, changed: new Set(), syncToken: token, by: 'etag' };
  const changed = new Set([...sync.changed, ...sync.removed]);
  const expected = new Set(previous.items.map((item) => item.name));
  for (const name of sync.removed) expected.delete(name);
  for (const name of sync.changed) expected.add(name);
  const ctag = textProp(found.props.getctag);
  const agrees =
    expected.size === items.size &&
    [...items.keys()].every((name) => expected.has(name)) &&
    // A CTag that moved while the report names nothing: the report does not cover this collection.
    !(changed.size === 0 && previous.ctag !== null && ctag !== null && previous.ctag !== ctag);
  return agrees
    ? { items, changed, syncToken: sync.syncToken, by: 'sync-token' }
    : { items, changed, syncToken: token, by: 'etag' };
}

/** Every member of a collection with its ETag (PROPFIND, depth 1), each name once. */
async function listItems(
  client: DavClient,
  run: SourceRun,
  found: FoundCollection,
  dir: string,
): Promise<Map<string, string | null>> {
  const { target } = client;
  const items = new Map<string, string | null>();
  let elsewhere: URL | undefined;
  for (const member of await propfind(client, found.url, 1, '<D:getetag/><D:resourcetype/>')) {
    if (member.status === 404) continue;
    const type = member.props.resourcetype as Record<string, unknown> | undefined;
    if (type && typeof type === 'object' && 'collection' in type) continue;
    const place = membership(found.url, member.href);
    if (place.kind === 'member') {
      // Two spellings of one href (a%20b and "a b") are one item.
      if (!items.has(place.name)) items.set(place.name, textOf(member.props.getetag));
    } else if (place.kind === 'elsewhere') elsewhere ??= place.url;
    else if (place.kind === 'unkeepable')
      run.skipped(
        `${dir}/items/${fileOfFolder(place.segment)}`,
        new AmberError(
          'SOURCE_UNREADABLE',
          `an item of ${found.name} on ${target.display} has a name Amber cannot keep (a NUL, a line break or a malformed %-escape): ${JSON.stringify(place.segment)}`,
          { hint: 'rename or re-save it in a client of the server' },
        ),
      );
  }
  // Hrefs on another origin are never followed; a collection that has only those is not silently empty.
  if (items.size === 0 && elsewhere)
    run.skipped(
      `${dir}/items/`,
      new AmberError(
        'SOURCE_UNREADABLE',
        `the server ${target.display} lists the items of ${found.name} on another origin (${elsewhere.origin}) than the URL's (${target.base.origin}), and Amber sends the password to no other origin: if that is this server under the name it gives itself, back up ${sameAccountAt(target, elsewhere)} instead`,
      ),
    );
  return items;
}

/**
 * A sync-collection REPORT, followed while the server truncates its answer (507 on the collection
 * itself, RFC 6578 §3.6): the names it gives as changed and as removed, later answers over
 * earlier ones, and the last token. Undefined when the server has no sync-collection or refuses
 * the token, and when the answer cannot be taken as whole: no token, a truncated one that gives
 * no new token to go on from, or more follow-ups than SYNC_ROUNDS.
 */
async function syncReport(
  client: DavClient,
  url: URL,
  token: string,
): Promise<{ changed: Set<string>; removed: Set<string>; syncToken: string } | undefined> {
  const named = new Map<string, DavMember>();
  let current = token;
  for (let round = 0; round < SYNC_ROUNDS; round++) {
    const body = `<?xml version="1.0" encoding="utf-8"?><D:sync-collection xmlns:D="DAV:"><D:sync-token>${xmlText(current)}</D:sync-token><D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop></D:sync-collection>`;
    const answer = await client.request('REPORT', url, {
      headers: depth(0),
      body,
      ok: [207, 400, 403, 404, 405, 409, 412, 415, 501, 507],
      maxBytes: MAX_BODY_BYTES,
    });
    if (answer.status !== 207) return undefined;
    const parsed = parseMultistatus(answer.body, `the server ${client.target.display}`);
    let truncated = false;
    for (const member of parsed.members) {
      const place = membership(url, member.href);
      if (place.kind === 'member') named.set(place.name, member);
      else if (isSelf(url, member.href)) truncated ||= member.status === 507;
      // Anything else (another origin, not a URL, a name Amber cannot keep) is not a member: the listing decides.
    }
    if (!parsed.syncToken || CONTROL.test(parsed.syncToken) || (truncated && parsed.syncToken === current))
      return undefined;
    if (!truncated) {
      const removed = new Set([...named].filter(([, m]) => m.status === 404).map(([name]) => name));
      const changed = new Set([...named.keys()].filter((name) => !removed.has(name)));
      return { changed, removed, syncToken: parsed.syncToken };
    }
    current = parsed.syncToken;
  }
  return undefined;
}

/**
 * One item's exact bytes; 'gone' when it answers 404 or 410 (deleted since the listing), and the
 * reason it was left out when it is larger than Amber holds in memory.
 */
async function getItem(
  client: DavClient,
  found: FoundCollection,
  name: string,
): Promise<{ stored: StoredItem; bytes: Buffer } | 'gone' | AmberError> {
  let answer: Awaited<ReturnType<DavClient['request']>>;
  try {
    answer = await client.request('GET', new URL(segmentOf(name), found.url), { ok: [200, 404, 410] });
  } catch (error) {
    if (!(error instanceof AmberError) || error.details?.tooLarge !== true) throw error;
    return new AmberError(
      'SOURCE_TOO_LARGE',
      `${name} of ${found.name} on ${client.target.display} is larger than ${MAX_BODY_BYTES} bytes and was left out`,
      { hint: 'an item that large holds attachments inline: move them out of it in a client of the server' },
    );
  }
  if (answer.status !== 200) return 'gone';
  // A content type a restore could not send back as a header is not kept: the restore sends the usual one.
  const type = answer.headers.get('content-type');
  return {
    stored: {
      name,
      etag: answer.headers.get('etag'),
      contentType: type !== null && HEADER_VALUE.test(type) ? type : null,
      size: answer.body.length,
    },
    bytes: answer.body,
  };
}
