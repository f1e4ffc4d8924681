import { loadavg } from 'node:os';
import { createFingerprintEnricher } from '../../actors/enrichers/fingerprint.js';
import { geoLookupAddress, openGeoEnricher, type GeoEnricher } from '../../actors/enrichers/geo.js';
import { createEnrichers, registerEnricherTypes, withDefaultEnrichers } from '../../actors/enrichers/index.js';
import { createPageEnricher } from '../../actors/enrichers/page.js';
import { createEnricherSet, type EnricherSet, type EnrichMemo } from '../../actors/enrichers/runtime.js';
import type { Enricher } from '../../actors/enrichers/types.js';
import { createUaEnricher, type UaEnricher } from '../../actors/enrichers/ua.js';
import { createEnvelope, createRegistry, parseConfig, type Envelope, type EnvelopeInput, type ResolvedComponent } from '../../engine/index.js';
import { eventRow } from '../../sinks/index.js';
import { heapUsed, round } from '../lib/measure.js';
import { createZipf, mulberry32, permutation } from '../lib/random.js';
import type { Metric, Scenario, ScenarioResult } from '../lib/scenario.js';

/**
 * The enrichment stage alone: the default enrichers (ua, geo, page,
 * fingerprint), built from config as the engine builds them, applied to 1M
 * envelopes with a fresh row each (eventRow, as the session actor does).
 * The mix: 10k distinct user agents from browser/OS/version templates, ~3%
 * of them bots; 100k distinct public IPs (IPv4, ~10% IPv6), two users per
 * address; a shop's pages with internal, search, social, webmail and
 * referral referrers; UTM tags and click ids on a few % of landings (click
 * ids make those URLs unique, as they are); users active by Zipf.
 *
 * Events are streamed as the engine sees them: HOT_CHUNK at a time, each
 * chunk's envelopes made (untimed) from a JSON text just parsed — fresh,
 * flat strings with no cached hash, as off the wire — and then enriched
 * (timed) while they are still in the CPU caches, as the session actor does
 * right after the gateway decodes a frame. (Making all 1M envelopes first
 * and enriching them after measured mostly DRAM stalls and the collection
 * of a 2 GB heap: the first touch of each event's strings, ~2.5 µs per
 * event, a cost no event off the wire pays.)
 *
 * Passes: cold (fresh caches, cold JIT — the first events a process sees),
 * warm (the same events again, caches holding the working set), both with
 * the sessions' memos as the engine runs them and both again without; then
 * each enricher alone in a set of its own, cold and warm, less an empty
 * set's pass; and a ceiling: the same loop doing only a bare Map.get per
 * string the caches are keyed by. BENCH_ENRICH_EVENTS changes the event
 * count.
 */

const EVENTS = Number(process.env.BENCH_ENRICH_EVENTS ?? 1_000_000);
const USERS = 200_000;
const UAS = 10_000;
const BOT_SHARE = 0.03;
const IPS = 100_000;
const IPV6_SHARE = 0.1;
const ZIPF_S = 1.0;
const SEED = 20261124;
/** Events made and then enriched together: ~1.5 MB of envelopes, strings and rows, within the last-level cache. */
const HOT_CHUNK = 1_000;
const TARGET_WARM = 500_000;

// ------------------------------------------------------------- user agents

