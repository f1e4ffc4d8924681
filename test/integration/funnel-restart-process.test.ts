import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { uniqueDatabase } from '../support/gateway.js';
import { startEngineProcess, tempDir, type EngineProcess } from '../support/engine-process.js';
import { waitFor } from '../support/storage.js';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver.js';

/**
 * Funnel state and timers across real process restarts (dist/bin/flowstat.js,
 * SIGTERM between runs, the same FLOWSTAT_DATA_DIR):
 *
 * 1. the first process sees the funnel's first step and stops;
 * 2. the second sees the second step — it continues the attempt the first
 *    one began (since_start_ms spans both) — which arms an abandonment
 *    timer, and stops before it is due;
 * 3. the third does nothing but start: the timer comes due, the user's
 *    actor is woken from disk, and the abandonment is stored and POSTed.
 */

const UID = 'restart-funnel-user';
const MIN = 60_000;

async function sql<T>(database: string, query: string): Promise<T[]> {
  const res = await fetch(`${inject('clickhouseUrl')}/?database=${database}`, { method: 'POST', body: `${query} FORMAT JSON` });
  if (!res.ok) throw new Error(`${res.status}: ${await res.text()}`);
  return ((await res.json()) as { data: T[] }).data;
}

let hooks: WebhookReceiver | null = null;
afterAll(async () => { await hooks?.close(); });

async function run(env: Record<string, string>, work: (engine: EngineProcess) => Promise<void>): Promise<void> {
  const engine = await startEngineProcess(env);
  await engine.waitForLog((l) => l.msg === 'flowstat listening');
  await work(engine);
  engine.child.kill('SIGTERM');
  expect(await engine.exited, engine.stderr()).toBe(0);
}

async function send(engine: EngineProcess, path: string, ts: number): Promise<void> {
  const res = await fetch(`${engine.url}${path}?uid=${UID}&ts=${ts}`);
  expect(res.status, await res.clone().text()).toBe(200);
}

describe('process - funnels across restarts', () => {
  it('an attempt continues in the next process, and its abandonment timer fires in the one after', async () => {
    hooks = await startWebhookReceiver();
    const database = uniqueDatabase('restart');
    const dataDir = tempDir();
    const configPath = join(dataDir, 'flowstat.json');
    writeFileSync(configPath, JSON.stringify({
      actors: { tickMs: 100 },
      storage: { flushMs: 100 },
      funnels: [{
        name: 'checkout', windowMs: 3_600_000,
        steps: [{ name: 'view', pattern: 'in.gen.track.page' }, { name: 'cart', pattern: 'in.gen.shop.cart' }, { name: 'buy', pattern: 'in.gen.shop.buy' }],
        abandon: { afterMs: 4_000, fromStep: 1, actions: [{ type: 'webhook', url: hooks.url }] },
      }],
    }));
    const env = { FLOWSTAT_DATA_DIR: dataDir, FLOWSTAT_CONFIG: configPath, CLICKHOUSE_URL: inject('clickhouseUrl'), CLICKHOUSE_DATABASE: database };
    const t0 = Date.now() - 10 * MIN;

    await run(env, (e) => send(e, '/track/page', t0));
    await run(env, (e) => send(e, '/shop/cart', t0 + 2 * MIN));
    const steps = await sql<{ props: string }>(database, `SELECT props FROM events FINAL WHERE uid = '${UID}' AND key = 'in.sys.funnel.checkout' ORDER BY ts`);
    expect(steps.map((r) => JSON.parse(r.props) as Record<string, unknown>)).toEqual([
      { step: 0, step_name: 'view', steps: 3, since_start_ms: 0, converted: false },
      { step: 1, step_name: 'cart', steps: 3, since_start_ms: 2 * MIN, converted: false },
    ]);
    expect(hooks.received).toHaveLength(0);

    await run(env, async (e) => {
      await e.waitForLog((l) => l.msg === 'engine started');
      await waitFor('abandonment webhook', async () => hooks!.received.length === 1, 15_000);
    });
    expect(JSON.parse(hooks.received[0]!.body)).toMatchObject({ key: 'in.sys.abandon.checkout', uid: UID, props: { step: 1, step_name: 'cart', reached: 2 } });
    const abandoned = await sql<{ n: string }>(database, `SELECT count() AS n FROM events FINAL WHERE uid = '${UID}' AND key = 'in.sys.abandon.checkout'`);
    expect(Number(abandoned[0]!.n)).toBe(1);
  });
});
