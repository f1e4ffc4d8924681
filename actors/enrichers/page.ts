import { Lru } from './lru.js';
import type { Envelope } from '../../engine/index.js';
import { createError } from '../../engine/errors/index.js';
import type { Enricher, EnrichPatch } from './types.js';
// JSON modules rather than readFileSync: tsc (resolveJsonModule) copies imported
// .json files to dist/actors/enrichers/data/, so the built module finds them too.
import searchEnginesJson from './data/search-engines.json' with { type: 'json' };
import socialNetworksJson from './data/social-networks.json' with { type: 'json' };
import emailProvidersJson from './data/email-providers.json' with { type: 'json' };
import publicSuffixesJson from './data/public-suffixes.json' with { type: 'json' };

/**
 * The page enricher: where a visitor is (page host, path, query) and how they
 * got there (referrer, campaign, click id, source type). Synchronous, never
 * throws on input: a malformed, relative or empty URL gives empty columns, not
 * an error. Search engines, social networks, webmail hosts and two-label
 * public suffixes are data, in ./data/*.json (each file says its format).
 *
 * Classification, first match wins:
 *   1. paid     — the page URL has a click id, or utm_medium is a paid medium
 *                 (PAID_MEDIUMS, or any medium starting with "paid").
 *   2. email    — utm_medium is an email medium, or the referrer is a webmail host.
 *   3. social   — the referrer is a social network, or utm_source names one and
 *                 utm_medium is a social medium.
 *   4. search   — the referrer is a search engine (search_keyword from its query,
 *                 where the engine still sends one).
 *   5. internal — the referrer host is the page host, is (a subdomain of) a
 *                 configured internal host, or has the page's registrable
 *                 domain (last two labels, three under a listed suffix such as
 *                 co.uk): shop.example.com → www.example.com is internal.
 *   6. referral — any other referrer with a host.
 *   7. direct   — no referrer, or one without a host (about:blank, garbage).
 * Caveat: Facebook adds fbclid to organic outbound links too, so "paid by
 * fbclid" also counts unpaid Facebook shares.
 *
 * source_name: for paid, the referrer's search/social/webmail name, else the
 * click id's network, else the network utm_source names (google, fb → facebook),
 * else ''; for email, the webmail name or ''; for social and search, the
 * network or engine; for referral, the referrer host; '' for internal and direct.
 * search_keyword is filled whenever the referrer is a search engine, paid too.
 *
 * Query parameters: utm_* and click-id keys match case-insensitively (UTM_Source
 * is a typo nobody means differently); when a key appears more than once, the
 * exactly-lower-case one wins, else the first non-empty one. Values are
 * URL-decoded ('+' is a space) and otherwise kept exactly as sent — no lower
 * casing, no trimming — so a GROUP BY in ClickHouse shows what the link said.
 * Click ids, when several are present, are taken in CLICK_IDS order. page_path
 * and page_query are as location.pathname / location.search show them
 * (percent-encoded, not decoded; page_query without the '?').
 *
 * A relative referrer is resolved against the page URL (RFC 9110 §10.1.3
 * allows a partial Referer), so "/pricing" is the page's own host: internal.
 * A relative page URL ("/pricing?utm_source=x") keeps its path, query and
 * campaign with an empty host; an unparseable one keeps only its campaign.
 *
 * Cost: the WHATWG URL parser and the list lookups run once per distinct page
 * URL and once per distinct referrer (two LRU caches of `cacheSize` entries,
 * 0 disables them); events of one page view share both, and then get the same
 * frozen patch back without allocating.
 */

export const PAGE_COLUMNS = Object.freeze([
  'page_host',
  'page_path',
  'page_query',
  'referrer_host',
  'utm_source',
  'utm_medium',
  'utm_campaign',
  'utm_term',
  'utm_content',
  'click_id',
  'click_id_type',
  'source_type',
  'source_name',
  'search_keyword',
] as const);

export type SourceType = 'direct' | 'internal' | 'search' | 'social' | 'email' | 'paid' | 'referral';

