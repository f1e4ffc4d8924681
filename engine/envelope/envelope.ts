import { uuidBytes, uuidv5, uuidv7 } from './uuid.js';
import { createError } from '../errors/index.js';
import { parseKey, type KeyParts } from '../keys/index.js';

/**
 * The Envelope: one event as the engine sees it, whatever wire it came from.
 * Built once by the gateway (or a protocol adapter), validated here, then
 * passed by reference through actors and sinks. Flat on purpose: one object,
 * no nested allocations per event.
 */
export interface Envelope {
  /** UUID. The client's id when it sent one (dedup across retries), else UUIDv7. */
  readonly id: string;
  readonly projectId: number;
  /** Routing key `direction.channel.service.name`. */
  readonly key: string;
  readonly channel: string;
  readonly service: string;
  readonly name: string;
  /** Anonymous user id (cookie / device id). */
  readonly uid: string;
  /** Known user id after identify, or null. */
  readonly userId: string | null;
  /** Client time, ms since epoch (received_at when the client sent none). */
  readonly ts: number;
  /** Server receive time, ms since epoch. */
  readonly receivedAt: number;
  readonly ip: string;
  readonly userAgent: string;
  readonly pageUrl: string;
  readonly pageReferrer: string;
  readonly pageTitle: string;
  /** Free-form properties (the payload's `data`). */
  readonly data: Readonly<Record<string, unknown>>;
  /** The id came from the client (and may be sent again on a retry), not from the server. */
  readonly idFromClient: boolean;
}

export const LIMITS = Object.freeze({
  uidMax: 64,
  userIdMax: 256,
  clientIdMax: 128,
  urlMax: 4096,
  titleMax: 1024,
  userAgentMax: 1024,
  projectIdMax: 2 ** 31 - 1,
  /** Client timestamps before 2000-01-01 are refused as nonsense. */
  tsMin: 946_684_800_000,
  /** Client clocks may run ahead; more than a day ahead is refused. */
  tsMaxAhead: 86_400_000,
});

/** Namespace for turning a non-UUID client id into a stable UUID (v5). */
export const CLIENT_ID_NAMESPACE = '6f1d5a8e-3c1b-4e57-9a3f-1f0e2b7c9d41';
const CLIENT_ID_NAMESPACE_BYTES = uuidBytes(CLIENT_ID_NAMESPACE);

const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** What a caller knows about an event before validation. */
export interface EnvelopeInput {
  key: string;
  projectId: unknown;
  uid: unknown;
  receivedAt: number;
  ip: string;
  userAgent: string;
  id?: unknown;
  userId?: unknown;
  ts?: unknown;
  pageUrl?: unknown;
  pageReferrer?: unknown;
  pageTitle?: unknown;
  data?: unknown;
}

function invalid(field: string, reason: string): never {
  throw createError('FLOW_ERR_FIELD_INVALID', { field, reason });
}

/** [A-Za-z0-9._:-]{1,64}, checked per event: a char-code loop is cheaper than the regex here. */
export function isValidUid(uid: unknown): uid is string {
  if (typeof uid !== 'string' || uid.length === 0 || uid.length > LIMITS.uidMax) return false;
  for (let i = 0; i < uid.length; i++) {
    const c = uid.charCodeAt(i);
    if (!((c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 58) || c === 46 || c === 95 || c === 45)) return false;
  }
  return true;
}

export function isUuid(value: string): boolean {
  return value.length === 36 && UUID_RE.test(value);
}

/** A stable UUID for a client-supplied id: the same (project, id) always maps to the same UUID. */
export function eventIdFromClientId(projectId: number, clientId: string): string {
  return isUuid(clientId) ? clientId.toLowerCase() : uuidv5(`${projectId}:${clientId}`, CLIENT_ID_NAMESPACE_BYTES);
}

export function newEventId(now?: number): string {
  return uuidv7(now);
}

function optionalString(field: string, value: unknown, max: number): string {
  if (value === undefined || value === null) return '';
  if (typeof value !== 'string') invalid(field, 'must be a string');
  if (value.length > max) invalid(field, `longer than ${max} characters`);
  return value;
}