const CHROME_MAJORS = range(109, 132);
const FIREFOX_MAJORS = range(115, 134);
const ANDROID = ['10', '11', '12', '13', '14', '15'] as const;
const ANDROID_MODELS = [
  'K', 'K', 'K', 'SM-G991B', 'SM-S911B', 'SM-A536B', 'SM-A546B', 'SM-S918B', 'SM-A155F', 'SM-G781B', 'Pixel 6', 'Pixel 7', 'Pixel 7a', 'Pixel 8 Pro',
  'Redmi Note 8 Pro', '2201117TG', '23021RAA2Y', 'M2101K6G', 'CPH2207', 'RMX3363', 'moto g(60)', 'motorola edge 30', 'ONEPLUS A6013', 'LE2123',
  'V2109', 'TECNO KI5q', 'Infinix X6816', 'HUAWEI P30 lite', 'ELE-L29', 'SM-T500', 'SM-X200', 'Lenovo TB-X606F',
] as const;
const IOS = ['15_7', '16_1', '16_6_1', '17_0', '17_1_2', '17_3', '17_4_1', '17_5', '17_6_1', '18_0', '18_1', '18_2'] as const;
const MAC_OS = ['10_15_7', '10_15_6', '11_6', '12_6', '13_4', '14_1'] as const;
const WINDOWS = ['Windows NT 10.0; Win64; x64', 'Windows NT 10.0; WOW64', 'Windows NT 6.1; Win64; x64'] as const;
const LINUX = ['X11; Linux x86_64', 'X11; Ubuntu; Linux x86_64', 'X11; CrOS x86_64 14541.0.0'] as const;
const LOCALES = ['en_US', 'en_GB', 'de_DE', 'fr_FR', 'es_ES', 'ru_RU', 'pt_BR', 'it_IT'] as const;

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

function pick<T>(list: readonly T[], rand: () => number): T {
  return list[Math.floor(rand() * list.length)]!;
}

function int(rand: () => number, max: number): number {
  return Math.floor(rand() * max);
}

/** A human UA: families weighted roughly as a European shop sees them. */
function humanUa(rand: () => number): string {
  const chrome = (): string => `${pick(CHROME_MAJORS, rand)}.0.${5000 + int(rand, 1800)}.${int(rand, 200)}`;
  const iosVersion = pick(IOS, rand);
  const r = rand();
  if (r < 0.28) return `Mozilla/5.0 (Linux; Android ${pick(ANDROID, rand)}; ${pick(ANDROID_MODELS, rand)}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/${chrome()} Mobile Safari/537.36`;
  if (r < 0.48) return `Mozilla/5.0 (${pick(WINDOWS, rand)}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/${chrome()} Safari/537.36`;
  if (r < 0.64) return `Mozilla/5.0 (iPhone; CPU iPhone OS ${iosVersion} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/${iosVersion.split('_').slice(0, 2).join('.')} Mobile/15E148 Safari/604.1`;
  if (r < 0.69) return `Mozilla/5.0 (iPad; CPU OS ${iosVersion} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/${iosVersion.split('_').slice(0, 2).join('.')} Mobile/15E148 Safari/604.1`;
  if (r < 0.75) return `Mozilla/5.0 (Macintosh; Intel Mac OS X ${pick(MAC_OS, rand)}) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/${16 + int(rand, 3)}.${int(rand, 7)} Safari/605.1.15`;
  if (r < 0.80) return `Mozilla/5.0 (Macintosh; Intel Mac OS X ${pick(MAC_OS, rand)}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/${chrome()} Safari/537.36`;
  if (r < 0.87) {
    const v = pick(FIREFOX_MAJORS, rand);
    const platform = rand() < 0.7 ? pick(WINDOWS, rand) : rand() < 0.5 ? pick(LINUX, rand) : `Macintosh; Intel Mac OS X ${pick(MAC_OS, rand).replace(/_/g, '.')}`;
    return `Mozilla/5.0 (${platform}; rv:${v}.0) Gecko/20100101 Firefox/${v}.0`;
  }
  if (r < 0.92) {
    const c = chrome();
    return `Mozilla/5.0 (${pick(WINDOWS, rand)}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/${c} Safari/537.36 Edg/${c.split('.')[0]!}.0.${2000 + int(rand, 900)}.${int(rand, 100)}`;
  }
  if (r < 0.95) return `Mozilla/5.0 (Linux; Android ${pick(ANDROID, rand)}; SAMSUNG ${pick(ANDROID_MODELS.slice(3, 11), rand)}) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/${20 + int(rand, 7)}.0 Chrome/${chrome()} Mobile Safari/537.36`;
  if (r < 0.97) {
    return `Mozilla/5.0 (iPhone; CPU iPhone OS ${iosVersion} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Instagram ${280 + int(rand, 60)}.0.0.${10 + int(rand, 30)}.${100 + int(rand, 20)} (iPhone14,${2 + int(rand, 6)}; iOS ${iosVersion}; ${pick(LOCALES, rand)}; en; scale=3.00; 1170x2532; ${500000000 + int(rand, 99999999)})`;
  }
  if (r < 0.99) {
    return `Mozilla/5.0 (iPhone; CPU iPhone OS ${iosVersion} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/${430 + int(rand, 60)}.0.0.${30 + int(rand, 40)}.${100 + int(rand, 20)};FBBV/${600000000 + int(rand, 9999999)};FBDV/iPhone14,${2 + int(rand, 6)};FBMD/iPhone;FBSN/iOS;FBSV/${iosVersion.replace(/_/g, '.')};FBSS/3;FBID/phone;FBLC/${pick(LOCALES, rand)};FBOP/5;FBRV/0]`;
  }
  return `Mozilla/5.0 (${pick(LINUX, rand)}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/${chrome()} Safari/537.36 OPR/${100 + int(rand, 16)}.0.${4000 + int(rand, 900)}.${int(rand, 100)}`;
}