/** Click-id query parameter → click_id_type; when a URL carries several, the first listed wins. */
export const CLICK_IDS: readonly (readonly [param: string, type: string])[] = Object.freeze([
  ['gclid', 'google'],
  ['gbraid', 'google'], // Google Ads on iOS (app → web), instead of gclid
  ['wbraid', 'google'], // Google Ads on iOS (web → web)
  ['yclid', 'yandex'],
  ['fbclid', 'facebook'],
  ['msclkid', 'microsoft'],
  ['ttclid', 'tiktok'],
  ['twclid', 'twitter'],
  ['li_fat_id', 'linkedin'],
] as const);

/** utm_medium values (lower-cased) that mean paid traffic; any medium starting with "paid" does too. */
export const PAID_MEDIUMS: ReadonlySet<string> = new Set([
  'cpc', 'ppc', 'cpm', 'cpv', 'cpa', 'cpp', 'display', 'banner', 'retargeting', 'remarketing',
]);
export const EMAIL_MEDIUMS: ReadonlySet<string> = new Set(['email', 'e-mail', 'e_mail', 'e mail', 'newsletter']);
export const SOCIAL_MEDIUMS: ReadonlySet<string> = new Set([
  'social', 'social-media', 'social_media', 'socialmedia', 'social-network', 'social_network', 'sm',
  'organic-social', 'organic_social',
]);

/** Entries per cache (pages, referrers). A page entry holds its URL, its parts and its last patch: ~0.5 KB plus twice the URL. */
export const DEFAULT_PAGE_CACHE_SIZE = 10_000;

export interface PageEnricherOptions {
  name?: string;
  /** Other hosts of the same site (checkout, docs on another domain); their subdomains count too. */
  internalHosts?: readonly string[];
  /** Entries in each of the page-URL and referrer caches; 0 disables caching. */
  cacheSize?: number;
}

// ---------------------------------------------------------------- data files

interface HostTable<T> {
  /** Pattern → value, matched against the host and each of its parent domains. */
  readonly exact: Map<string, T>;
  /** `name.*` patterns, keyed by `name`, matched against the host without its public suffix. */
  readonly wild: Map<string, T>;
}

interface SearchEngine {
  readonly name: string;
  readonly params: readonly string[];
}

interface HostLists {
  readonly suffixes: ReadonlySet<string>;
  readonly search: HostTable<SearchEngine>;
  readonly social: HostTable<string>;
  readonly email: HostTable<string>;
  /** utm_source (lower case) → search engine or social network name. */
  readonly sourceNames: ReadonlyMap<string, string>;
  /** utm_source (lower case) → social network name. */
  readonly socialSources: ReadonlyMap<string, string>;
}

const HOST_PATTERN = /^[a-z0-9_-]+(\.[a-z0-9_-]+)*(\.\*)?$/;
const NAME_PATTERN = /^[a-z0-9_]+$/;

let hostLists: HostLists | undefined;

/** Compiles the data files once; reports every problem in them together. */
function loadHostLists(): HostLists {
  if (hostLists !== undefined) return hostLists;
  const problems: string[] = [];
  const suffixes = new Set(strings(field(publicSuffixesJson, 'suffixes', 'public-suffixes.json', problems), 'public-suffixes.json: suffixes', problems));
  const search: HostTable<SearchEngine> = { exact: new Map(), wild: new Map() };
  const social: HostTable<string> = { exact: new Map(), wild: new Map() };
  const email: HostTable<string> = { exact: new Map(), wild: new Map() };
  const sourceNames = new Map<string, string>();
  const socialSources = new Map<string, string>();

  entries(searchEnginesJson, 'engines', 'search-engines.json', problems, (entry, where) => {
    const name = nameOf(entry, where, problems);
    const engine: SearchEngine = { name, params: strings(field(entry, 'params', where, problems), `${where}.params`, problems) };
    addHosts(search, entry, engine, where, problems);
    sourceNames.set(name, name);
  });
  entries(socialNetworksJson, 'networks', 'social-networks.json', problems, (entry, where) => {
    const name = nameOf(entry, where, problems);
    addHosts(social, entry, name, where, problems);
    for (const source of [name, ...strings(field(entry, 'utmSources', where, problems), `${where}.utmSources`, problems)]) {
      sourceNames.set(source.toLowerCase(), name);
      socialSources.set(source.toLowerCase(), name);
    }
  });
  entries(emailProvidersJson, 'providers', 'email-providers.json', problems, (entry, where) => {
    addHosts(email, entry, nameOf(entry, where, problems), where, problems);
  });

  if (problems.length > 0) {
    throw createError('FLOW_ERR_CONFIG_INVALID', { details: `actors/enrichers/data: ${problems.join('; ')}` });
  }
  hostLists = { suffixes, search, social, email, sourceNames, socialSources };
  return hostLists;
}

