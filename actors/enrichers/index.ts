/**
 * actors/enrichers — what the session actor adds to each event before it is
 * stored: user agent and bots, geo, page / referrer / campaign / source,
 * fingerprint, and remote (HTTP) enrichers. Promises: enrichers matching an
 * event's key run in parallel; local ones in-process from caches; each
 * writes only its declared columns; one that fails or overruns is counted
 * and skipped, the event goes on.
 */
import { z } from 'zod';
import type { ComponentConfig, Config, Registry, ResolvedComponent, Topology } from '../../engine/index.js';
import { openGeoEnricher } from './geo.js';
import { createFingerprintEnricher } from './fingerprint.js';
import { createPageEnricher } from './page.js';
import { createRemoteEnricher } from './remote.js';
import { createEnricherSet, type EnricherEntry, type EnricherSet } from './runtime.js';
import type { Enricher } from './types.js';
import { createUaEnricher } from './ua.js';

export { createEnricherSet } from './runtime.js';
export type { EnricherSet, EnricherEntry, EnrichmentStats, EnrichMemo } from './runtime.js';
export type { Enricher, EnrichPatch } from './types.js';
export { anonymizeIp } from './ip-anonymize.js';

const ENVELOPE_FIELDS = ['id', 'projectId', 'key', 'channel', 'service', 'name', 'uid', 'userId', 'ts', 'receivedAt', 'ip', 'userAgent', 'pageUrl', 'pageReferrer', 'pageTitle', 'data'] as const;

const cacheSize = z.number().int().min(0).max(10_000_000);

export const enricherOptionSchemas = {
  ua: z.strictObject({ cacheSize: cacheSize.default(10_000) }),
  geo: z.strictObject({
    /** A MaxMind GeoIP2 / GeoLite2 City mmdb; default: the shipped DB-IP City Lite. */
    databasePath: z.string().min(1).optional(),
    cacheSize: cacheSize.default(100_000),
  }),
  page: z.strictObject({
    /** Hosts that count as this site (besides the page's own host and its subdomains). */
    internalHosts: z.array(z.string().min(1)).default([]),
    cacheSize: cacheSize.default(10_000),
  }),
  fingerprint: z.strictObject({}),
  remote: z.strictObject({
    url: z.url({ protocol: /^https?$/ }),
    namespace: z.string().regex(/^[a-z][a-z0-9_]{0,31}$/),
    /** Events columns the service may set. */
    columns: z.array(z.string().regex(/^[a-z][a-z0-9_]{0,63}$/)).min(1),
    reads: z.array(z.enum(ENVELOPE_FIELDS)).min(1),
    headers: z.record(z.string(), z.string()).default({}),
  }),
};

const NAMESPACES: Record<string, string> = { ua: 'ua', geo: 'geo', page: 'page', fingerprint: 'fp' };

export function registerEnricherTypes(registry: Registry): void {
  const describe: Record<keyof typeof enricherOptionSchemas, string> = {
    ua: 'browser, OS, device and bot flag from the user agent (ua-parser-js 1.x, isbot), LRU-cached',
    geo: 'country, region, city, coordinates and time zone from the IP (DB-IP City Lite or a MaxMind City database)',
    page: 'page host/path/query, referrer, UTM tags, click ids and the traffic source',
    fingerprint: 'fpid: a fast hash of IP and user agent',
    remote: 'an HTTP service that returns columns for the event, within a timeout',
  };
  for (const type of Object.keys(enricherOptionSchemas) as (keyof typeof enricherOptionSchemas)[]) {
    registry.register({
      kind: 'enrichers',
      type,
      description: describe[type],
      options: enricherOptionSchemas[type] as z.ZodType<unknown>,
      ...(NAMESPACES[type] !== undefined ? { namespace: NAMESPACES[type] } : {}),
    });
  }
}

/** The enrichers that run when the config lists none (enrichment.defaults). */
export const DEFAULT_ENRICHERS: readonly ComponentConfig[] = [
  { type: 'ua', keys: ['in.**'], options: {} },
  { type: 'geo', keys: ['in.**'], options: {} },
  { type: 'page', keys: ['in.**'], options: {} },
  { type: 'fingerprint', keys: ['in.**'], options: {} },
];

const DEFAULT_REMOTE_TIMEOUT_MS = 200;

async function build(c: ResolvedComponent): Promise<Enricher> {
  const type = c.definition.type as keyof typeof enricherOptionSchemas;
  switch (type) {
    case 'ua': {
      const o = c.options as z.output<typeof enricherOptionSchemas.ua>;
      return createUaEnricher({ name: c.name, cacheSize: o.cacheSize });
    }
    case 'geo': {
      const o = c.options as z.output<typeof enricherOptionSchemas.geo>;
      return openGeoEnricher({ name: c.name, cacheSize: o.cacheSize, ...(o.databasePath !== undefined ? { databasePath: o.databasePath } : {}) });
    }
    case 'page': {
      const o = c.options as z.output<typeof enricherOptionSchemas.page>;
      return createPageEnricher({ name: c.name, internalHosts: o.internalHosts, cacheSize: o.cacheSize });
    }
    case 'fingerprint':
      return createFingerprintEnricher({ name: c.name });
    case 'remote': {
      const o = c.options as z.output<typeof enricherOptionSchemas.remote>;
      return createRemoteEnricher({
        name: c.name, url: o.url, namespace: o.namespace, columns: o.columns, reads: o.reads,
        headers: o.headers, timeoutMs: c.timeoutMs ?? DEFAULT_REMOTE_TIMEOUT_MS,
      });
    }
  }
}

/** Opens the configured enrichers (the geo database loads here, before the port opens). */
export async function createEnrichers(topology: Pick<Topology, 'enrichers'>): Promise<EnricherSet> {
  const entries: EnricherEntry[] = [];
  for (const c of topology.enrichers) entries.push({ enricher: await build(c), keys: c.keys });
  return createEnricherSet(entries);
}

/** The config with the default enrichers filled in when it lists none and defaults are on. */
export function withDefaultEnrichers(config: Config): Config {
  if (config.enrichers.length > 0 || !config.enrichment.defaults) return config;
  return { ...config, enrichers: DEFAULT_ENRICHERS.map((e) => ({ ...e, keys: [...e.keys], options: { ...e.options } })) };
}
