import { isIP } from 'node:net';
import { z } from 'zod';
import { SYSTEM_DEFAULTS } from '../system/index.js';

/**
 * The one configuration schema. Every object is strict (unknown keys are
 * errors, so a typo never silently falls back to a default), every field has
 * its default here, and the parsed result is frozen.
 */

export const DEFAULT_PORT = 8080;
export const DEFAULT_HOST = '0.0.0.0';
export const DEFAULT_DATA_DIR = './data';
export const DEFAULT_DATABASE = 'flowstat';
export const DEFAULT_PROJECT_ID = 1;
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 30_000;
export const DEFAULT_STATE_STORE = 'disk' as const;

const positiveInt = z.number().int().positive();

/** Gateway defaults (issue #3): limits a production front door needs. */
export const GATEWAY_DEFAULTS = Object.freeze({
  maxBodyBytes: 64 * 1024,
  maxFrameBytes: 64 * 1024,
  /** Frames above this are not even buffered: the connection is closed (1009). */
  hardFrameBytes: 1024 * 1024,
  maxBatch: 500,
  maxDepth: 16,
  ratePerSecond: 5_000,
  rateBurst: 10_000,
  idleTimeoutSec: 120,
  maxBackpressureBytes: 1024 * 1024,
  maxBadFrames: 20,
  badFrameWindowMs: 10_000,
  cookieName: 'flowstat_uid',
  cookieMaxAgeDays: 365,
});

const hostPattern = z.string().regex(/^(\*\.)?[a-z0-9.-]+(:\d+)?$/i, 'must be a host name, optionally starting with "*."');

