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

const positiveInt = z.number().int().positive();

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
    shards: positiveInt.max(256).default(SYSTEM_DEFAULTS.shards),
    idleTimeoutMs: positiveInt.default(SYSTEM_DEFAULTS.idleTimeoutMs),
    tickMs: positiveInt.max(60_000).default(SYSTEM_DEFAULTS.tickMs),
    maxLiveActors: positiveInt.default(SYSTEM_DEFAULTS.maxLiveActors),
    mailboxCapacity: positiveInt.default(SYSTEM_DEFAULTS.mailboxCapacity),
    maxQueued: positiveInt.default(SYSTEM_DEFAULTS.maxQueued),
    receiveTimeoutMs: z.number().int().min(0).default(SYSTEM_DEFAULTS.receiveTimeoutMs),
  }).prefault({}),
  shutdown: z.strictObject({
    /** After this, shutdown stops waiting for drains and flushes and exits non-zero. */
    timeoutMs: positiveInt.default(DEFAULT_SHUTDOWN_TIMEOUT_MS),
  }).prefault({}),
  enrichers: z.array(componentSchema).default([]),
  handlers: z.array(componentSchema).default([]),
  sinks: z.array(componentSchema).default([]),
});

export type Config = z.output<typeof configSchema>;
export type ComponentConfig = z.output<typeof componentSchema>;
export type ComponentKind = 'enrichers' | 'handlers' | 'sinks';