/**
 * Validates `input` and returns a frozen-shape Envelope. Throws
 * FLOW_ERR_FIELD_INVALID naming the field and the reason.
 */
export function createEnvelope(input: EnvelopeInput): Envelope {
  const key = input.key;
  const parts = keyParts(key);

  const projectId = input.projectId;
  if (typeof projectId !== 'number' || !Number.isInteger(projectId) || projectId < 0 || projectId > LIMITS.projectIdMax) {
    invalid('projectId', `must be an integer from 0 to ${LIMITS.projectIdMax}`);
  }
  if (!isValidUid(input.uid)) invalid('uid', `must be 1-${LIMITS.uidMax} characters of [A-Za-z0-9._:-]`);

  let id: string;
  const idFromClient = !(input.id === undefined || input.id === null || input.id === '');
  if (!idFromClient) {
    id = newEventId(input.receivedAt);
  } else {
    if (typeof input.id !== 'string' && typeof input.id !== 'number') invalid('id', 'must be a string');
    const raw = String(input.id);
    if (raw.length > LIMITS.clientIdMax) invalid('id', `longer than ${LIMITS.clientIdMax} characters`);
    id = eventIdFromClientId(projectId, raw);
  }

  let userId: string | null = null;
  if (input.userId !== undefined && input.userId !== null && input.userId !== '') {
    if (typeof input.userId !== 'string' && typeof input.userId !== 'number') invalid('user.id', 'must be a string');
    userId = String(input.userId);
    if (userId.length > LIMITS.userIdMax) invalid('user.id', `longer than ${LIMITS.userIdMax} characters`);
  }

  let ts = input.receivedAt;
  if (input.ts !== undefined && input.ts !== null) {
    const t = typeof input.ts === 'string' && input.ts !== '' ? Number(input.ts) : input.ts;
    if (typeof t !== 'number' || !Number.isFinite(t)) invalid('ts', 'must be a number of milliseconds since the epoch');
    if (t < LIMITS.tsMin || t > input.receivedAt + LIMITS.tsMaxAhead) invalid('ts', 'out of range (before 2000 or more than a day ahead)');
    ts = Math.trunc(t);
  }

  let data: Readonly<Record<string, unknown>> = EMPTY_DATA;
  if (input.data !== undefined && input.data !== null) {
    if (typeof input.data !== 'object' || Array.isArray(input.data)) invalid('data', 'must be an object');
    data = input.data as Record<string, unknown>;
  }

  return {
    id,
    projectId,
    key,
    channel: parts.channel,
    service: parts.service,
    name: parts.name,
    uid: input.uid,
    userId,
    ts,
    receivedAt: input.receivedAt,
    ip: input.ip,
    userAgent: input.userAgent.length > LIMITS.userAgentMax ? input.userAgent.slice(0, LIMITS.userAgentMax) : input.userAgent,
    pageUrl: optionalString('page.url', input.pageUrl, LIMITS.urlMax),
    pageReferrer: optionalString('page.ref', input.pageReferrer, LIMITS.urlMax),
    pageTitle: optionalString('page.title', input.pageTitle, LIMITS.titleMax),
    data,
    idFromClient,
  };
}

const EMPTY_DATA: Readonly<Record<string, unknown>> = Object.freeze({});

/**
 * Parts of the valid keys seen lately. Keys repeat — a site sends a few dozen
 * kinds of events — so each is checked and split once, and every envelope of
 * a kind shares the same channel, service and name strings (whose hashes V8
 * then has cached for the per-channel counters). Bounded against floods of
 * made-up keys: it starts over when full.
 */
const KEY_PARTS_MAX = 4096;
const keyPartsCache = new Map<string, KeyParts>();

function keyParts(key: string): KeyParts {
  let parts = keyPartsCache.get(key);
  if (parts === undefined) {
    parts = parseKey(key);
    if (keyPartsCache.size >= KEY_PARTS_MAX) keyPartsCache.clear();
    keyPartsCache.set(key, parts);
  }
  return parts;
}