function field(obj: unknown, key: string, where: string, problems: string[]): unknown {
  if (typeof obj !== 'object' || obj === null || !(key in obj)) {
    problems.push(`${where}: missing "${key}"`);
    return undefined;
  }
  return (obj as Record<string, unknown>)[key];
}

function strings(value: unknown, where: string, problems: string[]): string[] {
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string' && v !== '')) {
    if (value !== undefined) problems.push(`${where}: must be an array of non-empty strings`);
    return [];
  }
  return value as string[];
}

function entries(json: unknown, key: string, file: string, problems: string[], each: (entry: unknown, where: string) => void): void {
  const list = field(json, key, file, problems);
  if (!Array.isArray(list)) {
    if (list !== undefined) problems.push(`${file}: "${key}" must be an array`);
    return;
  }
  list.forEach((entry: unknown, i) => each(entry, `${file}: ${key}[${i}]`));
}

function nameOf(entry: unknown, where: string, problems: string[]): string {
  const name = field(entry, 'name', where, problems);
  if (typeof name !== 'string' || !NAME_PATTERN.test(name)) {
    if (name !== undefined) problems.push(`${where}.name: must match ${String(NAME_PATTERN)}`);
    return '';
  }
  return name;
}

function addHosts<T>(table: HostTable<T>, entry: unknown, value: T, where: string, problems: string[]): void {
  for (const pattern of strings(field(entry, 'hosts', where, problems), `${where}.hosts`, problems)) {
    if (!HOST_PATTERN.test(pattern)) {
      problems.push(`${where}.hosts: "${pattern}" is not a lower-case host, optionally ending in ".*"`);
      continue;
    }
    const wild = pattern.endsWith('.*');
    const map = wild ? table.wild : table.exact;
    const key = wild ? pattern.slice(0, -2) : pattern;
    if (map.has(key)) problems.push(`${where}.hosts: "${pattern}" is listed twice`);
    map.set(key, value);
  }
}

// ------------------------------------------------------------------ host names

/** The host, or its nearest parent domain, in `table`; then `name.*` patterns against the host minus its public suffix. */
function lookupHost<T>(table: HostTable<T>, host: string, suffixes: ReadonlySet<string>): T | undefined {
  let h = host;
  for (;;) {
    const hit = table.exact.get(h);
    if (hit !== undefined) return hit;
    const dot = h.indexOf('.');
    if (dot < 0) break;
    h = h.slice(dot + 1);
  }
  if (table.wild.size === 0) return undefined;
  h = withoutPublicSuffix(host, suffixes);
  while (h !== '') {
    const hit = table.wild.get(h);
    if (hit !== undefined) return hit;
    const dot = h.indexOf('.');
    if (dot < 0) break;
    h = h.slice(dot + 1);
  }
  return undefined;
}

function isIpLiteral(host: string): boolean {
  // The URL parser turns any host ending in a number into an IPv4 address (or rejects it); IPv6 is bracketed.
  const last = host.charCodeAt(host.length - 1);
  return host.charCodeAt(0) === 91 /* [ */ || (last >= 48 && last <= 57);
}

function withoutPublicSuffix(host: string, suffixes: ReadonlySet<string>): string {
  if (isIpLiteral(host)) return '';
  const last = host.lastIndexOf('.');
  if (last <= 0) return '';
  const second = host.lastIndexOf('.', last - 1);
  if (second > 0 && suffixes.has(host.slice(second + 1))) return host.slice(0, second);
  return host.slice(0, last);
}

/** Last two labels, or three under a listed two-label suffix; IP literals and single labels as they are. */
function registrableDomain(host: string, suffixes: ReadonlySet<string>): string {
  if (host === '' || isIpLiteral(host)) return host;
  const last = host.lastIndexOf('.');
  if (last < 0) return host;
  const second = host.lastIndexOf('.', last - 1);
  if (second < 0) return host;
  if (!suffixes.has(host.slice(second + 1))) return host.slice(second + 1);
  const third = host.lastIndexOf('.', second - 1);
  return third < 0 ? host : host.slice(third + 1);
}

