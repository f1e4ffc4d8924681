import { geoLookupAddress } from '../../actors/enrichers/geo.js';
import type { EnvelopeInput } from '../../engine/index.js';
import { createZipf, mulberry32, permutation } from './random.js';

/**
 * Realistic web traffic for the benchmarks, seeded: user agents from
 * browser/OS/version templates (a few % bots), public IPv4 and IPv6
 * addresses that the geo database places, a shop's pages with internal,
 * search, social, webmail and referral referrers, UTM tags and click ids on
 * a few % of landings, and users active by Zipf — each page view followed by
 * a few scrolls, clicks and shop events. The enrichment and end-to-end
 * scenarios both draw from it.
 */

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

/** `count` distinct user agents, `botShare` of them bots. */
export function userAgents(rand: () => number, count: number, botShare: number): { humans: string[]; bots: string[] } {
  const bots = new Set<string>();
  const botCount = Math.round(count * botShare);
  while (bots.size < botCount) bots.add(botUa(rand));
  const humans = new Set<string>();
  while (humans.size < count - botCount) humans.add(humanUa(rand));
  return { humans: [...humans], bots: [...bots] };
}

// --------------------------------------------------------------------- IPs

const V6_PREFIXES = ['2a00', '2a01', '2a02', '2a03', '2a0a', '2001', '2003', '2400', '2401', '2405', '2600', '2601', '2603', '2605', '2800', '2804', '2c0f'] as const;

function hex16(rand: () => number): string {
  return int(rand, 0x10000).toString(16);
}

/** `count` distinct public addresses (whatever geoLookupAddress would not skip), `v6Share` of them IPv6. */
export function ipAddresses(rand: () => number, count: number, v6Share: number): string[] {
  const out = new Set<string>();
  const v6 = Math.round(count * v6Share);
  while (out.size < v6) {
    const p = `${pick(V6_PREFIXES, rand)}:${hex16(rand)}:${hex16(rand)}:${hex16(rand)}`;
    // Privacy addresses (64 random bits) and compressed router-style ones.
    const ip = rand() < 0.7 ? `${p}:${hex16(rand)}:${hex16(rand)}:${hex16(rand)}:${hex16(rand)}` : `${p}::${hex16(rand)}`;
    if (geoLookupAddress(ip) !== '') out.add(ip);
  }
  while (out.size < count) {
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

/** Events a page view sends after its `page` event, by default (picked uniformly: repeats weigh). */
export const FOLLOW_UP_KEYS: readonly string[] = ['in.gen.track.scroll', 'in.gen.track.scroll', 'in.gen.track.click', 'in.gen.track.click', 'in.gen.shop.add_to_cart'];
/** Mean follow-up events per page view: about half the events are page views. */
const FOLLOW_UPS_MEAN = 1;

export interface WorkloadOptions {
  readonly events: number;
  readonly users: number;
  /** Distinct user agents, `botShare` of them bots. */
  readonly uas: number;
  readonly botShare: number;
  /** Distinct public addresses, `ipv6Share` of them IPv6. */
  readonly ips: number;
  readonly ipv6Share: number;
  /** Zipf exponent of user activity. */
  readonly zipfS: number;
  readonly seed: number;
  readonly followUpKeys?: readonly string[];
}

export interface Workload {
  /** Per event: the envelope input, minus receivedAt (set when materialized). */
  readonly inputs: () => Iterable<Omit<EnvelopeInput, 'receivedAt'>>;
  readonly distinct: { uas: number; ips: number; pages: number; referrers: number; users: number };
}

/** A deterministic event stream: the same seed yields the same inputs on every call. */
export function workload(o: WorkloadOptions): Workload {
  const { events: EVENTS, users: USERS, ips: IPS, zipfS: ZIPF_S } = o;
  const followUps = o.followUpKeys ?? FOLLOW_UP_KEYS;
  const rand = mulberry32(o.seed);
  const { humans, bots } = userAgents(rand, o.uas, o.botShare);
  const ips = ipAddresses(rand, IPS, o.ipv6Share);
  // Per user: an address (two users per address: a household, an office) and a UA.
  const humanRank = createZipf(humans.length, 1.0, rand);
  const userUa = Array.from({ length: USERS }, () => (rand() < o.botShare ? pick(bots, rand) : humans[humanRank()]!));
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
        key = pick(followUps, r);
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
