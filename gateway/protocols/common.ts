import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { isValidUid } from '../../engine/index.js';

/** Helpers every protocol adapter needs to turn a vendor's ids and names into ours. */

const SEGMENT_MAX = 64;

/**
 * A vendor's free-form name ("Order Completed", "add_to_cart") as one key
 * segment: lower case, runs of characters outside [a-z0-9_-] as one `_`, at
 * most 64 characters. The original name is kept in the event's properties.
 */
export function keySegment(name: string): string {
  const s = name.toLowerCase().replace(/[^a-z0-9_-]+/g, '_').replace(/^_+|_+$/g, '').slice(0, SEGMENT_MAX);
  return s === '' ? 'unnamed' : s;
}

/**
 * A vendor's user or device id as our uid: as it is when it is a valid uid
 * (1–64 of [A-Za-z0-9._:-]), else `h:` + 40 hex digits of its SHA-256 — the
 * same id always gives the same uid, so the user keeps one actor and one
 * session. The original id is kept in the event's properties.
 */
export function uidFrom(id: string): string {
  return isValidUid(id) ? id : `h:${createHash('sha256').update(id).digest('hex').slice(0, 40)}`;
}

/** A string id from a vendor field that may be a string or a number; null when absent or empty. */
export function idString(v: unknown): string | null {
  if (typeof v === 'string') return v === '' ? null : v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return null;
}

/** A numeric field sent as a number or as text ("42.5"); null when absent, empty or not a finite number. */
export function numberOf(v: unknown): number | null {
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (typeof v !== 'string' || v.trim() === '') return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
}

/** An ISO 8601 (or RFC 2822) date string or ms number → ms since the epoch; null when absent or unreadable. */
export function timeMs(v: unknown): number | null {
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (typeof v !== 'string' || v === '') return null;
  const t = Date.parse(v);
  return Number.isNaN(t) ? null : t;
}

/** An IP address a client reported for its user (e.g. Segment's context.ip), or null if it is not one. */
export function ipOrNull(v: unknown): string | null {
  return typeof v === 'string' && isIP(v) !== 0 ? v : null;
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The body parsed as JSON, or undefined when it is not JSON (the caller answers with the protocol's error). */
export function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}
