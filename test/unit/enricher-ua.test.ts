import { describe, expect, it } from 'vitest';
import { createEnvelope, type Envelope } from '../../engine/envelope/index.js';
import { FlowError } from '../../engine/errors/index.js';
import {
  UA_CACHE_KEY_MAX,
  UA_COLUMNS,
  createUaEnricher,
  parseUserAgent,
} from '../../actors/enrichers/ua.js';

const BASE = createEnvelope({
  key: 'in.web.shop.page_view',
  projectId: 1,
  uid: 'u-1',
  receivedAt: 1_717_200_000_000,
  ip: '203.0.113.7',
  userAgent: '',
});

/** A real envelope with `ua` as its user agent (not cut to the envelope's 1 KB cap). */
function envelopeWith(ua: string): Envelope {
  return { ...BASE, userAgent: ua };
}

/** Printable, space-bearing noise from a fixed seed: no browser, OS or bot token in it. */
function garbage(length: number): string {
  let seed = 20_240_601;
  const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ;/()._-';
  let out = '';
  while (out.length < length) {
    seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0;
    out += alphabet[Math.floor((seed / 2 ** 32) * alphabet.length)];
  }
  return out;
}

type Row = [
  browser: string, version: string, major: string,
  os: string, osVersion: string,
  deviceType: string, vendor: string, model: string,
  engine: string, isBot: 0 | 1,
];

function patch(r: Row): Record<string, string | number> {
  return Object.fromEntries(UA_COLUMNS.map((c, i) => [c, r[i] as string | number]));
}

