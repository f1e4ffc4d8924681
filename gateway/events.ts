import {
  createEnvelope, createError, keyFromServiceName,
  type Envelope, type KeyOptions,
} from '../engine/index.js';

/**
 * The generic event (DESIGN.md, Wire formats) → Envelope, shared by HTTP and
 * WebSocket. HTTP follows Rockstat Front: fields it does not know become
 * properties (pixels put everything in the query string). WebSocket `track`
 * is strict: an unknown field is an error naming it.
 */

export const EVENT_FIELDS = new Set(['service', 'name', 'projectId', 'uid', 'id', 'ts', 'page', 'user', 'data', 'ua']);
/** Flat spellings accepted over HTTP, where a query string cannot nest. */
const HTTP_FLAT_FIELDS = new Set(['url', 'ref', 'referrer', 'title', 'userId']);
const PAGE_FIELDS = new Set(['url', 'ref', 'title']);
const USER_FIELDS = new Set(['id', 'traits']);

export interface EventContext {
  readonly key: string;
  readonly projectId: number;
  readonly uid: string;
  readonly ip: string;
  readonly userAgent: string;
  readonly receivedAt: number;
}

function asObject(field: string, value: unknown): Record<string, unknown> | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw createError('FLOW_ERR_FIELD_INVALID', { field, reason: 'must be an object' });
  }
  return value as Record<string, unknown>;
}

function checkKeys(field: string, obj: Record<string, unknown>, allowed: ReadonlySet<string>): void {
  for (const k in obj) {
    if (!allowed.has(k)) throw createError('FLOW_ERR_FIELD_INVALID', { field: field === '' ? k : `${field}.${k}`, reason: 'unknown field' });
  }
}

/** Builds the envelope for a strict (WebSocket / JSON API) event. */
export function strictEvent(p: Record<string, unknown>, ctx: EventContext): Envelope {
  checkKeys('', p, EVENT_FIELDS);
  const page = asObject('page', p.page);
  if (page !== undefined) checkKeys('page', page, PAGE_FIELDS);
  const user = asObject('user', p.user);
  if (user !== undefined) checkKeys('user', user, USER_FIELDS);
  return createEnvelope({
    key: ctx.key,
    projectId: ctx.projectId,
    uid: ctx.uid,
    receivedAt: ctx.receivedAt,
    ip: ctx.ip,
    userAgent: typeof p.ua === 'string' ? p.ua : ctx.userAgent,
    id: p.id,
    ts: p.ts,
    userId: user?.id,
    pageUrl: page?.url,
    pageReferrer: page?.ref,
    pageTitle: page?.title,
    data: p.data,
  });
}

/** Builds the envelope for an HTTP event: unknown top-level fields become properties. */
export function lenientEvent(p: Record<string, unknown>, ctx: EventContext): Envelope {
  const page = asObject('page', p.page);
  const user = asObject('user', p.user);
  const data = asObject('data', p.data);
  let props: Record<string, unknown> | undefined;
  for (const k in p) {
    if (EVENT_FIELDS.has(k) || HTTP_FLAT_FIELDS.has(k)) continue;
    (props ??= {})[k] = p[k];
  }
  return createEnvelope({
    key: ctx.key,
    projectId: ctx.projectId,
    uid: ctx.uid,
    receivedAt: ctx.receivedAt,
    ip: ctx.ip,
    userAgent: typeof p.ua === 'string' ? p.ua : ctx.userAgent,
    id: p.id,
    ts: p.ts,
    userId: user?.id ?? p.userId,
    pageUrl: page?.url ?? p.url,
    pageReferrer: page?.ref ?? p.ref ?? p.referrer,
    pageTitle: page?.title ?? p.title,
    data: props === undefined ? data : { ...props, ...data },
  });
}

/**
 * `service` + `name` from a payload → key (with path aliases). Keys repeat
 * (a site sends a few dozen kinds of events), so valid ones are cached per
 * (service, name); the cache is bounded against floods of made-up names.
 */
export function createKeyResolver(aliases: KeyOptions['aliases'], maxEntries = 4096): (p: Record<string, unknown>) => string {
  const cache = new Map<string, Map<string, string>>();
  let size = 0;
  return (p) => {
    const { service, name } = p;
    if (service === undefined) throw createError('FLOW_ERR_FIELD_INVALID', { field: 'service', reason: 'is required' });
    if (name === undefined) throw createError('FLOW_ERR_FIELD_INVALID', { field: 'name', reason: 'is required' });
    if (typeof service === 'string' && typeof name === 'string') {
      const hit = cache.get(service)?.get(name);
      if (hit !== undefined) return hit;
    }
    const key = keyFromServiceName(service, name, { aliases });
    if (typeof service === 'string' && typeof name === 'string') {
      if (size >= maxEntries) { cache.clear(); size = 0; }
      let names = cache.get(service);
      if (names === undefined) { names = new Map(); cache.set(service, names); }
      names.set(name, key);
      size++;
    }
    return key;
  };
}

/** `service` + `name` from a payload → key (with path aliases), uncached. */
export function keyOfPayload(p: Record<string, unknown>, aliases: KeyOptions['aliases']): string {
  return createKeyResolver(aliases, 0)(p);
}

/** A projectId from a payload field (number or numeric string), else the fallback. */
export function projectIdOf(value: unknown, fallback: number): unknown {
  if (value === undefined || value === null || value === '') return fallback;
  if (typeof value === 'string' && /^\d{1,10}$/.test(value)) return Number(value);
  return value;
}
