import { isbot } from 'isbot';
import { Lru } from './lru.js';
import UAParser from 'ua-parser-js';
import type { Envelope } from '../../engine/envelope/index.js';
import { ENVELOPE_LIMITS } from '../../engine/envelope/index.js';
import { createError } from '../../engine/errors/index.js';
import type { EnrichPatch, Enricher } from './types.js';

/**
 * The user-agent enricher: browser, OS, device and engine from ua-parser-js
 * 1.x (MIT; 2.x is AGPL and must not be used), and a bot flag from isbot.
 * Synchronous. Every patch carries all of UA_COLUMNS, so rows have one shape:
 * a field the parser could not tell is '' (never missing).
 *
 * - Empty (or blank) UA: every string column '', `ua_device_type` '' and
 *   `is_bot` 0 — no UA tells us nothing, not "desktop".
 * - Bot (isbot): `ua_device_type` 'bot', `is_bot` 1; the other columns keep
 *   what the parser saw (Googlebot Smartphone still reads Chrome/Android).
 * - Otherwise `ua_device_type` is ua-parser's mobile / tablet / smarttv /
 *   console / wearable / embedded, or 'desktop' when it reports none.
 *
 * Patches are frozen and cached per UA string (LRU): a hit returns the same
 * object, no allocation. UAs longer than UA_CACHE_KEY_MAX are parsed every
 * time and never cached, so junk cannot evict real entries or pin big keys.
 * A long UA stays bounded: ua-parser 1.x parses only the first 500 chars
 * (its UA_MAX_LENGTH) and isbot is given at most ENVELOPE_LIMITS.userAgentMax.
 */

export const UA_COLUMNS = Object.freeze([
  'ua_browser',
  'ua_browser_version',
  'ua_browser_major',
  'ua_os',
  'ua_os_version',
  'ua_device_type',
  'ua_device_vendor',
  'ua_device_model',
  'ua_engine',
  'is_bot',
] as const);

export const DEFAULT_UA_CACHE_SIZE = 10_000;
/** Real UAs are well under this (an Instagram in-app UA is ~300 chars). */
export const UA_CACHE_KEY_MAX = 512;
/**
 * isbot scans the whole string (~140 µs on 10 KB of padding); the envelope
 * already caps UAs at this length, so the cut only bites hand-built envelopes.
 */
const BOT_SCAN_MAX = ENVELOPE_LIMITS.userAgentMax;

export interface UaEnricherOptions {
  /** Instance name; default 'ua'. */
  name?: string;
  /** LRU entries (patches); default DEFAULT_UA_CACHE_SIZE; 0 disables the cache. */
  cacheSize?: number;
}

export interface UaCacheStats {
  readonly hits: number;
  readonly misses: number;
  /** UAs too long to cache (or every call, when the cache is disabled). */
  readonly uncached: number;
  readonly size: number;
}

export interface UaEnricher extends Enricher {
  enrich(envelope: Envelope): EnrichPatch;
  stats(): UaCacheStats;
}

const EMPTY_UA_PATCH: EnrichPatch = Object.freeze({
  ua_browser: '',
  ua_browser_version: '',
  ua_browser_major: '',
  ua_os: '',
  ua_os_version: '',
  ua_device_type: '',
  ua_device_vendor: '',
  ua_device_model: '',
  ua_engine: '',
  is_bot: 0,
});

/**
 * Chrome's reduced UA (Chrome 110+ on Android) sends "Android 10; K" for every
 * device; ua-parser reports the model as "K", which would top any model chart.
 */
const REDUCED_UA_MODEL = 'K';

// One parser, reused: parsing is synchronous, so no two calls overlap. Calling
// the four getters skips getResult()'s CPU pass, which we do not store.
const parser = new UAParser();

/** Parses one UA, uncached. The result is frozen and has every UA_COLUMNS key. */
export function parseUserAgent(ua: string): EnrichPatch {
  if (ua.length === 0 || ua.trim().length === 0) return EMPTY_UA_PATCH;
  parser.setUA(ua);
  const browser = parser.getBrowser();
  const os = parser.getOS();
  const device = parser.getDevice();
  const engine = parser.getEngine();
  const bot = isbot(ua.length > BOT_SCAN_MAX ? ua.slice(0, BOT_SCAN_MAX) : ua);
  const model = device.model === REDUCED_UA_MODEL && os.name === 'Android' ? '' : (device.model ?? '');
  return Object.freeze({
    ua_browser: browser.name ?? '',
    ua_browser_version: browser.version ?? '',
    ua_browser_major: browser.major ?? '',
    ua_os: os.name ?? '',
    ua_os_version: os.version ?? '',
    ua_device_type: bot ? 'bot' : (device.type ?? 'desktop'),
    ua_device_vendor: device.vendor ?? '',
    ua_device_model: model,
    ua_engine: engine.name ?? '',
    is_bot: bot ? 1 : 0,
  });
}

export function createUaEnricher(options: UaEnricherOptions = {}): UaEnricher {
  const name = options.name ?? 'ua';
  const cacheSize = options.cacheSize ?? DEFAULT_UA_CACHE_SIZE;
  if (!Number.isSafeInteger(cacheSize) || cacheSize < 0) {
    throw createError('FLOW_ERR_CONFIG_INVALID', { details: `enricher "${name}": cacheSize must be an integer >= 0, got ${String(cacheSize)}` });
  }
  const cache = cacheSize > 0 ? new Lru<string, EnrichPatch>(cacheSize) : undefined;
  let hits = 0;
  let misses = 0;
  let uncached = 0;

  return {
    name,
    namespace: 'ua',
    columns: UA_COLUMNS,
    reads: Object.freeze(['userAgent'] as const),
    timeoutMs: 0,
    pure: true,
    enrich(envelope: Envelope): EnrichPatch {
      const ua = envelope.userAgent;
      if (cache === undefined || ua.length > UA_CACHE_KEY_MAX) {
        uncached++;
        return parseUserAgent(ua);
      }
      const cached = cache.get(ua);
      if (cached !== undefined) {
        hits++;
        return cached;
      }
      misses++;
      const patch = parseUserAgent(ua);
      cache.set(ua, patch);
      return patch;
    },
    stats(): UaCacheStats {
      return { hits, misses, uncached, size: cache?.size ?? 0 };
    },
  };
}