// Real UAs as browsers and crawlers send them. Columns in UA_COLUMNS order.
const CASES: [label: string, ua: string, expected: Row][] = [
  ['Chrome on Windows',
    'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
    ['Chrome', '124.0.0.0', '124', 'Windows', '10', 'desktop', '', '', 'Blink', 0]],
  ['Safari on macOS',
    'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15',
    ['Safari', '17.4.1', '17', 'Mac OS', '10.15.7', 'desktop', 'Apple', 'Macintosh', 'WebKit', 0]],
  ['Firefox on Linux',
    'Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0',
    ['Firefox', '125.0', '125', 'Linux', '', 'desktop', '', '', 'Gecko', 0]],
  ['Firefox on Ubuntu (distro wins over Linux, no version)',
    'Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0',
    ['Firefox', '125.0', '125', 'Ubuntu', '', 'desktop', '', '', 'Gecko', 0]],
  ['Edge on Windows',
    'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51',
    ['Edge', '124.0.2478.51', '124', 'Windows', '10', 'desktop', '', '', 'Blink', 0]],
  ['Chrome on ChromeOS',
    'Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
    ['Chrome', '124.0.0.0', '124', 'Chromium OS', '14541.0.0', 'desktop', '', '', 'Blink', 0]],
  ['Mobile Safari on iPhone',
    'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1',
    ['Mobile Safari', '17.4.1', '17', 'iOS', '17.4.1', 'mobile', 'Apple', 'iPhone', 'WebKit', 0]],
  ['Chrome on iPhone (CriOS)',
    'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1',
    ['Chrome', '124.0.6367.88', '124', 'iOS', '17.4', 'mobile', 'Apple', 'iPhone', 'WebKit', 0]],
  ['Chrome on a Samsung phone',
    'Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36',
    ['Chrome', '124.0.6367.82', '124', 'Android', '13', 'mobile', 'Samsung', 'SM-S918B', 'Blink', 0]],
  ['Chrome on a Pixel (model known, vendor not)',
    'Mozilla/5.0 (Linux; Android 14; Pixel 8 Pro) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36',
    ['Chrome', '124.0.6367.82', '124', 'Android', '14', 'mobile', '', 'Pixel 8 Pro', 'Blink', 0]],
  ['Chrome reduced UA on Android ("K" is no model)',
    'Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36',
    ['Chrome', '124.0.0.0', '124', 'Android', '10', 'mobile', '', '', 'Blink', 0]],
  ['Firefox on Android',
    'Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0',
    ['Firefox', '125.0', '125', 'Android', '14', 'mobile', '', '', 'Gecko', 0]],
  ['Safari on iPad',
    'Mozilla/5.0 (iPad; CPU OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1',
    ['Mobile Safari', '17.4.1', '17', 'iOS', '17.4.1', 'tablet', 'Apple', 'iPad', 'WebKit', 0]],
  ['Chrome on a Samsung Galaxy Tab',
    'Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Safari/537.36',
    ['Chrome', '124.0.6367.82', '124', 'Android', '13', 'tablet', 'Samsung', 'SM-X710', 'Blink', 0]],
  ['Samsung Internet',
    'Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36',
    ['Samsung Internet', '24.0', '24', 'Android', '14', 'mobile', 'Samsung', 'SM-S921B', 'Blink', 0]],
  ['Facebook in-app on iOS (FBAN/FBAV)',
    'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/459.0.0.37.110;FBBV/589017296;FBDV/iPhone15,2;FBMD/iPhone;FBSN/iOS;FBSV/17.4;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5;FBRV/591070467]',
    ['Facebook', '459.0.0.37.110', '459', 'iOS', '17.4', 'mobile', 'Apple', 'iPhone', 'WebKit', 0]],
  ['Facebook in-app on Android (FB_IAB, wv)',
    'Mozilla/5.0 (Linux; Android 14; SM-S911B Build/UP1A.231005.007; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/124.0.6367.82 Mobile Safari/537.36 [FB_IAB/FB4A;FBAV/462.0.0.45.85;]',
    ['Facebook', '462.0.0.45.85', '462', 'Android', '14', 'mobile', 'Samsung', 'SM-S911B', 'Blink', 0]],
  ['Instagram in-app on iOS',
    'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Instagram 329.0.3.29.120 (iPhone14,5; iOS 17_4_1; en_US; en; scale=3.00; 1170x2532; 594153522)',
    ['Instagram', '329.0.3.29.120', '329', 'iOS', '17.4.1', 'mobile', 'Apple', 'iPhone', 'WebKit', 0]],
  ['Instagram in-app on Android',
    'Mozilla/5.0 (Linux; Android 13; SM-A536B Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/124.0.6367.82 Mobile Safari/537.36 Instagram 330.0.0.40.92 Android (33/13; 450dpi; 1080x2177; samsung; SM-A536B; a53x; s5e8825; en_GB; 596227522)',
    ['Instagram', '330.0.0.40.92', '330', 'Android', '13', 'mobile', 'Samsung', 'SM-A536B', 'Blink', 0]],
  ['Android WebView ("; wv)")',
    'Mozilla/5.0 (Linux; Android 12; Pixel 6 Build/SD1A.210817.036; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/94.0.4606.71 Mobile Safari/537.36',
    ['Chrome WebView', '94.0.4606.71', '94', 'Android', '12', 'mobile', 'Google', 'Pixel 6', 'Blink', 0]],
  ['Samsung Tizen smart TV',
    'Mozilla/5.0 (SMART-TV; LINUX; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) 76.0.3809.146/6.0 TV Safari/537.36',
    ['Safari', '', '', 'Tizen', '6.0', 'smarttv', '', '', 'WebKit', 0]],
  ['LG webOS smart TV',
    'Mozilla/5.0 (Web0S; Linux/SmartTV) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/79.0.3945.79 Safari/537.36 WebAppManager',
    ['Chrome', '79.0.3945.79', '79', 'webOS', 'TV', 'smarttv', '', '', 'Blink', 0]],
  ['PlayStation 5',
    'Mozilla/5.0 (PlayStation; PlayStation 5/2.26) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.0 Safari/605.1.15',
    ['Safari', '13.0', '13', 'PlayStation', '5', 'console', 'Sony', 'PlayStation 5', 'WebKit', 0]],
  ['Galaxy Watch',
    'Mozilla/5.0 (Linux; Android 11; SM-R890) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36',
    ['Chrome', '124.0.0.0', '124', 'Android', '11', 'wearable', 'Samsung', 'SM-R890', 'Blink', 0]],
  ['Googlebot',
    'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)',
    ['', '', '', '', '', 'bot', '', '', '', 1]],
  ['Googlebot Smartphone (bot wins over the phone it mimics)',
    'Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.118 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)',
    ['Chrome', '124.0.6367.118', '124', 'Android', '6.0.1', 'bot', 'LG', 'Nexus 5', 'Blink', 1]],
  ['bingbot',
    'Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)',
    ['', '', '', '', '', 'bot', '', '', '', 1]],
  ['curl', 'curl/8.5.0', ['', '', '', '', '', 'bot', '', '', '', 1]],
  ['python-requests', 'python-requests/2.31.0', ['', '', '', '', '', 'bot', '', '', '', 1]],
  ['HeadlessChrome',
    'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.6367.60 Safari/537.36',
    ['Chrome Headless', '124.0.6367.60', '124', 'Linux', '', 'bot', '', '', 'Blink', 1]],
  ['AhrefsBot',
    'Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)',
    ['', '', '', '', '', 'bot', '', '', '', 1]],
  ['GPTBot',
    'Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.0; +https://openai.com/gptbot)',
    ['WebKit', '537.36', '537', '', '', 'bot', '', '', 'WebKit', 1]],
  ['empty', '', ['', '', '', '', '', '', '', '', '', 0]],
  ['blank', '   ', ['', '', '', '', '', '', '', '', '', 0]],
  // Nothing recognisable, not a bot: by the rule "no device type → desktop".
  ['10 KB of garbage', garbage(10_240), ['', '', '', '', '', 'desktop', '', '', '', 0]],
];

