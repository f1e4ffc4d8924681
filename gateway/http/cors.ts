import type { Header } from '../transport/index.js';

/**
 * CORS. Allowlisted origins get their origin echoed with credentials (so the
 * uid cookie travels); in open mode any other origin gets `*` without
 * credentials. An origin that is neither is refused. Rockstat echoed every
 * origin with credentials, which lets any site read replies as the user.
 */

export interface Cors {
  /** Headers for a reply to `origin`, or null if the origin is refused. No Origin header: no CORS headers. */
  headers(origin: string): readonly Header[] | null;
  /** Headers for an OPTIONS preflight, or null if refused. */
  preflight(origin: string, requestHeaders: string): readonly Header[] | null;
  /** Whether a browser page from `origin` may open a WebSocket. */
  allowsWebSocket(origin: string): boolean;
}

const NONE: readonly Header[] = Object.freeze([]);
const ALLOWED_HEADERS = 'content-type, authorization';
const MAX_AGE = '600';

export function createCors(options: { origins: readonly string[]; open: boolean }): Cors {
  const allow = new Set(options.origins.map((o) => o.toLowerCase()));
  const credentialed = new Map<string, readonly Header[]>();
  for (const origin of allow) {
    credentialed.set(origin, Object.freeze([
      ['access-control-allow-origin', origin],
      ['access-control-allow-credentials', 'true'],
      ['vary', 'Origin'],
    ] as const));
  }
  const open: readonly Header[] = Object.freeze([['access-control-allow-origin', '*'], ['vary', 'Origin']] as const);

  function headers(origin: string): readonly Header[] | null {
    if (origin === '') return NONE;
    const hit = credentialed.get(origin.toLowerCase());
    if (hit !== undefined) return hit;
    return options.open ? open : null;
  }

  return {
    headers,
    preflight(origin, requestHeaders) {
      const base = headers(origin);
      if (base === null) return null;
      return [
        ...base,
        ['access-control-allow-methods', 'GET, POST, OPTIONS'],
        ['access-control-allow-headers', requestHeaders === '' ? ALLOWED_HEADERS : sanitizeHeaderList(requestHeaders)],
        ['access-control-max-age', MAX_AGE],
      ];
    },
    allowsWebSocket(origin) {
      return origin === '' || options.open || allow.has(origin.toLowerCase());
    },
  };
}

/** Echo only well-formed header names. */
function sanitizeHeaderList(list: string): string {
  return list.split(',').map((h) => h.trim().toLowerCase()).filter((h) => /^[a-z0-9-]{1,64}$/.test(h)).slice(0, 20).join(', ') || ALLOWED_HEADERS;
}