function botUa(rand: () => number): string {
  const chrome = `${pick(CHROME_MAJORS, rand)}.0.${5000 + int(rand, 1800)}.${int(rand, 200)}`;
  const r = rand();
  if (r < 0.25) return `Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/${chrome} Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)`;
  if (r < 0.4) return `Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm) Chrome/${chrome} Safari/537.36`;
  if (r < 0.5) return `Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)${rand() < 0.5 ? '' : ` r${int(rand, 99)}`}`;
  if (r < 0.6) return `Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots) v${int(rand, 99)}`;
  if (r < 0.7) return `Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/${chrome} Safari/537.36`;
  if (r < 0.8) return `python-requests/2.${20 + int(rand, 13)}.${int(rand, 4)}`;
  if (r < 0.9) return `curl/${7 + int(rand, 2)}.${int(rand, 90)}.${int(rand, 3)}`;
  return `Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.${int(rand, 3)}; +https://openai.com/gptbot) Chrome/${chrome}`;
}

/** UAS distinct user agents, BOT_SHARE of them bots: [humans..., bots...]. */
function userAgents(rand: () => number): { humans: string[]; bots: string[] } {
  const bots = new Set<string>();
  const botCount = Math.round(UAS * BOT_SHARE);
  while (bots.size < botCount) bots.add(botUa(rand));
  const humans = new Set<string>();
  while (humans.size < UAS - botCount) humans.add(humanUa(rand));
  return { humans: [...humans], bots: [...bots] };
}

// --------------------------------------------------------------------- IPs

const V6_PREFIXES = ['2a00', '2a01', '2a02', '2a03', '2a0a', '2001', '2003', '2400', '2401', '2405', '2600', '2601', '2603', '2605', '2800', '2804', '2c0f'] as const;

function hex16(rand: () => number): string {
  return int(rand, 0x10000).toString(16);
}

/** IPS distinct public addresses (whatever geoLookupAddress would not skip), IPV6_SHARE of them IPv6. */
function ipAddresses(rand: () => number): string[] {
  const out = new Set<string>();
  const v6 = Math.round(IPS * IPV6_SHARE);
  while (out.size < v6) {
    const p = `${pick(V6_PREFIXES, rand)}:${hex16(rand)}:${hex16(rand)}:${hex16(rand)}`;
    // Privacy addresses (64 random bits) and compressed router-style ones.
    const ip = rand() < 0.7 ? `${p}:${hex16(rand)}:${hex16(rand)}:${hex16(rand)}:${hex16(rand)}` : `${p}::${hex16(rand)}`;
    if (geoLookupAddress(ip) !== '') out.add(ip);
  }
  while (out.size < IPS) {
    const ip = `${1 + int(rand, 223)}.${int(rand, 256)}.${int(rand, 256)}.${int(rand, 256)}`;
    if (geoLookupAddress(ip) !== '') out.add(ip);
  }
  // Interleave the families, so IPv6 users are not just the first ranks.
  const list = [...out];
  const order = permutation(list.length, rand);
  return Array.from(order, (i) => list[i]!);
}