function hostOf(url: URL): string {
  // Hosts of non-special schemes (android-app://) are not lower-cased by the parser.
  const h = url.hostname.toLowerCase();
  return h.endsWith('.') ? h.slice(0, -1) : h;
}

// ------------------------------------------------------------------- page URL

/** Parsed once per distinct page URL. The memo fields make repeats of (page, referrer) free. */
interface PageInfo {
  readonly host: string;
  readonly site: string;
  readonly path: string;
  readonly query: string;
  readonly utmSource: string;
  readonly utmMedium: string;
  readonly utmCampaign: string;
  readonly utmTerm: string;
  readonly utmContent: string;
  readonly clickId: string;
  readonly clickIdType: string;
  readonly medium: 'paid' | 'email' | 'social' | '';
  /** utm_source as a known engine or network name, or ''. */
  readonly sourceName: string;
  readonly socialSource: string;
  memoReferrer: string | undefined;
  memoPatch: EnrichPatch | undefined;
}

const UTM_KEYS = ['utm_source', 'utm_medium', 'utm_campaign', 'utm_term', 'utm_content'] as const;
const QUERY_SLOTS: ReadonlyMap<string, number> = new Map([
  ...UTM_KEYS.map((k, i): [string, number] => [k, i]),
  ...CLICK_IDS.map(([param], i): [string, number] => [param, UTM_KEYS.length + i]),
]);
const SLOT_COUNT = QUERY_SLOTS.size;
const KEY_MIN = Math.min(...[...QUERY_SLOTS.keys()].map((k) => k.length));
const KEY_MAX = Math.max(...[...QUERY_SLOTS.keys()].map((k) => k.length));
/** Any absolute URL will do: only the path and query of a relative page URL are kept. */
const RELATIVE_BASE = 'http://relative.invalid';
const PLUS = /\+/g;

function decodeParam(raw: string): string {
  if (raw.indexOf('%') < 0 && raw.indexOf('+') < 0) return raw;
  try {
    return decodeURIComponent(raw.replace(PLUS, ' '));
  } catch {
    // Malformed escapes: URLSearchParams keeps them literally and maps invalid UTF-8 to U+FFFD instead of throwing.
    return new URLSearchParams(`v=${raw}`).get('v') ?? '';
  }
}

/** Fills `values` with the utm_* and click-id parameters of `query` (no '?'), by the rules in the header. */
function scanQuery(query: string, values: string[], exact: boolean[]): void {
  const n = query.length;
  let start = 0;
  while (start < n) {
    let end = query.indexOf('&', start);
    if (end < 0) end = n;
    let eq = query.indexOf('=', start);
    if (eq < 0 || eq > end) eq = end;
    const keyLength = eq - start;
    if (keyLength >= KEY_MIN && keyLength <= KEY_MAX) {
      const key = query.slice(start, eq);
      const lower = key.toLowerCase();
      const slot = QUERY_SLOTS.get(lower);
      if (slot !== undefined && eq < end) {
        const isExact = key === lower;
        if (values[slot] === '' || (isExact && exact[slot] !== true)) {
          const value = decodeParam(query.slice(eq + 1, end));
          if (value !== '') {
            values[slot] = value;
            exact[slot] = isExact;
          }
        }
      }
    }
    start = end + 1;
  }
}

function mediumClass(medium: string): PageInfo['medium'] {
  if (medium === '') return '';
  const m = medium.toLowerCase();
  if (PAID_MEDIUMS.has(m) || m.startsWith('paid')) return 'paid';
  if (EMAIL_MEDIUMS.has(m)) return 'email';
  if (SOCIAL_MEDIUMS.has(m)) return 'social';
  return '';
}

