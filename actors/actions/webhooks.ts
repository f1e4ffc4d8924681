import { createHmac } from 'node:crypto';
import type { Clock, Config, Logger, Timer } from '../../engine/index.js';

/** `webhooks` in the config (engine/config/schema.ts has the defaults). */
export type WebhooksConfig = Config['webhooks'];

/**
 * Webhook actions: a machine (a funnel step, an abandoned funnel, a churn
 * threshold) POSTs its derived event as JSON to a URL. The actor hands the
 * delivery over and goes on; this dispatcher sends it, and retries what
 * failed for a reason that can pass (network error, timeout, 408, 425, 429,
 * 5xx) with exponential backoff and full jitter — honouring a Retry-After —
 * up to `maxAttempts`. A delivery that cannot succeed (another 4xx, attempts
 * spent, the queue full, shutdown) is handed to `onFailed`, which the engine
 * writes to dead_letters: nothing is dropped silently.
 *
 * Each request carries `Idempotency-Key` (the event id, the same on every
 * retry) and, with a secret configured, `X-Flowstat-Signature: sha256=<hex>`
 * (HMAC-SHA256 of the body), so a receiver can drop repeats and check the
 * sender. Deliveries live in memory: the derived event itself is in the
 * events table, but a webhook still waiting for its retry when the process is
 * killed -9 is not sent (a graceful stop waits, then dead-letters the rest).
 */

export interface WebhookDelivery {
  readonly url: string;
  /** The event id: the idempotency key of every attempt. */
  readonly id: string;
  readonly projectId: number;
  readonly body: unknown;
}

export interface WebhookFailure {
  readonly delivery: WebhookDelivery;
  readonly attempts: number;
  readonly reason: string;
}

export interface WebhookStats {
  /** Handed over by actors. */
  accepted: number;
  delivered: number;
  /** Attempts that failed and were scheduled again. */
  retried: number;
  /** Given up: dead-lettered. */
  failed: number;
}

export interface Webhooks {
  /** Queues a delivery; never throws, never blocks the caller. */
  send(delivery: WebhookDelivery): void;
  stats(): WebhookStats;
  /** Deliveries waiting or in flight. */
  pending(): number;
  /**
   * Stops retrying: waits up to `graceMs` for deliveries in flight or due
   * within it, then hands every one left to `onFailed`.
   */
  close(graceMs: number): Promise<void>;
}

export interface WebhooksOptions {
  readonly config: WebhooksConfig;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly onFailed: (failure: WebhookFailure) => void;
  /** Randomness for jitter (tests pin it). */
  readonly random?: () => number;
}

interface Job {
  readonly delivery: WebhookDelivery;
  readonly payload: string;
  attempts: number;
  timer: Timer | null;
}

class RetryableError extends Error {
  constructor(message: string, readonly retryAfterMs = 0) {
    super(message);
  }
}

/** Failures are logged at most this often; the rest are counted into the next line. */
const LOG_INTERVAL_MS = 5_000;