// ----------------------------------------------------------- pages, referrers

const SITE = 'https://shop.example.com';
const CATEGORIES = ['shoes', 'bags', 'watches', 'jackets', 'hats', 'scarves', 'belts', 'socks', 'sale', 'new'] as const;
const ADJECTIVES = ['classic', 'leather', 'canvas', 'merino', 'vintage', 'slim', 'waterproof', 'everyday'] as const;
const SEARCHES = ['running shoes', 'black bag', 'gift for him', 'wool scarf', 'sale', 'winter jacket', 'leather belt', 'kids hats', 'watch strap', 'socks 5 pack'] as const;
const PRODUCTS = 5_000;
const GOOGLES = ['https://www.google.com/', 'https://www.google.de/', 'https://www.google.co.uk/', 'https://www.google.fr/', 'https://www.google.com.br/', 'android-app://com.google.android.googlequicksearchbox/'] as const;
const SOCIAL = ['https://l.facebook.com/', 'https://m.facebook.com/', 'https://www.instagram.com/', 'https://lm.facebook.com/', 'android-app://com.linkedin.android/', 'https://www.reddit.com/', 'https://www.pinterest.de/'] as const;
const WEBMAIL = ['https://mail.google.com/', 'https://outlook.live.com/', 'https://e.mail.ru/', 'https://mail.yahoo.com/'] as const;
const CAMPAIGNS = ['spring_sale', 'black_friday', 'brand', 'retargeting_30d', 'newsletter_w12', 'newsletter_w13', 'summer', 'shoes_generic'] as const;
const ID_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-';

function clickId(rand: () => number, prefix: string, length: number): string {
  let s = prefix;
  while (s.length < length) s += ID_CHARS[int(rand, ID_CHARS.length)]!;
  return s;
}

function pagePath(rand: () => number, productRank: () => number): string {
  const r = rand();
  if (r < 0.15) return '/';
  if (r < 0.35) return `/c/${pick(CATEGORIES, rand)}?page=${1 + int(rand, 5)}`;
  if (r < 0.8) {
    const p = productRank();
    return `/p/${p}-${ADJECTIVES[(p >> 3) % ADJECTIVES.length]!}-${CATEGORIES[p % CATEGORIES.length]!}`;
  }
  if (r < 0.9) return `/search?q=${encodeURIComponent(pick(SEARCHES, rand)).replace(/%20/g, '+')}`;
  if (r < 0.97) return '/cart';
  return `/checkout?step=${1 + int(rand, 3)}`;
}

/** Campaign tags and click ids, as ads and newsletters append them. */
function campaignQuery(rand: () => number): string {
  const campaign = pick(CAMPAIGNS, rand);
  const r = rand();
  if (r < 0.35) return `utm_source=google&utm_medium=cpc&utm_campaign=${campaign}&gclid=${clickId(rand, 'Cj0KCQiA', 91)}`;
  if (r < 0.55) return `utm_source=facebook&utm_medium=paid_social&utm_campaign=${campaign}&fbclid=${clickId(rand, 'IwAR', 62)}`;
  if (r < 0.65) return `gclid=${clickId(rand, 'EAIaIQob', 80)}`;
  if (r < 0.7) return `yclid=${int(rand, 2 ** 30)}${int(rand, 2 ** 30)}`;
  return `utm_source=newsletter&utm_medium=email&utm_campaign=${campaign}&utm_content=${pick(['hero', 'footer', 'product_grid'], rand)}`;
}

function withQuery(path: string, query: string): string {
  return `${SITE}${path}${path.includes('?') ? '&' : '?'}${query}`;
}

/** Events a page view sends after its `page` event. */
const FOLLOW_UP_KEYS = ['in.gen.track.scroll', 'in.gen.track.scroll', 'in.gen.track.click', 'in.gen.track.click', 'in.gen.shop.add_to_cart'] as const;
/** Mean follow-up events per page view: about half the events are page views. */
const FOLLOW_UPS_MEAN = 1;