export const gatewaySchema = z.strictObject({
  /** Which server implementation: uWebSockets.js, the ws + node:http fallback, or auto (uws when it loads). */
  server: z.enum(['auto', 'uws', 'ws']).default('auto'),
  /** Service aliases in paths, e.g. { t4k: track } so /t4k/page is in.gen.track.page. */
  pathAliases: z.record(z.string().regex(/^[a-z0-9_-]{1,64}$/), z.string().regex(/^[a-z0-9_-]{1,64}$/)).default({}),
  limits: z.strictObject({
    maxBodyBytes: positiveInt.max(16 * 1024 * 1024).default(GATEWAY_DEFAULTS.maxBodyBytes),
    maxFrameBytes: positiveInt.max(16 * 1024 * 1024).default(GATEWAY_DEFAULTS.maxFrameBytes),
    maxBatch: positiveInt.max(100_000).default(GATEWAY_DEFAULTS.maxBatch),
    maxDepth: positiveInt.max(256).default(GATEWAY_DEFAULTS.maxDepth),
    /** Events per second per client IP; 0 turns rate limiting off. */
    ratePerSecond: z.number().int().min(0).default(GATEWAY_DEFAULTS.ratePerSecond),
    rateBurst: positiveInt.default(GATEWAY_DEFAULTS.rateBurst),
    /** Close WebSockets silent for this long (uWS rounds to multiples of 4). */
    idleTimeoutSec: z.number().int().min(0).max(960).default(GATEWAY_DEFAULTS.idleTimeoutSec),
    /** Close a WebSocket whose unread replies exceed this. */
    maxBackpressureBytes: positiveInt.default(GATEWAY_DEFAULTS.maxBackpressureBytes),
    /** Close a WebSocket after this many bad frames within badFrameWindowMs. */
    maxBadFrames: positiveInt.default(GATEWAY_DEFAULTS.maxBadFrames),
    badFrameWindowMs: positiveInt.default(GATEWAY_DEFAULTS.badFrameWindowMs),
  }).prefault({}),
  cors: z.strictObject({
    /** Origins allowed with credentials (cookies), e.g. https://shop.example.com. */
    origins: z.array(z.string().regex(/^https?:\/\/[^/\s]+$/, 'must be scheme://host[:port] with no path')).default([]),
    /** Also answer any other origin with `*` and no credentials. */
    open: z.boolean().default(true),
  }).prefault({}),
  cookie: z.strictObject({
    name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/).default(GATEWAY_DEFAULTS.cookieName),
    /** Cookie domain; never taken from request headers. Unset: host-only cookie. */
    domain: z.string().regex(/^\.?[a-z0-9.-]+$/i).optional(),
    maxAgeDays: positiveInt.max(3650).default(GATEWAY_DEFAULTS.cookieMaxAgeDays),
  }).prefault({}),
  /** Peers whose X-Forwarded-For / X-Real-IP / X-Forwarded-Proto are believed (IPs or CIDRs). */
  trustedProxies: z.array(z.string().refine(isIpOrCidr, 'must be an IP address or a CIDR such as 10.0.0.0/8')).default([]),
  /** Hosts a redirect may go to: exact, or "*.example.com" for subdomains. */
  redirectHosts: z.array(hostPattern).default([]),
  /** Cookie-sync (GET /sync/{partner}): each partner's URL template, filled with our uid. */
  cookieSync: z.strictObject({
    /** Our own public base URL, for `{back}`; never taken from the Host header. */
    publicUrl: z.url({ protocol: /^https?$/ }).refine((u) => !/[?#]/.test(u), 'must be scheme://host[/path] with no query or fragment').optional(),
    partners: z.record(
      z.string().regex(/^[a-z0-9_-]{1,64}$/, 'must be 1-64 characters of [a-z0-9_-]'),
      z.strictObject({ url: z.string().max(2048).refine(isSyncTemplate, 'must be an https URL with {uid} (and optionally {back}) outside the host, and no other {placeholders}') }),
    ).default({}),
  }).prefault({}).refine(
    (c) => c.publicUrl !== undefined || Object.values(c.partners).every((p) => !p.url.includes('{back}')),
    { message: 'publicUrl is required when a partner URL uses {back}', path: ['publicUrl'] },
  ),
  /** SDK protocol endpoints (gateway/protocols/, docs/protocols.md): which project each vendor key feeds. */
  protocols: z.strictObject({
    segment: z.strictObject({
      /** Segment write key → project id. Events with a key not listed are answered as Segment would (200) and kept in dead_letters. */
      writeKeys: z.record(z.string().min(1).max(256), z.number().int().min(0).max(2 ** 31 - 1)).default({}),
    }).prefault({}),
    snowplow: z.strictObject({
      /** Tracker app id (`aid`) → project id. An event whose aid is not listed goes to defaultProjectId, or without one is answered as the collector would (200) and kept in dead_letters. */
      appIds: z.record(z.string().min(1).max(256), z.number().int().min(0).max(2 ** 31 - 1)).default({}),
      defaultProjectId: z.number().int().min(0).max(2 ** 31 - 1).optional(),
    }).prefault({}),
    countly: z.strictObject({
      /** Countly app key → project id, and the app's checksum salt (requests must then carry checksum256 or checksum, as Countly requires). */
      apps: z.record(z.string().min(1).max(256), z.strictObject({
        projectId: z.number().int().min(0).max(2 ** 31 - 1),
        salt: z.string().min(1).max(256).optional(),
      })).default({}),
    }).prefault({}),
    ga4: z.strictObject({
      /**
       * GA4 stream (a web stream's measurement_id, an app stream's firebase_app_id) → its Measurement Protocol
       * API secret and project. A request whose id and secret do not match is answered as GA4 would (204) and kept in dead_letters.
       */
      streams: z.record(z.string().min(1).max(256), z.strictObject({
        apiSecret: z.string().min(1).max(256),
        projectId: z.number().int().min(0).max(2 ** 31 - 1),
      })).default({}),
    }).prefault({}),
  }).prefault({}),
}).prefault({});

/** Storage defaults (issue #4). */
export const STORAGE_DEFAULTS = Object.freeze({
  durability: 'wal' as const,
  batchRows: 50_000,
  batchBytes: 32 * 1024 * 1024,
  flushMs: 1_000,
  spoolMaxBytes: 1024 * 1024 * 1024,
  walSegmentBytes: 64 * 1024 * 1024,
});

export const storageSchema = z.strictObject({
  /** wal: a reply is sent once the event is fsync'd locally (kill -9 loses nothing acknowledged); memory: replies at once. */
  durability: z.enum(['wal', 'memory']).default(STORAGE_DEFAULTS.durability),
  batchRows: positiveInt.max(1_000_000).default(STORAGE_DEFAULTS.batchRows),
  batchBytes: positiveInt.default(STORAGE_DEFAULTS.batchBytes),
  flushMs: positiveInt.max(600_000).default(STORAGE_DEFAULTS.flushMs),
  /** Past this much spooled data the gateway sheds load (503) instead of taking more. */
  spoolMaxBytes: positiveInt.default(STORAGE_DEFAULTS.spoolMaxBytes),
  walSegmentBytes: positiveInt.default(STORAGE_DEFAULTS.walSegmentBytes),
  /** Insert format for a ClickHouse server (chDB always takes JSONEachRow). */
  format: z.enum(['RowBinary', 'JSONEachRow']).default('RowBinary'),
}).prefault({});

export const enrichmentSchema = z.strictObject({
  /** With no `enrichers` listed: run ua, geo, page and fingerprint on every event. */
  defaults: z.boolean().default(true),
  /** Applied after the geo lookup, before storage: zero the last IPv4 octet / IPv6 beyond /48, drop it, or keep it. */
  ipAnonymization: z.enum(['zero', 'drop', 'none']).default('zero'),
  /** Bots (is_bot = 1) are stored and flagged, or acknowledged and not stored. */
  bots: z.enum(['keep', 'drop']).default('keep'),
}).prefault({});

/** An IANA time zone name this runtime knows (Intl), e.g. "Europe/Berlin". */
const timeZone = z.string().refine((tz) => {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}, 'must be an IANA time zone name such as "UTC" or "Europe/Berlin"');

export const SESSION_DEFAULTS = Object.freeze({
  idleMs: 30 * 60_000,
  maxMs: 24 * 60 * 60_000,
  splitAtMidnight: false,
  timeZone: 'UTC',
  splitOnCampaign: true,
  pageKeys: ['in.gen.track.page', 'in.gen.*.pageview', 'in.gen.*.page_view'],
  dedupIds: 16,
});

export const sessionsSchema = z.strictObject({
  /** A user idle this long (by event time) starts a new session with the next event. */
  idleMs: positiveInt.default(SESSION_DEFAULTS.idleMs),
  /** No session runs longer: the event after this starts a new one. */
  maxMs: positiveInt.default(SESSION_DEFAULTS.maxMs),
  /** Start a new session at midnight in the project's time zone. */
  splitAtMidnight: z.boolean().default(SESSION_DEFAULTS.splitAtMidnight),
  /** The time zone for midnight splits, unless `projectTimeZones` names the project. */
  timeZone: timeZone.default(SESSION_DEFAULTS.timeZone),
  /** Project id → time zone. */
  projectTimeZones: z.record(z.string().regex(/^\d{1,10}$/, 'must be a project id'), timeZone).default({}),
  /** An event whose campaign (utm_source/medium/campaign or click id) differs from the session's starts a new session. */
  splitOnCampaign: z.boolean().default(SESSION_DEFAULTS.splitOnCampaign),
  /** Key patterns of page views (counted as pages, their URL is the landing / exit page). */
  pageKeys: z.array(z.string().min(1)).min(1).default([...SESSION_DEFAULTS.pageKeys]),
  /** How many recent client-supplied event ids each user remembers to acknowledge repeats without processing them again (0: off). */
  dedupIds: z.number().int().min(0).max(256).default(SESSION_DEFAULTS.dedupIds),
}).prefault({});

export const WEBHOOK_DEFAULTS = Object.freeze({
  timeoutMs: 5_000,
  maxAttempts: 6,
  backoffMs: 500,
  maxBackoffMs: 60_000,
  maxPending: 10_000,
  concurrency: 32,
});

/** Delivery of webhook actions (actors/actions/webhooks.ts). */
export const webhooksSchema = z.strictObject({
  /** One request's timeout. */
  timeoutMs: z.number().int().positive().max(60_000).default(WEBHOOK_DEFAULTS.timeoutMs),
  /** Attempts in all, the first included. */
  maxAttempts: z.number().int().min(1).max(20).default(WEBHOOK_DEFAULTS.maxAttempts),
  /** Backoff before the second attempt; doubles for each further one (with full jitter). */
  backoffMs: z.number().int().positive().max(600_000).default(WEBHOOK_DEFAULTS.backoffMs),
  maxBackoffMs: z.number().int().positive().max(3_600_000).default(WEBHOOK_DEFAULTS.maxBackoffMs),
  /** Deliveries waiting or in flight; beyond this a new one fails at once (dead-lettered). */
  maxPending: z.number().int().positive().max(1_000_000).default(WEBHOOK_DEFAULTS.maxPending),
  /** Requests in flight at once. */
  concurrency: z.number().int().positive().max(1_024).default(WEBHOOK_DEFAULTS.concurrency),
  /** Signs each body (X-Flowstat-Signature: sha256=HMAC). */
  secret: z.string().min(16, 'must be at least 16 characters').optional(),
}).prefault({});


export const componentSchema = z.strictObject({
  /** Instance name, unique per kind; defaults to the type. */
  name: z.string().regex(/^[a-z0-9_-]{1,64}$/, 'must be 1-64 characters of [a-z0-9_-]').optional(),
  /** The registered component type, e.g. "ua" or "clickhouse". */
  type: z.string().min(1),
  /** Key patterns this component subscribes to. */
  keys: z.array(z.string()).min(1).default(['**']),
  /** Enrichers: how long the event waits for this one. */
  timeoutMs: positiveInt.max(60_000).optional(),
  /** Type-specific options, validated by the component's own schema. */
  options: z.record(z.string(), z.unknown()).default({}),
});

export const configSchema = z.strictObject({
  server: z.strictObject({
    host: z.string().min(1).default(DEFAULT_HOST),
    port: z.number().int().min(0).max(65_535).default(DEFAULT_PORT),
  }).prefault({}),
  gateway: gatewaySchema,
  storage: storageSchema,
  enrichment: enrichmentSchema,
  sessions: sessionsSchema,
  dataDir: z.string().min(1).default(DEFAULT_DATA_DIR),
  defaultProjectId: z.number().int().min(0).max(2 ** 31 - 1).default(DEFAULT_PROJECT_ID),
  clickhouse: z.strictObject({
    /** When unset, the embedded chDB store under dataDir is used. */
    url: z.url({ protocol: /^https?$/ }).optional(),
    user: z.string().default('default'),
    password: z.string().default(''),
    database: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, 'must be a plain identifier').default(DEFAULT_DATABASE),
  }).prefault({}),
  /** Bearer token for /api/v1 and admin endpoints; unset disables them. */
  adminToken: z.string().min(16, 'must be at least 16 characters').optional(),
  log: z.strictObject({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  }).prefault({}),
  actors: z.strictObject({
    /**
     * Worker threads the session actors run on (docs/threads.md). 0: in the
     * gateway's thread. N >= 1: users are spread over N threads by hash(uid),
     * each with its own enrichers, write-ahead log and sinks; the gateway
     * and the store stay on the main thread.
     */
    threads: z.number().int().min(0).max(64).default(0),
    shards: positiveInt.max(256).default(SYSTEM_DEFAULTS.shards),
    idleTimeoutMs: positiveInt.default(SYSTEM_DEFAULTS.idleTimeoutMs),
    tickMs: positiveInt.max(60_000).default(SYSTEM_DEFAULTS.tickMs),
    maxLiveActors: positiveInt.default(SYSTEM_DEFAULTS.maxLiveActors),
    mailboxCapacity: positiveInt.default(SYSTEM_DEFAULTS.mailboxCapacity),
    maxQueued: positiveInt.default(SYSTEM_DEFAULTS.maxQueued),
    receiveTimeoutMs: z.number().int().min(0).default(SYSTEM_DEFAULTS.receiveTimeoutMs),
    /** Where passivated users' state goes: disk (lmdb under `${dataDir}/state`, survives restarts) or memory (lost on exit). */
    stateStore: z.enum(['disk', 'memory']).default(DEFAULT_STATE_STORE),
  }).prefault({}),
  shutdown: z.strictObject({
    /** After this, shutdown stops waiting for drains and flushes and exits non-zero. */
    timeoutMs: positiveInt.default(DEFAULT_SHUTDOWN_TIMEOUT_MS),
  }).prefault({}),
  /** Funnels (docs/funnels.md): validated by the funnel library's own schema when the engine starts. */
  funnels: z.array(z.record(z.string(), z.unknown())).default([]),
  /** Churn score model (docs/funnels.md): validated by the churn library's own schema when the engine starts. */
  churn: z.record(z.string(), z.unknown()).default({}),
  /** Delivery of webhook actions (docs/funnels.md): timeouts, retries with backoff, signing. */
  webhooks: webhooksSchema,
  enrichers: z.array(componentSchema).default([]),
  handlers: z.array(componentSchema).default([]),
  sinks: z.array(componentSchema).default([]),
});

