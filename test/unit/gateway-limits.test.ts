import { describe, expect, it } from 'vitest';
import { exceedsDepth } from '../../gateway/limits/depth.js';
import { createRateLimiter } from '../../gateway/limits/rate-limiter.js';

const T0 = 1_700_000_000_000;
const IP = '203.0.113.7';

describe('rate limiter', () => {
  it('rate limiter - allows the burst, then refuses with a retry-after of at least one second', () => {
    const limiter = createRateLimiter(10, 5);
    for (let i = 0; i < 5; i++) expect(limiter.take(IP, 1, T0)).toBe(0);
    const retryAfter = limiter.take(IP, 1, T0);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(Number.isInteger(retryAfter)).toBe(true);
    // Refused requests cost nothing: the next one is refused the same way, not later.
    expect(limiter.take(IP, 1, T0)).toBe(retryAfter);
  });

  it('rate limiter - retry-after is the whole seconds until enough tokens are back', () => {
    // 1 token per 2 s, burst 3: an empty bucket needs 2 s for the next request, 6 s for a batch of 3.
    const limiter = createRateLimiter(0.5, 3);
    expect(limiter.take(IP, 3, T0)).toBe(0);
    expect(limiter.take(IP, 1, T0)).toBe(2);
    expect(limiter.take(IP, 3, T0)).toBe(6);
    // Half-way there, the wait is shorter.
    expect(limiter.take(IP, 1, T0 + 1_000)).toBe(1);
  });

  it('rate limiter - a batch larger than the burst costs a full bucket: it passes when the bucket is full, never when it is not', () => {
    const limiter = createRateLimiter(10, 5);
    expect(limiter.take(IP, 1, T0)).toBe(0);
    // 4 tokens left: the batch of 8 waits for the fifth (100 ms → 1 s, the least retry-after).
    expect(limiter.take(IP, 8, T0)).toBe(1);
    expect(limiter.take(IP, 8, T0 + 100)).toBe(0);
    // It took the whole bucket.
    expect(limiter.take(IP, 1, T0 + 100)).toBeGreaterThanOrEqual(1);
  });

  it('rate limiter - tokens refill with (injected) time and waiting the retry-after is enough', () => {
    const limiter = createRateLimiter(10, 5);
    for (let i = 0; i < 5; i++) limiter.take(IP, 1, T0);
    const retryAfter = limiter.take(IP, 1, T0);
    expect(retryAfter).toBeGreaterThan(0);
    expect(limiter.take(IP, 1, T0 + retryAfter * 1000)).toBe(0);
  });

  it('rate limiter - refills at the configured rate, not faster', () => {
    const limiter = createRateLimiter(10, 5);
    for (let i = 0; i < 5; i++) limiter.take(IP, 1, T0);
    // 10 per second: 300 ms brings back 3 tokens, and no more.
    for (let i = 0; i < 3; i++) expect(limiter.take(IP, 1, T0 + 300)).toBe(0);
    expect(limiter.take(IP, 1, T0 + 300)).toBeGreaterThan(0);
  });

  it('rate limiter - the bucket never refills beyond the burst', () => {
    const limiter = createRateLimiter(10, 5);
    expect(limiter.take(IP, 1, T0)).toBe(0);
    // An hour of silence still allows only the burst.
    const later = T0 + 3_600_000;
    for (let i = 0; i < 5; i++) expect(limiter.take(IP, 1, later)).toBe(0);
    expect(limiter.take(IP, 1, later)).toBeGreaterThan(0);
  });

  it('rate limiter - a clock going backwards neither refills nor breaks the bucket', () => {
    const limiter = createRateLimiter(10, 2);
    limiter.take(IP, 2, T0);
    expect(limiter.take(IP, 1, T0 - 60_000)).toBeGreaterThan(0);
    expect(limiter.take(IP, 1, T0 + 100)).toBe(0);
  });

  it('rate limiter - each IP has its own bucket', () => {
    const limiter = createRateLimiter(1, 3);
    for (let i = 0; i < 3; i++) limiter.take(IP, 1, T0);
    expect(limiter.take(IP, 1, T0)).toBeGreaterThan(0);
    for (let i = 0; i < 3; i++) expect(limiter.take('198.51.100.1', 1, T0)).toBe(0);
    expect(limiter.take('2001:db8::1', 3, T0)).toBe(0);
    expect(limiter.size).toBe(3);
  });

  it('rate limiter - a batch costs its size', () => {
    const limiter = createRateLimiter(10, 10);
    expect(limiter.take(IP, 7, T0)).toBe(0);
    expect(limiter.take(IP, 4, T0)).toBeGreaterThan(0);
    // The refused batch took nothing: the 3 left are still there.
    expect(limiter.take(IP, 3, T0)).toBe(0);
    expect(limiter.take(IP, 1, T0)).toBeGreaterThan(0);
  });

  it('rate limiter - a batch of exactly the burst fits a full bucket', () => {
    const limiter = createRateLimiter(10, 10);
    expect(limiter.take(IP, 10, T0)).toBe(0);
    expect(limiter.take(IP, 1, T0)).toBeGreaterThan(0);
  });

  it('rate limiter - a rate of 0 turns limiting off and keeps no buckets', () => {
    const limiter = createRateLimiter(0, 1);
    for (let i = 0; i < 1_000; i++) expect(limiter.take(`10.0.${i >> 8}.${i & 255}`, 100, T0)).toBe(0);
    expect(limiter.size).toBe(0);
  });

  it('rate limiter - the bucket table stays bounded, dropping the oldest bucket', () => {
    const limiter = createRateLimiter(1, 2, 3);
    // Empty the first bucket, so its loss is visible.
    limiter.take('ip-a', 2, T0);
    expect(limiter.take('ip-a', 1, T0)).toBeGreaterThan(0);
    limiter.take('ip-b', 2, T0);
    limiter.take('ip-c', 2, T0);
    expect(limiter.size).toBe(3);

    limiter.take('ip-d', 1, T0);
    expect(limiter.size).toBe(3);
    // ip-a was the oldest: it was forgotten and starts again with a full bucket.
    expect(limiter.take('ip-a', 2, T0)).toBe(0);
    expect(limiter.size).toBe(3);
    // That in turn evicted ip-b (now oldest); ip-c and ip-d kept their state.
    expect(limiter.take('ip-c', 1, T0)).toBeGreaterThan(0);
    expect(limiter.take('ip-d', 1, T0)).toBe(0);
    expect(limiter.take('ip-d', 1, T0)).toBeGreaterThan(0);
    expect(limiter.size).toBe(3);
  });

  it('rate limiter - a flood of distinct addresses never grows the table past maxBuckets', () => {
    const limiter = createRateLimiter(100, 100, 1_000);
    for (let i = 0; i < 20_000; i++) limiter.take(`2001:db8::${i.toString(16)}`, 1, T0 + i);
    expect(limiter.size).toBe(1_000);
  });
});