interface Workload {
  /** Per event: the envelope input, minus receivedAt (set when materialized). */
  readonly inputs: () => Iterable<Omit<EnvelopeInput, 'receivedAt'>>;
  readonly distinct: { uas: number; ips: number; pages: number; referrers: number; users: number };
}

/** A deterministic event stream: the same seed yields the same inputs on every call. */
export function workload(): Workload {
  const rand = mulberry32(SEED);
  const { humans, bots } = userAgents(rand);
  const ips = ipAddresses(rand);
  // Per user: an address (two users per address: a household, an office) and a UA.
  const humanRank = createZipf(humans.length, 1.0, rand);
  const userUa = Array.from({ length: USERS }, () => (rand() < BOT_SHARE ? pick(bots, rand) : humans[humanRank()]!));
  const userIp = Array.from({ length: USERS }, (_, u) => ips[u % IPS]!);
  const userIds = permutation(USERS, rand);
  const streamSeed = Math.floor(rand() * 2 ** 32);

  function* inputs(): Iterable<Omit<EnvelopeInput, 'receivedAt'>> {
    const r = mulberry32(streamSeed);
    const userRank = createZipf(USERS, ZIPF_S, r);
    const productRank = createZipf(PRODUCTS, 0.8, r);
    // Per user, the page view in progress: its URL, referrer and how many
    // more events (scrolls, clicks) it will send; other users' events interleave.
    const views = new Map<number, { url: string; referrer: string; left: number }>();
    for (let i = 0; i < EVENTS; i++) {
      const user = userIds[userRank()]!;
      let view = views.get(user);
      let key: string;
      if (view !== undefined && view.left > 0) {
        view.left--;
        key = pick(FOLLOW_UP_KEYS, r);
      } else {
        const previous = view?.url;
        const x = r();
        let referrer: string;
        let landing = true;
        if (previous !== undefined && x < 0.55) { referrer = previous; landing = false; }
        else if (x < 0.68) referrer = pick(GOOGLES, r);
        else if (x < 0.71) referrer = `https://www.bing.com/search?q=${encodeURIComponent(pick(SEARCHES, r)).replace(/%20/g, '+')}&form=QBLH`;
        else if (x < 0.72) referrer = `https://yandex.ru/search/?text=${encodeURIComponent(pick(SEARCHES, r))}&lr=213`;
        else if (x < 0.77) referrer = r() < 0.3 ? `https://t.co/${clickId(r, '', 10)}` : pick(SOCIAL, r);
        else if (x < 0.78) referrer = pick(WEBMAIL, r);
        else if (x < 0.82) referrer = `https://blog-${int(r, 300)}.example.net/posts/${int(r, 50)}`;
        else referrer = '';
        const path = pagePath(r, productRank);
        // A few % of landings carry campaign tags.
        const url = landing && r() < 0.1 ? withQuery(path, campaignQuery(r)) : `${SITE}${path}`;
        // Follow-up events per view: geometric, mean FOLLOW_UPS_MEAN.
        let left = 0;
        while (r() < FOLLOW_UPS_MEAN / (1 + FOLLOW_UPS_MEAN)) left++;
        view = { url, referrer, left };
        views.set(user, view);
        key = 'in.gen.track.page';
      }
      yield {
        key,
        projectId: 1,
        uid: `u-${user.toString(36)}-${(Math.imul(user, 2654435761) >>> 0).toString(16)}`,
        ip: userIp[user]!,
        userAgent: userUa[user]!,
        pageUrl: view.url,
        pageReferrer: view.referrer,
        pageTitle: 'Shop Example',
      };
    }
  }

  const seen = { uas: new Set<string>(), ips: new Set<string>(), pages: new Set<string>(), referrers: new Set<string>(), users: new Set<string>() };
  for (const e of inputs()) {
    seen.uas.add(e.userAgent); seen.ips.add(e.ip); seen.pages.add(e.pageUrl as string); seen.referrers.add(e.pageReferrer as string); seen.users.add(e.uid as string);
  }
  return { inputs, distinct: { uas: seen.uas.size, ips: seen.ips.size, pages: seen.pages.size, referrers: seen.referrers.size, users: seen.users.size } };
}

