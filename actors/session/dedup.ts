/**
 * Recently seen client-supplied event ids, per user: a client that retries
 * (no ack arrived) is acknowledged without the event being processed twice.
 * Ids are kept as 53-bit hashes in a small ring — numbers, not strings, so
 * an idle user's snapshot stays small. Two distinct ids colliding has odds of
 * about ring / 2^53 per event. Storage deduplicates by event id as well, so
 * a repeat older than the ring is still stored once.
 */

/** A 53-bit hash of a string (two 32-bit multiply-xorshift lanes). */
export function hash53(s: string): number {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

/** The ring: hashes, oldest overwritten first; the next slot is `ring.length` until full, then tracked in `next`. */
export interface DedupRing {
  readonly hashes: number[];
  next: number;
}

export function inRing(ring: DedupRing, hash: number): boolean {
  const { hashes } = ring;
  for (let i = 0; i < hashes.length; i++) if (hashes[i] === hash) return true;
  return false;
}

/** Adds `hash`, overwriting the oldest when the ring holds `capacity`. */
export function remember(ring: DedupRing, hash: number, capacity: number): void {
  const { hashes } = ring;
  if (hashes.length < capacity) hashes.push(hash);
  else {
    hashes[ring.next] = hash;
    ring.next = (ring.next + 1) % capacity;
  }
}