describe('enricher ua - parsing', () => {
  it.each(CASES)('enricher ua - %s', (_label, ua, expected) => {
    expect(parseUserAgent(ua)).toEqual(patch(expected));
    expect(createUaEnricher({}).enrich(envelopeWith(ua))).toEqual(patch(expected));
  });

  it('enricher ua - every patch has exactly the declared columns, and is frozen', () => {
    const enricher = createUaEnricher({});
    for (const [, ua] of CASES) {
      const p = enricher.enrich(envelopeWith(ua));
      expect(Object.keys(p)).toEqual([...UA_COLUMNS]);
      expect(Object.isFrozen(p)).toBe(true);
    }
  });

  it('enricher ua - declares its contract', () => {
    const enricher = createUaEnricher({ name: 'ua-main' });
    expect(enricher.name).toBe('ua-main');
    expect(createUaEnricher({}).name).toBe('ua');
    expect(enricher.namespace).toBe('ua');
    expect(enricher.reads).toEqual(['userAgent']);
    expect(enricher.columns).toEqual([...UA_COLUMNS]);
    for (const c of enricher.columns) expect(c === 'is_bot' || c.startsWith('ua_')).toBe(true);
    // Synchronous: a patch, not a promise.
    expect(enricher.enrich(envelopeWith(CASES[0]![1]))).not.toBeInstanceOf(Promise);
  });

  // The latency bound on long UAs rests on ua-parser 1.x reading only the first
  // 500 chars (its UA_MAX_LENGTH); if an upgrade drops that, this fails.
  it('enricher ua - ua-parser reads only the first 500 chars of a long UA', () => {
    const ua = `${'x'.repeat(500)} Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/124.0.0.0 Safari/537.36`;
    expect(parseUserAgent(ua)).toMatchObject({ ua_browser: '', ua_os: '', is_bot: 0 });
  });

  it('enricher ua - a bot token past ua-parser\'s 500-char window is still seen', () => {
    const ua = `${'x'.repeat(600)} Googlebot/2.1`;
    expect(parseUserAgent(ua)).toMatchObject({ ua_device_type: 'bot', is_bot: 1 });
  });

  it('enricher ua - rejects a bad cacheSize with a config error', () => {
    for (const cacheSize of [-1, 1.5, Number.NaN]) {
      let caught: unknown;
      try {
        createUaEnricher({ cacheSize });
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(FlowError);
      expect((caught as FlowError).code).toBe('FLOW_ERR_CONFIG_INVALID');
    }
  });
});

describe('enricher ua - cache', () => {
  const chrome = CASES[0]![1];

  it('enricher ua - the same UA returns the same frozen object from the cache', () => {
    const enricher = createUaEnricher({});
    const first = enricher.enrich(envelopeWith(chrome));
    const second = enricher.enrich(envelopeWith(chrome));
    expect(second).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
    expect(enricher.stats()).toEqual({ hits: 1, misses: 1, uncached: 0, size: 1 });
  });

  it('enricher ua - UAs longer than the key limit are parsed every time and never cached', () => {
    const enricher = createUaEnricher({});
    const long = garbage(UA_CACHE_KEY_MAX + 1);
    const atLimit = garbage(UA_CACHE_KEY_MAX);
    const a = enricher.enrich(envelopeWith(long));
    const b = enricher.enrich(envelopeWith(long));
    expect(b).not.toBe(a);
    expect(b).toEqual(a);
    enricher.enrich(envelopeWith(atLimit));
    expect(enricher.enrich(envelopeWith(atLimit))).toBe(enricher.enrich(envelopeWith(atLimit)));
    expect(enricher.stats()).toEqual({ hits: 2, misses: 1, uncached: 2, size: 1 });
  });

  it('enricher ua - the cache holds at most cacheSize entries, evicting the least recent', () => {
    const enricher = createUaEnricher({ cacheSize: 2 });
    const [a, b, c] = [CASES[0]![1], CASES[1]![1], CASES[2]![1]];
    const pa = enricher.enrich(envelopeWith(a));
    enricher.enrich(envelopeWith(b));
    enricher.enrich(envelopeWith(a)); // a is now the most recent
    enricher.enrich(envelopeWith(c)); // evicts b
    expect(enricher.stats().size).toBe(2);
    expect(enricher.enrich(envelopeWith(a))).toBe(pa);
    const before = enricher.stats().misses;
    enricher.enrich(envelopeWith(b));
    expect(enricher.stats().misses).toBe(before + 1);
  });

  it('enricher ua - cacheSize 0 disables the cache', () => {
    const enricher = createUaEnricher({ cacheSize: 0 });
    const a = enricher.enrich(envelopeWith(chrome));
    expect(enricher.enrich(envelopeWith(chrome))).not.toBe(a);
    expect(enricher.stats()).toEqual({ hits: 0, misses: 0, uncached: 2, size: 0 });
  });

  // Printed, not asserted: timings vary by machine and load.
  it('enricher ua - measures uncached parse vs cache hit (printed only)', () => {
    const uas = CASES.map(([, ua]) => ua).filter((ua) => ua.trim().length > 0 && ua.length <= UA_CACHE_KEY_MAX);
    const envelopes = uas.map(envelopeWith);
    const rounds = 100;
    for (const ua of uas) parseUserAgent(ua); // warm up the JIT
    let t = process.hrtime.bigint();
    for (let r = 0; r < rounds; r++) for (const ua of uas) parseUserAgent(ua);
    const uncachedUs = Number(process.hrtime.bigint() - t) / 1000 / (rounds * uas.length);

    const enricher = createUaEnricher({});
    for (const env of envelopes) enricher.enrich(env);
    const hitRounds = 5_000;
    t = process.hrtime.bigint();
    for (let r = 0; r < hitRounds; r++) for (const env of envelopes) enricher.enrich(env);
    const hitUs = Number(process.hrtime.bigint() - t) / 1000 / (hitRounds * envelopes.length);

    const junk = garbage(10_240);
    t = process.hrtime.bigint();
    for (let r = 0; r < rounds; r++) parseUserAgent(junk);
    const junkUs = Number(process.hrtime.bigint() - t) / 1000 / rounds;

    console.log(
      `[enricher ua] ${uas.length} real UAs: uncached ${uncachedUs.toFixed(2)} µs/parse, ` +
        `cache hit ${hitUs.toFixed(3)} µs; 10 KB garbage (never cached) ${junkUs.toFixed(1)} µs/parse`,
    );
    expect(enricher.stats().hits).toBe(hitRounds * envelopes.length);
  });
});