function parsePage(url: string, lists: HostLists): PageInfo {
  let parsed: URL | null = null;
  let relative = false;
  if (url !== '') {
    try {
      parsed = new URL(url);
    } catch {
      const c = url.charCodeAt(0);
      if (c === 47 /* / */ || c === 63 /* ? */) {
        try {
          parsed = new URL(url, RELATIVE_BASE);
          relative = !url.startsWith('//');
        } catch {
          parsed = null;
        }
      }
    }
  }
  let host = '';
  let path = '';
  let query: string;
  if (parsed !== null) {
    host = relative ? '' : hostOf(parsed);
    path = parsed.pathname;
    query = parsed.search.slice(1);
  } else {
    // Unparseable: no host or path to trust, but a campaign in its query is still worth keeping.
    const q = url.indexOf('?');
    const hash = q < 0 ? -1 : url.indexOf('#', q);
    query = q < 0 ? '' : url.slice(q + 1, hash < 0 ? url.length : hash);
  }

  const values: string[] = new Array<string>(SLOT_COUNT).fill('');
  if (query !== '') scanQuery(query, values, new Array<boolean>(SLOT_COUNT).fill(false));
  let clickId = '';
  let clickIdType = '';
  for (let i = 0; i < CLICK_IDS.length; i++) {
    const v = values[UTM_KEYS.length + i] ?? '';
    if (v !== '') {
      clickId = v;
      clickIdType = CLICK_IDS[i]?.[1] ?? '';
      break;
    }
  }
  const utmSource = values[0] ?? '';
  const utmMedium = values[1] ?? '';
  const sourceKey = utmSource.toLowerCase();
  return {
    host,
    site: registrableDomain(host, lists.suffixes),
    path,
    query,
    utmSource,
    utmMedium,
    utmCampaign: values[2] ?? '',
    utmTerm: values[3] ?? '',
    utmContent: values[4] ?? '',
    clickId,
    clickIdType,
    medium: mediumClass(utmMedium),
    sourceName: lists.sourceNames.get(sourceKey) ?? '',
    socialSource: lists.socialSources.get(sourceKey) ?? '',
    memoReferrer: undefined,
    memoPatch: undefined,
  };
}

// ------------------------------------------------------------------- referrer

/** Parsed once per distinct referrer (per enricher: `internal` depends on its options). */
interface RefInfo {
  readonly host: string;
  readonly site: string;
  readonly search: string;
  readonly social: string;
  readonly email: string;
  readonly keyword: string;
  /** The host is, or is under, one of the configured internal hosts. */
  readonly internal: boolean;
}

const NO_REFERRER: RefInfo = Object.freeze({ host: '', site: '', search: '', social: '', email: '', keyword: '', internal: false });
/** Sentinel: a relative referrer, to be resolved against the page (not cacheable by itself). */
const RELATIVE_REFERRER: RefInfo = Object.freeze({ ...NO_REFERRER });

function searchKeyword(url: URL | null, params: readonly string[]): string {
  if (url === null || params.length === 0 || url.search === '') return '';
  const sp = url.searchParams;
  for (const p of params) {
    const v = sp.get(p)?.trim();
    if (v) return v;
  }
  return '';
}

// -------------------------------------------------------------------- enricher

function validateOptions(options: PageEnricherOptions): { name: string; internalHosts: string[]; cacheSize: number } {
  const problems: string[] = [];
  const name = options.name ?? 'page';
  if (typeof name !== 'string' || name === '') problems.push('name: must be a non-empty string');
  const cacheSize = options.cacheSize ?? DEFAULT_PAGE_CACHE_SIZE;
  if (!Number.isInteger(cacheSize) || cacheSize < 0) problems.push('cacheSize: must be an integer >= 0');
  const internalHosts: string[] = [];
  const hosts: unknown = options.internalHosts ?? [];
  if (!Array.isArray(hosts)) problems.push('internalHosts: must be an array of host names');
  else {
    hosts.forEach((h: unknown, i) => {
      const host = typeof h === 'string' ? h.trim().toLowerCase().replace(/\.$/, '') : '';
      if (!/^[a-z0-9_-]+(\.[a-z0-9_-]+)*$/.test(host)) problems.push(`internalHosts[${i}]: ${JSON.stringify(h)} is not a host name (no scheme, port or path)`);
      else internalHosts.push(host);
    });
  }
  if (problems.length > 0) throw createError('FLOW_ERR_CONFIG_INVALID', { details: `page enricher: ${problems.join('; ')}` });
  return { name, internalHosts, cacheSize };
}

