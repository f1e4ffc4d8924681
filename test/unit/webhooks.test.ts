import { createHmac } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { createWebhooks, type WebhookFailure, type Webhooks } from '../../actors/actions/webhooks.js';
import { createSilentLogger, createSystemClock, parseConfig } from '../../engine/index.js';
import { waitFor } from '../support/storage.js';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver.js';

/**
 * Webhook delivery against a real local HTTP server: headers and signature,
 * retries with backoff for what can pass (5xx, 429, a dead port, a timeout),
 * no retry for a refusal (4xx), give-up into the failure listener, and
 * shutdown handing over what is left. Nothing is ever dropped silently.
 */

const receivers: WebhookReceiver[] = [];
const dispatchers: Webhooks[] = [];
afterEach(async () => {
  for (const d of dispatchers.splice(0)) await d.close(0);
  for (const r of receivers.splice(0)) await r.close();
});

async function receiver(statuses: readonly number[], delayMs = 0): Promise<WebhookReceiver> {
  const r = await startWebhookReceiver(statuses, delayMs);
  receivers.push(r);
  return r;
}

function dispatcher(overrides: Record<string, unknown> = {}): { webhooks: Webhooks; failures: WebhookFailure[] } {
  const failures: WebhookFailure[] = [];
  const config = parseConfig({ webhooks: { backoffMs: 20, maxBackoffMs: 100, timeoutMs: 1_000, ...overrides } }).webhooks;
  const webhooks = createWebhooks({ config, clock: createSystemClock(), logger: createSilentLogger(), onFailed: (f) => failures.push(f), random: () => 1 });
  dispatchers.push(webhooks);
  return { webhooks, failures };
}

const delivery = (url: string, id = 'evt-1') => ({ url, id, projectId: 1, body: { id, key: 'in.sys.funnel.cart', props: { step: 1 } } });

describe('webhooks', () => {
  it('delivers the event as JSON with an idempotency key and an HMAC signature', async () => {
    const { url, received } = await receiver([]);
    const secret = 'a-long-enough-secret';
    const { webhooks } = dispatcher({ secret });
    webhooks.send(delivery(url));
    await waitFor('delivered', async () => webhooks.stats().delivered === 1);
    expect(received).toHaveLength(1);
    const [r] = received;
    expect(JSON.parse(r!.body)).toEqual({ id: 'evt-1', key: 'in.sys.funnel.cart', props: { step: 1 } });
    expect(r!.headers['content-type']).toBe('application/json');
    expect(r!.headers['idempotency-key']).toBe('evt-1');
    expect(r!.headers['x-flowstat-signature']).toBe(`sha256=${createHmac('sha256', secret).update(r!.body).digest('hex')}`);
    expect(webhooks.pending()).toBe(0);
  });

  it('retries 5xx and 429 with backoff, with the same idempotency key, until delivered', async () => {
    const { url, received } = await receiver([503, 500, 429]);
    const { webhooks, failures } = dispatcher();
    webhooks.send(delivery(url, 'evt-retry'));
    await waitFor('delivered', async () => webhooks.stats().delivered === 1);
    expect(received).toHaveLength(4);
    expect(new Set(received.map((r) => r.headers['idempotency-key']))).toEqual(new Set(['evt-retry']));
    expect(webhooks.stats()).toMatchObject({ accepted: 1, delivered: 1, retried: 3, failed: 0 });
    expect(failures).toEqual([]);
  });

  it('a refusal (400) is not retried: it goes to the failure listener at once', async () => {
    const { url, received } = await receiver([400]);
    const { webhooks, failures } = dispatcher();
    webhooks.send(delivery(url));
    await waitFor('failed', async () => failures.length === 1);
    expect(received).toHaveLength(1);
    expect(failures[0]).toMatchObject({ attempts: 1, delivery: { id: 'evt-1' } });
    expect(failures[0]!.reason).toContain('answered 400');
  });

  it('gives up after maxAttempts on a receiver that stays down, and on a timeout', async () => {
    const { url, received } = await receiver([500, 500, 500, 500]);
    const { webhooks, failures } = dispatcher({ maxAttempts: 3 });
    webhooks.send(delivery(url));
    await waitFor('failed', async () => failures.length === 1);
    expect(received).toHaveLength(3);
    expect(failures[0]!.reason).toMatch(/answered 500.*after 3 attempts/);

    const slow = dispatcher({ maxAttempts: 1, timeoutMs: 100 });
    const s = await receiver([], 1_000);
    slow.webhooks.send(delivery(s.url, 'evt-slow'));
    await waitFor('timed out', async () => slow.failures.length === 1);
    expect(slow.failures[0]!.reason).toContain('timed out after 100 ms');
  });

  it('a dead port is a network error, retried, then handed over', async () => {
    const { webhooks, failures } = dispatcher({ maxAttempts: 2 });
    webhooks.send(delivery('http://127.0.0.1:9/hook'));
    await waitFor('failed', async () => failures.length === 1);
    expect(failures[0]!.attempts).toBe(2);
    expect(failures[0]!.reason).toContain('network error');
  });

  it('close - waits for deliveries in flight, then hands every one left to the listener', async () => {
    const { url } = await receiver([503, 503, 503, 503, 503, 503]);
    const { webhooks, failures } = dispatcher({ backoffMs: 5_000, maxBackoffMs: 5_000, maxAttempts: 6 });
    webhooks.send(delivery(url, 'a'));
    webhooks.send(delivery(url, 'b'));
    await waitFor('first attempts', async () => webhooks.stats().retried === 2);
    await webhooks.close(50);
    expect(failures.map((f) => f.delivery.id).sort()).toEqual(['a', 'b']);
    expect(failures[0]!.reason).toContain('not delivered before shutdown');
    webhooks.send(delivery(url, 'c'));
    expect(failures.map((f) => f.delivery.id)).toContain('c');
    expect(webhooks.pending()).toBe(0);
  });

  it('maxPending - beyond it a delivery fails at once instead of growing memory', async () => {
    const { url } = await receiver([], 200);
    const { webhooks, failures } = dispatcher({ maxPending: 2, concurrency: 1 });
    for (const id of ['a', 'b', 'c']) webhooks.send(delivery(url, id));
    expect(failures.map((f) => f.delivery.id)).toEqual(['c']);
    expect(failures[0]!.reason).toContain('more than 2 webhooks pending');
    await waitFor('two delivered', async () => webhooks.stats().delivered === 2);
  });
});
