/**
 * Exponential backoff with full jitter (AWS architecture blog, "Exponential
 * Backoff and Jitter"): retries of many writers spread out instead of
 * hitting a recovering ClickHouse together.
 */
export interface Backoff {
  readonly baseMs: number;
  readonly maxMs: number;
}

export const DEFAULT_BACKOFF: Backoff = { baseMs: 200, maxMs: 30_000 };

export function backoffDelay(attempt: number, b: Backoff = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const cap = Math.min(b.maxMs, b.baseMs * 2 ** Math.min(attempt, 30));
  return Math.max(b.baseMs / 2, Math.floor(random() * cap));
}
