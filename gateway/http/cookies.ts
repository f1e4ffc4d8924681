import { randomUUID } from 'node:crypto';
import { isValidUid } from '../../engine/index.js';

/** The uid cookie: read from the request, written on every reply (sliding expiry). */

export function readCookie(header: string, name: string): string | undefined {
  if (header === '') return undefined;
  let start = 0;
  while (start < header.length) {
    let end = header.indexOf(';', start);
    if (end < 0) end = header.length;
    const eq = header.indexOf('=', start);
    if (eq > start && eq < end && header.slice(start, eq).trim() === name) {
      const raw = header.slice(eq + 1, end).trim();
      try { return decodeURIComponent(raw); } catch { return raw; }
    }
    start = end + 1;
  }
  return undefined;
}

export interface CookieOptions {
  readonly name: string;
  readonly domain?: string | undefined;
  readonly maxAgeDays: number;
}

/**
 * Behind https the cookie is `SameSite=None; Secure` so it travels with
 * cross-site tracking requests. Over plain http browsers reject
 * `SameSite=None` without `Secure`, so it falls back to `SameSite=Lax`.
 * The domain comes from config only, never from a request header.
 */
export function uidCookie(uid: string, options: CookieOptions, https: boolean): string {
  const parts = [`${options.name}=${encodeURIComponent(uid)}`, 'Path=/', `Max-Age=${options.maxAgeDays * 86_400}`, 'HttpOnly'];
  if (options.domain !== undefined) parts.push(`Domain=${options.domain}`);
  parts.push(https ? 'SameSite=None; Secure' : 'SameSite=Lax');
  return parts.join('; ');
}

/**
 * The uid of an HTTP request: the explicit `uid` field when there is one
 * (returned as given: the caller's validation turns a bad one into a 400),
 * else the cookie if it is a valid uid, else a new random one (a bad cookie
 * is replaced, not refused: the client did not choose it).
 */
export function resolveUid(explicit: unknown, cookieHeader: string, cookieName: string): unknown {
  if (explicit !== undefined && explicit !== '') return explicit;
  const fromCookie = readCookie(cookieHeader, cookieName);
  return fromCookie !== undefined && isValidUid(fromCookie) ? fromCookie : randomUUID();
}