export function createPageEnricher(options: PageEnricherOptions = {}): Enricher {
  const { name, internalHosts, cacheSize } = validateOptions(options);
  const lists = loadHostLists();
  const pages = cacheSize > 0 ? new Lru<string, PageInfo>(cacheSize) : null;
  const referrers = cacheSize > 0 ? new Lru<string, RefInfo>(cacheSize) : null;

  function isConfiguredInternal(host: string): boolean {
    for (const h of internalHosts) {
      if (host === h || (host.length > h.length && host.endsWith(h) && host.charCodeAt(host.length - h.length - 1) === 46 /* . */)) return true;
    }
    return false;
  }

  function refFromUrl(url: URL | null, host: string): RefInfo {
    if (host === '') return NO_REFERRER;
    const engine = lookupHost(lists.search, host, lists.suffixes);
    return {
      host,
      site: registrableDomain(host, lists.suffixes),
      search: engine?.name ?? '',
      social: lookupHost(lists.social, host, lists.suffixes) ?? '',
      email: lookupHost(lists.email, host, lists.suffixes) ?? '',
      keyword: engine === undefined ? '' : searchKeyword(url, engine.params),
      internal: isConfiguredInternal(host),
    };
  }

  function parseReferrer(referrer: string): RefInfo {
    let url: URL;
    try {
      url = new URL(referrer);
    } catch {
      if (referrer.startsWith('//')) return parseReferrer(`http:${referrer}`);
      const c = referrer.charCodeAt(0);
      return c === 47 /* / */ || c === 63 /* ? */ || c === 35 /* # */ ? RELATIVE_REFERRER : NO_REFERRER;
    }
    return refFromUrl(url, hostOf(url));
  }

  function pageInfo(url: string): PageInfo {
    if (pages === null) return parsePage(url, lists);
    let info = pages.get(url);
    if (info === undefined) {
      info = parsePage(url, lists);
      pages.set(url, info);
    }
    return info;
  }

  function refInfo(referrer: string, page: PageInfo): RefInfo {
    if (referrer === '') return NO_REFERRER;
    let info = referrers?.get(referrer);
    if (info === undefined) {
      info = parseReferrer(referrer);
      referrers?.set(referrer, info);
    }
    // Resolved against the page, a relative referrer's host is the page's own.
    return info === RELATIVE_REFERRER ? refFromUrl(null, page.host) : info;
  }

  function classify(p: PageInfo, r: RefInfo): EnrichPatch {
    let sourceType: SourceType;
    let sourceName = '';
    if (p.clickIdType !== '' || p.medium === 'paid') {
      sourceType = 'paid';
      sourceName = r.search || r.social || r.email || p.clickIdType || p.sourceName;
    } else if (p.medium === 'email' || r.email !== '') {
      sourceType = 'email';
      sourceName = r.email;
    } else if (r.social !== '' || (p.medium === 'social' && p.socialSource !== '')) {
      sourceType = 'social';
      sourceName = r.social || p.socialSource;
    } else if (r.search !== '') {
      sourceType = 'search';
      sourceName = r.search;
    } else if (r.host === '') {
      sourceType = 'direct';
    } else if (r.internal || r.host === p.host || (p.site !== '' && r.site === p.site)) {
      sourceType = 'internal';
    } else {
      sourceType = 'referral';
      sourceName = r.host;
    }
    return Object.freeze({
      page_host: p.host,
      page_path: p.path,
      page_query: p.query,
      referrer_host: r.host,
      utm_source: p.utmSource,
      utm_medium: p.utmMedium,
      utm_campaign: p.utmCampaign,
      utm_term: p.utmTerm,
      utm_content: p.utmContent,
      click_id: p.clickId,
      click_id_type: p.clickIdType,
      source_type: sourceType,
      source_name: sourceName,
      search_keyword: r.keyword,
    });
  }

  return Object.freeze({
    name,
    namespace: 'page',
    columns: PAGE_COLUMNS,
    reads: Object.freeze(['pageUrl', 'pageReferrer'] as const),
    // Synchronous: never waited on.
    timeoutMs: 0,
    pure: true,
    enrich(envelope: Envelope): EnrichPatch {
      const page = pageInfo(envelope.pageUrl);
      const referrer = envelope.pageReferrer;
      if (page.memoReferrer === referrer && page.memoPatch !== undefined) return page.memoPatch;
      const patch = classify(page, refInfo(referrer, page));
      page.memoReferrer = referrer;
      page.memoPatch = patch;
      return patch;
    },
  });
}