// ------------------------------------------------------------------- timing

interface Pass {
  /** Seconds inside the timed loops only. */
  readonly seconds: number;
  /** A checksum of what was written, so the loop cannot be skipped, and a sanity check of the mix. */
  readonly bots: number;
  readonly located: number;
}

/** What is timed over one hot chunk; returns its bots and located counts. */
type ChunkLoop = (envelopes: readonly Envelope[], memos: readonly (EnrichMemo | undefined)[] | undefined) => { bots: number; located: number };

/**
 * Streams the workload through `loop`, HOT_CHUNK events at a time. With
 * `sessions`, each event gets its user's memo (made on first sight), found
 * before the clock starts: in the engine the actor system has already found
 * the user's actor, and that lookup is the actor-system scenario's to measure.
 */
export function stream(w: Workload, loop: ChunkLoop, sessions?: { readonly set: EnricherSet; readonly memos: Map<string, EnrichMemo | undefined> }): Pass {
  let seconds = 0;
  let bots = 0;
  let located = 0;
  let chunk: Omit<EnvelopeInput, 'receivedAt'>[] = [];
  const flush = (): void => {
    const receivedAt = Date.now();
    const inputs = JSON.parse(JSON.stringify(chunk)) as Omit<EnvelopeInput, 'receivedAt'>[];
    const envelopes = inputs.map((input) => createEnvelope({ ...input, receivedAt }));
    const memos = sessions === undefined ? undefined : envelopes.map((e) => {
      if (!sessions.memos.has(e.uid)) sessions.memos.set(e.uid, sessions.set.memo());
      return sessions.memos.get(e.uid);
    });
    const t0 = performance.now();
    const r = loop(envelopes, memos);
    seconds += (performance.now() - t0) / 1000;
    bots += r.bots;
    located += r.located;
    chunk = [];
  };
  for (const input of w.inputs()) {
    chunk.push(input);
    if (chunk.length === HOT_CHUNK) flush();
  }
  if (chunk.length > 0) flush();
  return { seconds, bots, located };
}

/** What the session actor does per event: a fresh row, then the enrichers (with the user's memo when given). */
export function enrichLoop(set: EnricherSet): ChunkLoop {
  return (envelopes, memos) => {
    let bots = 0;
    let located = 0;
    for (let i = 0; i < envelopes.length; i++) {
      const e = envelopes[i]!;
      const row = eventRow(e);
      if (set.apply(e, row, memos?.[i]) !== undefined) throw new Error('a default enricher went asynchronous');
      if (row.is_bot === 1) bots++;
      if (row.geo_country !== undefined) located++;
    }
    return { bots, located };
  };
}

/** The same enricher the engine builds for `c`, kept by type so its cache stats can be read. */
async function buildAlone(c: ResolvedComponent): Promise<Enricher> {
  const o = c.options as Record<string, unknown>;
  switch (c.definition.type) {
    case 'ua': return createUaEnricher({ name: c.name, cacheSize: o.cacheSize as number });
    case 'geo': return openGeoEnricher({ name: c.name, cacheSize: o.cacheSize as number });
    case 'page': return createPageEnricher({ name: c.name, cacheSize: o.cacheSize as number, internalHosts: o.internalHosts as string[] });
    case 'fingerprint': return createFingerprintEnricher({ name: c.name });
    default: throw new Error(`not a default enricher: ${c.definition.type}`);
  }
}

/** Cache hits and all calls so far, for the enrichers that expose them. */
function cacheCounts(e: Enricher, type: string): { hits: number; calls: number } | undefined {
  if (type === 'ua') { const s = (e as UaEnricher).stats(); return { hits: s.hits, calls: s.hits + s.misses + s.uncached }; }
  if (type === 'geo') { const s = (e as GeoEnricher).stats(); return { hits: s.hits, calls: s.hits + s.lookups + s.skipped }; }
  return undefined;
}

