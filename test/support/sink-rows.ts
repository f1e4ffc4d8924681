import type { Column, Row, TableDef } from '../../sinks/schema/types.js';

/**
 * Rows for the sink encoder tests and their measurements: events that look
 * like real traffic (long user agents and URLs, unicode titles, nested props)
 * plus the awkward values an encoder gets wrong first (quotes, backslashes,
 * control characters, emoji, lone surrogates, varint length boundaries,
 * missing columns, uint64 beyond 2^53). Seeded: the same seed gives the same rows.
 *
 * Also what ClickHouse should give back for each row through
 * `readBackSelect` … FORMAT JSONEachRow, worked out from the value rules
 * independently of the encoders.
 */

export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

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

const DAY = 86_400_000;
/** 2024-05-14T09:30:00Z. */
const BASE_TS = 1_715_679_000_000;

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

export function sessionRows(n: number, seed = 2): Row[] {
  const rand = mulberry32(seed);
  const rows: Row[] = [];
  for (let i = 0; i < n; i++) {
    const start = BASE_TS + Math.floor(rand() * 10 * DAY);
    const duration = Math.floor(rand() * 3_600_000);
    rows.push({
      session_id: `s-${i}-${Math.floor(rand() * 1e9).toString(36)}`,
      project_id: 1 + (i % 2),
      start_date: start,
      uid: `u-${i}`,
      user_id: i % 2 === 0 ? `user-${i}` : undefined,
      started_at: start,
      ended_at: start + duration,
      duration_ms: duration,
      events: 1 + (i % 30),
      pages: i % 10,
      landing_page: `https://shop.example/l/${i}?utm_source=x`,
      exit_page: AWKWARD[i % 9] ?? '',
      source_type: 'search',
      utm_source: 'google',
      utm_medium: 'organic',
      utm_campaign: '',
      referrer: 'https://www.google.com/',
      device_type: 'desktop',
      browser: 'Firefox',
      os: 'Linux',
      geo_country: 'DE',
      geo_city: 'Köln',
      is_bot: 0,
      // Versions beyond 2^53 as bigint and as decimal text, one at the very top.
      version: i === 0 ? 18_446_744_073_709_551_615n : i % 3 === 0 ? `${9_007_199_254_740_993n + BigInt(i)}` : start * 1000 + i,
    });
  }
  return rows;
}

export function identityRows(n: number, seed = 3): Row[] {
  const rand = mulberry32(seed);
  const rows: Row[] = [];
  for (let i = 0; i < n; i++) {
    const kind = pick(['identify', 'alias', 'partner'], rand);
    rows.push({
      project_id: 1,
      kind,
      uid: `u-${i}`,
      partner: kind === 'partner' ? 'adnet' : '',
      external_id: `ext-${i}-${Math.floor(rand() * 1e9)}`,
      traits: i % 4 === 0 ? undefined : { email: `a${i}@example.com`, name: 'Zoë "Z" O\'Neil', age: 30 + (i % 40), tags: ['vip', 'β'], address: { city: 'Zürich', zip: '8001' } },
      ts: BASE_TS + i,
      version: BigInt(BASE_TS + i) * 1000n,
    });
  }
  return rows;
}

export function deadLetterRows(n: number, seed = 4): Row[] {
  const rand = mulberry32(seed);
  const rows: Row[] = [];
  for (let i = 0; i < n; i++) {
    const at = BASE_TS + Math.floor(rand() * DAY);
    rows.push({
      at,
      at_date: at,
      project_id: i,
      source: i % 2 === 0 ? 'gateway' : 'sink:events',
      code: 'FLOW_ERR_BAD_EVENT',
      reason: `row ${i}: ${AWKWARD[i % 9] ?? ''}`,
      payload: JSON.stringify({ n: i, raw: '{"broken": tr', text: AWKWARD[i % AWKWARD.length] }),
    });
  }
  return rows;
}

/**
 * A SELECT list that reads every column back in a form JSON can hold exactly
 * on both backends: 64-bit integers and ms timestamps as decimal text.
 */
export function readBackSelect(table: TableDef, modern: boolean): string {
  return table.columns.map((c) => {
    if (c.type === 'uint64') return `toString(${c.name}) AS ${c.name}`;
    if (c.type === 'ts_ms') return modern ? `toString(toUnixTimestamp64Milli(${c.name})) AS ${c.name}` : `toString(${c.name}) AS ${c.name}`;
    return c.name;
  }).join(', ');
}

/** What a stored `row` reads back as through readBackSelect … FORMAT JSONEachRow. */
export function expectedReadBack(table: TableDef, row: Row, modern: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const c of table.columns) out[c.name] = expectedValue(c, row[c.name], modern);
  return out;
}

const wellFormed = (s: string): string => (s as unknown as { toWellFormed(): string }).toWellFormed();

function expectedValue(c: Column, v: unknown, modern: boolean): unknown {
  switch (c.type) {
    case 'uuid': return typeof v === 'string' ? v.toLowerCase() : '00000000-0000-0000-0000-000000000000';
    case 'string': case 'lc_string': case 'text': return v === undefined || v === null ? '' : wellFormed(String(v));
    case 'uint8': case 'uint16': case 'uint32': return typeof v === 'boolean' ? Number(v) : Math.trunc(Number(v ?? 0));
    case 'uint64': return typeof v === 'number' ? String(Math.trunc(v)) : String(v ?? 0);
    case 'float64': return v ?? 0;
    case 'ts_ms': return String(Math.trunc(Number(v ?? 0)));
    case 'date': {
      const days = Math.floor(Number(v ?? 0) / DAY);
      // 18.16 prints day 0 as the "zero date".
      if (days === 0 && !modern) return '0000-00-00';
      return new Date(days * DAY).toISOString().slice(0, 10);
    }
    case 'props': {
      const props = (v ?? {}) as Record<string, unknown>;
      if (!modern) return wellFormed(JSON.stringify(props));
      const map: Record<string, string> = {};
      for (const [k, x] of Object.entries(props)) {
        if (x === undefined) continue;
        map[wellFormed(k)] = wellFormed(typeof x === 'string' ? x : JSON.stringify(x));
      }
      return map;
    }
  }
}

/** The key that identifies a test row of `table` (unique in the generated rows). */
export function rowKey(table: TableDef, row: Record<string, unknown>): string {
  switch (table.name) {
    case 'events': return String(row.event_id).toLowerCase();
    case 'sessions': return String(row.session_id);
    case 'identities': return String(row.external_id);
    case 'dead_letters': return String(row.project_id);
  }
}