export function createWebhooks(o: WebhooksOptions): Webhooks {
  const c = o.config;
  const random = o.random ?? Math.random;
  const stats: WebhookStats = { accepted: 0, delivered: 0, retried: 0, failed: 0 };
  const jobs = new Set<Job>();
  const ready: Job[] = [];
  let inFlight = 0;
  let closing = false;
  let idle: (() => void) | null = null;
  let lastLog = -Infinity;
  let unlogged = 0;

  function fail(job: Job, reason: string): void {
    jobs.delete(job);
    stats.failed++;
    unlogged++;
    const now = o.clock.now();
    if (now - lastLog >= LOG_INTERVAL_MS) {
      o.logger.warn({ url: redactUrl(job.delivery.url), attempts: job.attempts, reason, failures: unlogged }, 'webhook failed; sent to dead letters');
      lastLog = now;
      unlogged = 0;
    }
    try {
      o.onFailed({ delivery: job.delivery, attempts: job.attempts, reason });
    } catch (err) {
      o.logger.error({ err }, 'webhook failure listener threw');
    }
    settle();
  }

  function settle(): void {
    if (idle !== null && jobs.size === 0) idle();
  }

  function pump(): void {
    while (inFlight < c.concurrency && ready.length > 0) {
      const job = ready.shift()!;
      inFlight++;
      void attempt(job).finally(() => {
        inFlight--;
        pump();
      });
    }
  }

  async function attempt(job: Job): Promise<void> {
    job.attempts++;
    try {
      await post(job);
      // Given up on at shutdown while this attempt ran: already dead-lettered.
      if (!jobs.has(job)) return;
      jobs.delete(job);
      stats.delivered++;
      settle();
    } catch (err) {
      if (!jobs.has(job)) return;
      const reason = err instanceof Error ? err.message : String(err);
      if (!(err instanceof RetryableError)) return fail(job, reason);
      if (job.attempts >= c.maxAttempts) return fail(job, `${reason} (after ${job.attempts} attempts)`);
      if (closing) return fail(job, `${reason} (shutting down)`);
      stats.retried++;
      const backoff = Math.min(c.maxBackoffMs, c.backoffMs * 2 ** (job.attempts - 1));
      // Full jitter: receivers coming back from an outage are not hit by every sender at once.
      const delay = Math.max(err.retryAfterMs, Math.round(random() * backoff));
      job.timer = o.clock.setTimeout(() => {
        job.timer = null;
        ready.push(job);
        pump();
      }, Math.min(delay, c.maxBackoffMs));
    }
  }

  async function post(job: Job): Promise<void> {
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': 'flowstat-webhook/1',
      'idempotency-key': job.delivery.id,
    };
    if (c.secret !== undefined) headers['x-flowstat-signature'] = `sha256=${createHmac('sha256', c.secret).update(job.payload).digest('hex')}`;
    let response: Response;
    try {
      response = await fetch(job.delivery.url, { method: 'POST', headers, body: job.payload, signal: AbortSignal.timeout(c.timeoutMs), redirect: 'manual' });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code;
      const name = (err as { name?: string }).name;
      throw new RetryableError(name === 'TimeoutError' ? `timed out after ${c.timeoutMs} ms` : `network error${cause === undefined ? '' : ` ${cause}`}: ${(err as Error).message}`);
    }
    // The body is not needed; reading it frees the connection for reuse.
    const text = await response.text().catch(() => '');
    if (response.status >= 200 && response.status < 300) return;
    const reason = `answered ${response.status}${text === '' ? '' : `: ${text.slice(0, 200)}`}`;
    const s = response.status;
    if (s === 408 || s === 425 || s === 429 || s >= 500) throw new RetryableError(reason, retryAfterMs(response.headers.get('retry-after'), o.clock.now()));
    throw new Error(reason);
  }

  return {
    send(delivery) {
      stats.accepted++;
      let payload: string;
      try {
        payload = JSON.stringify(delivery.body);
      } catch (err) {
        const job: Job = { delivery, payload: '', attempts: 0, timer: null };
        jobs.add(job);
        return fail(job, `body is not JSON: ${(err as Error).message}`);
      }
      const job: Job = { delivery, payload, attempts: 0, timer: null };
      jobs.add(job);
      if (closing) return fail(job, 'shutting down');
      if (jobs.size > c.maxPending) return fail(job, `more than ${c.maxPending} webhooks pending`);
      ready.push(job);
      pump();
    },
    stats: () => ({ ...stats }),
    pending: () => jobs.size,
    async close(graceMs) {
      closing = true;
      if (jobs.size > 0) {
        await new Promise<void>((resolve) => {
          const timer = o.clock.setTimeout(resolve, graceMs);
          idle = () => { timer.cancel(); resolve(); };
        });
      }
      idle = null;
      for (const job of [...jobs]) {
        job.timer?.cancel();
        const i = ready.indexOf(job);
        if (i >= 0) ready.splice(i, 1);
        fail(job, `not delivered before shutdown (after ${job.attempts} attempts)`);
      }
    },
  };
}

/** Retry-After as seconds or an HTTP date; 0 when absent or unreadable. */
function retryAfterMs(value: string | null, now: number): number {
  if (value === null) return 0;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1_000);
  const at = Date.parse(value);
  return Number.isFinite(at) ? Math.max(0, at - now) : 0;
}

/** URLs may carry credentials in their query; logs get the origin and path only. */
function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return '(invalid url)';
  }
}
