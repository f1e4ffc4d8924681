/**
 * Per-IP token buckets. A bucket refills at `ratePerSecond` up to `burst`;
 * an event costs one token (a batch costs its size; one larger than the
 * burst costs a full bucket, so it can pass at all). The table is bounded:
 * when it is full the oldest bucket is dropped (Map keeps insertion order),
 * so a flood of spoofed IPv6 addresses costs memory once, not forever.
 */

export interface RateLimiter {
  /** 0 when allowed, else the seconds to wait before retrying. */
  take(ip: string, cost: number, nowMs: number): number;
  readonly size: number;
}

const MAX_BUCKETS = 100_000;

interface Bucket {
  tokens: number;
  last: number;
}

export function createRateLimiter(ratePerSecond: number, burst: number, maxBuckets = MAX_BUCKETS): RateLimiter {
  const buckets = new Map<string, Bucket>();
  if (ratePerSecond <= 0) return { take: () => 0, get size() { return 0; } };
  const perMs = ratePerSecond / 1000;
  return {
    get size() { return buckets.size; },
    take(ip, cost, now) {
      let b = buckets.get(ip);
      if (b === undefined) {
        if (buckets.size >= maxBuckets) {
          const oldest = buckets.keys().next();
          if (!oldest.done) buckets.delete(oldest.value);
        }
        b = { tokens: burst, last: now };
        buckets.set(ip, b);
      } else if (now > b.last) {
        b.tokens = Math.min(burst, b.tokens + (now - b.last) * perMs);
        b.last = now;
      }
      const need = Math.min(cost, burst);
      if (b.tokens >= need) {
        b.tokens -= need;
        return 0;
      }
      return Math.max(1, Math.ceil((need - b.tokens) / perMs / 1000));
    },
  };
}