export type Config = z.output<typeof configSchema>;
export type ComponentConfig = z.output<typeof componentSchema>;
export type ComponentKind = 'enrichers' | 'handlers' | 'sinks';

/**
 * A cookie-sync URL template: https only, the placeholders {uid} (required)
 * and {back}, and neither inside the scheme or host — filled with two
 * different values, the origin must not change, so no uid can steer where the
 * browser goes.
 */
function isSyncTemplate(template: string): boolean {
  const placeholders: string[] = template.match(/\{[^}]*\}/g) ?? [];
  if (!placeholders.includes('{uid}') || placeholders.some((p) => p !== '{uid}' && p !== '{back}')) return false;
  try {
    const a = new URL(template.replaceAll('{uid}', 'a').replaceAll('{back}', 'a'));
    const b = new URL(template.replaceAll('{uid}', 'b').replaceAll('{back}', 'b'));
    return a.protocol === 'https:' && a.origin === b.origin && a.username === '' && a.password === '';
  } catch {
    return false;
  }
}

function isIpOrCidr(value: string): boolean {
  const [ip, bits, extra] = value.split('/');
  if (extra !== undefined || ip === undefined) return false;
  const family = isIP(ip);
  if (family === 0) return false;
  if (bits === undefined) return true;
  const n = /^\d{1,3}$/.test(bits) ? Number(bits) : -1;
  return n >= 0 && n <= (family === 4 ? 32 : 128);
}