/**
 * The ceiling for any cache keyed by these strings: eventRow and one bare
 * Map.get per user agent, IP, page URL and referrer (every key present), on
 * fresh strings — hashing them and finding them is all it does.
 */
function bareLookupLoop(maps: readonly [Map<string, number>, Map<string, number>, Map<string, number>, Map<string, number>]): ChunkLoop {
  const [uas, ips, pages, refs] = maps;
  return (envelopes) => {
    let sum = 0;
    for (let i = 0; i < envelopes.length; i++) {
      const e = envelopes[i]!;
      const row = eventRow(e);
      sum += uas.get(e.userAgent)! + ips.get(e.ip)! + pages.get(e.pageUrl)! + refs.get(e.pageReferrer)! + (row.uid === '' ? 1 : 0);
    }
    if (sum !== 4 * envelopes.length) throw new Error('bare lookups missed a key');
    return { bots: 0, located: 0 };
  };
}

const mb = (bytes: number): number => round(bytes / 2 ** 20, 1);
const us = (seconds: number): number => round((seconds / EVENTS) * 1e6, 3);

export const enrichmentScenario: Scenario = {
  name: 'enrichment',
  description: 'the default enrichers (ua, geo, page, fingerprint) on 1M realistic events',
  async run(progress): Promise<ScenarioResult> {
    // Other work on the machine moves these numbers; say how busy it was.
    const load = loadavg()[0] ?? Number.NaN;
    progress('generating the workload');
    const w = workload();
    progress(`distinct in the stream: ${JSON.stringify(w.distinct)}`);

    const registry = createRegistry();
    registerEnricherTypes(registry);
    const topology = registry.resolve(withDefaultEnrichers(parseConfig({})));
    const set = await createEnrichers(topology);
    const empty = createEnricherSet([]);
    const metrics: Metric[] = [];

    // As the engine runs it: each user's session memo lets a pure enricher
    // skip events whose inputs it saw last for that user (a page view's
    // scrolls and clicks, a user's UA and address). Cold: fresh caches and
    // sessions; warm: the same users again, sessions still live.
    const sessions = { set, memos: new Map<string, EnrichMemo | undefined>() };
    progress('cold pass');
    const cold = stream(w, enrichLoop(set), sessions);
    progress('warm pass');
    const warm = stream(w, enrichLoop(set), sessions);
    const stats = set.stats();
    for (const k of ['failures', 'timeouts', 'stray'] as const) {
      const n = Object.values(stats[k]).reduce((a, b) => a + b, 0);
      if (n !== 0) throw new Error(`enrichers reported ${n} ${k}: ${JSON.stringify(stats[k])}`);
    }
    const reuse = Object.keys(stats.runs).map((name) => {
      const reused = stats.reused[name] ?? 0;
      return `${name} ${round((reused / (reused + (stats.runs[name] ?? 0))) * 100, 1)}%`;
    }).join(', ');
    sessions.memos.clear();

    // The caches alone, no session memos: every event runs every enricher.
    const cachesOnly = await createEnrichers(topology);
    progress('caches only, cold');
    const coldNoMemo = stream(w, enrichLoop(cachesOnly));
    progress('caches only, warm');
    const warmNoMemo = stream(w, enrichLoop(cachesOnly));

    metrics.push(
      {
        name: 'events/s, warm caches (second pass)', value: round(EVENTS / warm.seconds), unit: 'events/s', target: { op: '>=', value: TARGET_WARM },
        note: `as the engine runs it, with each user's session memo; events served from the memo: ${reuse}`,
      },
      { name: 'events/s, cold (first pass, fresh caches and sessions)', value: round(EVENTS / cold.seconds), unit: 'events/s', note: 'includes JIT warm-up' },
      { name: 'µs per event, warm, all enrichers + eventRow', value: us(warm.seconds), unit: 'µs' },
      { name: 'events/s, warm caches, no session memo', value: round(EVENTS / warmNoMemo.seconds), unit: 'events/s', note: `every event runs every enricher; cold ${round(EVENTS / coldNoMemo.seconds)} events/s` },
    );

    // Each enricher alone, in a set of its own (so the runtime's match and
    // merge are counted), with fresh caches and no memo, less an empty
    // set's pass (eventRow, the key match, the loop) run right after: on a
    // shared machine the baseline drifts from pass to pass.
    for (const c of topology.enrichers) {
      const enricher = await buildAlone(c);
      const alone = createEnricherSet([{ enricher, keys: c.keys }]);
      progress(`${c.name} alone: cold`);
      const coldAlone = stream(w, enrichLoop(alone)).seconds;
      const afterCold = cacheCounts(enricher, c.definition.type);
      progress(`${c.name} alone: warm`);
      const warmAlone = stream(w, enrichLoop(alone)).seconds;
      const afterWarm = cacheCounts(enricher, c.definition.type);
      const base = stream(w, enrichLoop(empty)).seconds;
      let hits = '';
      if (afterCold !== undefined && afterWarm !== undefined) {
        const warmRate = (afterWarm.hits - afterCold.hits) / (afterWarm.calls - afterCold.calls);
        hits = `; cache hits warm ${round(warmRate * 100, 1)}%, cold ${round((afterCold.hits / afterCold.calls) * 100, 1)}%`;
      }
      metrics.push({
        name: `µs per event, ${c.name} alone, warm`,
        value: us(warmAlone - base),
        unit: 'µs',
        note: `cold ${us(coldAlone - base)} µs; pass with eventRow + loop ${us(warmAlone)} µs, empty set ${us(base)} µs${hits}`,
      });
    }

    progress('ceiling: bare Map lookups');
    const maps = [new Map<string, number>(), new Map<string, number>(), new Map<string, number>(), new Map<string, number>()] as const;
    for (const e of w.inputs()) { maps[0].set(e.userAgent, 1); maps[1].set(e.ip, 1); maps[2].set(e.pageUrl as string, 1); maps[3].set(e.pageReferrer as string, 1); }
    const bare = stream(w, bareLookupLoop(maps)).seconds;
    metrics.push({
      name: 'ceiling: eventRow + 4 bare Map.get per event',
      value: round(EVENTS / bare),
      unit: 'events/s',
      note: `${us(bare)} µs; ua, ip, page and referrer looked up in Maps holding every key, no enrichment: what string-keyed caches cost at best here`,
    });

    metrics.push(
      { name: 'bots (is_bot = 1)', value: round((warm.bots / EVENTS) * 100, 2), unit: '% of events' },
      { name: 'located by geo', value: round((warm.located / EVENTS) * 100, 2), unit: '% of events' },
    );

    // Collect until the heap stops shrinking (one full collection right
    // after the passes does not free everything).
    let heap = Number.POSITIVE_INFINITY;
    for (let i = 0; i < 5 && heapUsed() < heap * 0.99; i++) heap = process.memoryUsage().heapUsed;
    const mem = process.memoryUsage();
    metrics.push(
      { name: 'heap used after', value: mb(mem.heapUsed), unit: 'MiB', note: 'after GC; the full set\'s and the lone enrichers\' caches live' },
      { name: 'RSS after', value: mb(mem.rss), unit: 'MiB', note: `external ${mb(mem.external)} MiB (the geo database)` },
    );

    return {
      scenario: 'enrichment',
      description: this.description,
      params: {
        events: EVENTS, loadAverageAtStart: round(load, 2), users: USERS, zipfS: ZIPF_S, seed: SEED, uaPool: UAS, botShareOfPool: BOT_SHARE, ipPool: IPS, ipv6Share: IPV6_SHARE,
        distinctUas: w.distinct.uas, distinctIps: w.distinct.ips, distinctPages: w.distinct.pages, distinctReferrers: w.distinct.referrers, distinctUsers: w.distinct.users,
      },
      metrics,
    };
  },
};