/** [[[…[]…]]] nested `depth` levels, built without recursion. */
function nestedArray(depth: number): unknown[] {
  const root: unknown[] = [];
  let cur = root;
  for (let i = 1; i < depth; i++) {
    const next: unknown[] = [];
    cur.push(next);
    cur = next;
  }
  return root;
}

/** {a:{a:{…}}} nested `depth` levels. */
function nestedObject(depth: number): Record<string, unknown> {
  const root: Record<string, unknown> = {};
  let cur = root;
  for (let i = 1; i < depth; i++) {
    const next: Record<string, unknown> = {};
    cur.a = next;
    cur = next;
  }
  return root;
}

describe('depth limit', () => {
  it('depth limit - primitives and null have no depth', () => {
    for (const v of [null, undefined, 0, 'deep', true]) expect(exceedsDepth(v, 0)).toBe(false);
  });

  it('depth limit - a flat object is one level deep', () => {
    const flat = { service: 'track', name: 'page', n: 1, s: 'x', b: false, z: null };
    expect(exceedsDepth(flat, 1)).toBe(false);
    expect(exceedsDepth(flat, 0)).toBe(true);
  });

  it('depth limit - exactly at the limit passes, one over fails', () => {
    for (const max of [1, 2, 4, 16]) {
      expect(exceedsDepth(nestedObject(max), max)).toBe(false);
      expect(exceedsDepth(nestedObject(max + 1), max)).toBe(true);
      expect(exceedsDepth(nestedArray(max), max)).toBe(false);
      expect(exceedsDepth(nestedArray(max + 1), max)).toBe(true);
    }
  });

  it('depth limit - the deepest branch counts, wherever it is', () => {
    const wide = { a: 1, b: { c: 2 }, d: [1, 2, 3], e: { f: { g: { h: 'deep' } } }, z: 'last' };
    expect(exceedsDepth(wide, 4)).toBe(false);
    expect(exceedsDepth(wide, 3)).toBe(true);
    // Deep branch first or last: same answer.
    expect(exceedsDepth({ first: nestedObject(5), x: 1 }, 5)).toBe(true);
    expect(exceedsDepth({ x: 1, y: [1, [2]], last: nestedObject(5) }, 5)).toBe(true);
  });

  it('depth limit - arrays and objects mixed count alike', () => {
    const mixed = { data: [{ items: [{ sku: 'a1' }] }] }; // object > array > object > array > object = 5
    expect(exceedsDepth(mixed, 5)).toBe(false);
    expect(exceedsDepth(mixed, 4)).toBe(true);
    expect(exceedsDepth([[{ a: [] }]], 4)).toBe(false);
    expect(exceedsDepth([[{ a: [[]] }]], 4)).toBe(true);
  });

  it('depth limit - empty containers count as a level', () => {
    expect(exceedsDepth({ a: {} }, 1)).toBe(true);
    expect(exceedsDepth({ a: [] }, 2)).toBe(false);
  });

  it('depth limit - a 100k-deep nested array is rejected without overflowing the stack', () => {
    const deep = nestedArray(100_000);
    expect(() => JSON.stringify(deep)).toThrow(RangeError); // what a recursive walk would hit
    expect(exceedsDepth(deep, 16)).toBe(true);
    expect(exceedsDepth(deep, 100_000)).toBe(false);
    expect(exceedsDepth(deep, 99_999)).toBe(true);
  });
});
