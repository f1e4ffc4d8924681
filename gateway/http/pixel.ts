import type { Header } from '../transport/index.js';

/** The 1x1 transparent GIF (42 bytes). */
export const PIXEL_GIF: Uint8Array = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');

/** A pixel must never be cached: each load is a hit to record. */
export const PIXEL_HEADERS: readonly Header[] = [['content-type', 'image/gif'], ['cache-control', 'no-store, max-age=0']];
