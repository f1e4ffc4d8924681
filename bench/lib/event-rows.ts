import type { Row } from '../../sinks/schema/types.js';
import { mulberry32 } from './random.js';

/**
 * Rows for the events table that look like real traffic after enrichment:
 * long user agents and URLs (every 13th with a 2.5 kB search query), unicode
 * titles and cities, UTM and click ids, nested props — and, unless told
 * otherwise, the awkward values an encoder gets wrong first (AWKWARD).
 * Seeded: the same seed gives the same rows. Used by the sink benchmark and,
 * through test/support/sink-rows.ts, by the encoder tests.
 */

const pick = <T>(list: readonly T[], rand: () => number): T => list[Math.floor(rand() * list.length)] as T;

function uuid(rand: () => number, upper = false): string {
  let hex = '';
  for (let i = 0; i < 32; i++) hex += Math.floor(rand() * 16).toString(16);
  const s = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20)}`;
  return upper ? s.toUpperCase() : s;
}

/** Strings that break naive escaping or length prefixes. */
export const AWKWARD = [
  '',
  'Café ☕ – Über uns',
  '日本語のページ 👨‍👩‍👧 family, 👍🏽 thumbs',
  'quote " and \' apostrophe',
  'back\\slash \\" \\\\n not a newline',
  'a\\b', // short: a raw backslash would read as the \b escape
  'C:\\temp\\new',
  '\\',
  'new\nline\r\ncr\ttab',
  'control \u0001\u0008\u000b\u000c\u001f end',
  'separators \u2028 \u2029 and DEL \u007f',
  'lone \ud800 high, lone \udc00 low: both become U+FFFD',
  '</script><script>alert(1)</script>',
  'x'.repeat(42),
  'x'.repeat(43),
  'x'.repeat(127),
  'x'.repeat(128),
  'é'.repeat(42), // 84 bytes, 1-byte varint
  'é'.repeat(64), // 128 bytes: the varint needs 2 bytes although the units fit in 1
  'ü'.repeat(43),
  '😀'.repeat(21), // 42 units, 84 bytes
  '😀'.repeat(40),
  'y'.repeat(16_384), // 3-byte varint
  'z'.repeat(70_000),
] as const;

const BROWSERS = [
  ['Chrome', '124.0.6367.91', 'Windows', '10', 'desktop', '', '', 'Blink',
    'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.91 Safari/537.36'],
  ['Mobile Safari', '17.4.1', 'iOS', '17.4.1', 'mobile', 'Apple', 'iPhone', 'WebKit',
    'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1'],
  ['Firefox', '125.0', 'Linux', '', 'desktop', '', '', 'Gecko',
    'Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0'],
  ['Samsung Internet', '24.0', 'Android', '14', 'mobile', 'Samsung', 'SM-S918B', 'Blink',
    'Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36'],
] as const;
const GEO = [
  ['DE', 'BE', 'Berlin', 52.52, 13.405, 'Europe/Berlin'],
  ['FR', 'IDF', 'Paris', 48.8566, 2.3522, 'Europe/Paris'],
  ['JP', '13', '東京', 35.6762, 139.6503, 'Asia/Tokyo'],
  ['BR', 'SP', 'São Paulo', -23.5505, -46.6333, 'America/Sao_Paulo'],
  ['', '', '', 0, 0, ''],
] as const;
const TITLES = ['Leather Bag — Shop Example', 'Über uns · Café', 'Sale! 50 % off "everything"', '靴 | ショップ', 'Winter 🧥 jackets', ''] as const;
const SOURCES = [
  ['google', 'cpc', 'spring_sale', 'leather bag', 'ad-3', 'gclid', 'paid'],
  ['newsletter', 'email', 'weekly-2024-05', '', '', '', 'email'],
  ['', '', '', '', '', '', 'direct'],
  ['twitter', 'social', '', '', '', '', 'social'],
] as const;

export const DAY = 86_400_000;
/** 2024-05-14T09:30:00Z. */
export const BASE_TS = 1_715_679_000_000;

/**
 * `n` events; every 97th leaves most columns out and, unless `awkward` is
 * false (plain traffic, for measurements), every 50th carries an AWKWARD string.
 */
export function eventRows(n: number, seed = 1, awkward = true): Row[] {
  const rand = mulberry32(seed);
  const rows: Row[] = [];
  for (let i = 0; i < n; i++) {
    const [browser, bver, os, osver, device, vendor, model, engine, ua] = pick(BROWSERS, rand);
    const [country, region, city, lat, lon, tz] = pick(GEO, rand);
    const [usrc, umed, ucamp, uterm, ucont, clickType, sourceType] = pick(SOURCES, rand);
    const ts = BASE_TS + Math.floor(rand() * 3 * DAY) + (i % 7 === 0 ? 0.75 : 0);
    const eventId = uuid(rand, i % 10 === 3);
    if (i % 97 === 5) {
      // Sparse: only the id and times; everything else (event_date too) takes its default.
      rows.push({ event_id: eventId, project_id: 7, ts, received_at: ts + 15 });
      continue;
    }
    const path = `/p/${Math.floor(rand() * 5000)}-${pick(['leather-bag', 'schuh-größe-42', 'café', 'a%20b'], rand)}`;
    const query = i % 13 === 0 ? `?q=${'long-search-term-'.repeat(150)}&utm=1` : `?ref=nav&i=${i}`;
    const odd = awkward && i % 50 === 0 ? AWKWARD[(i / 50) % AWKWARD.length] ?? '' : null;
    const props: Record<string, unknown> = {
      plan: pick(['free', 'pro', 'team'], rand),
      items: Math.floor(rand() * 5),
      logged_in: rand() < 0.5,
      cart: { total: Math.round(rand() * 10_000) / 100, currency: 'EUR', skus: ['A-1', 'B-2'], meta: { gift: true, note: 'für "Oma"\n' } },
      nothing: null,
      skipped: undefined,
      'key with "quotes" and \\': 'v\t😀',
    };
    if (odd !== null) props.awkward = odd;
    rows.push({
      event_id: eventId,
      project_id: 1 + (i % 3),
      event_date: ts,
      key: 'in.web.track.page_view',
      channel: 'web',
      service: 'track',
      name: i % 4 === 0 ? 'add_to_cart' : 'page_view',
      uid: `u-${Math.floor(rand() * 1e6).toString(36)}`,
      user_id: i % 5 === 0 ? `user-${i}` : '',
      session_id: `s-${Math.floor(rand() * 1e9).toString(36)}`,
      seq: i % 40,
      ts,
      received_at: ts + 120 + Math.floor(rand() * 500),
      ip: `203.0.113.${i % 256}`,
      ua,
      ua_browser: browser,
      ua_browser_version: bver,
      ua_os: os,
      ua_os_version: osver,
      ua_device_type: device,
      ua_device_vendor: vendor,
      ua_device_model: model,
      ua_engine: engine,
      geo_country: country,
      geo_region: region,
      geo_city: city,
      geo_lat: lat,
      geo_lon: lon,
      geo_tz: tz,
      page_url: `https://shop.example${path}${query}`,
      page_host: 'shop.example',
      page_path: path,
      page_referrer: i % 3 === 0 ? 'https://www.google.com/search?q=leather+bag&hl=de' : '',
      page_title: odd ?? pick(TITLES, rand),
      utm_source: usrc,
      utm_medium: umed,
      utm_campaign: ucamp,
      utm_term: uterm,
      utm_content: ucont,
      click_id: clickType === 'gclid' ? `Cj0KCQjw${Math.floor(rand() * 1e12).toString(36)}` : '',
      click_id_type: clickType,
      source_type: sourceType,
      is_bot: i % 31 === 0 ? true : 0,
      fpid: Math.floor(rand() * 2 ** 52).toString(16).padStart(13, '0'),
      props,
    });
  }
  return rows;
}
