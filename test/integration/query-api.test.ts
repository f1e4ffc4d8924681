import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mulberry32 } from '../../bench/lib/random.js';
import { createLogger } from '../../engine/index.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { waitFor } from '../support/storage.js';

/**
 * The query API over HTTP, on the real engine and the ClickHouse server:
 * the bearer token (401 without it, never logged), 400s naming the field,
 * CSV export, and the rule the funnel report promises — on the same events,
 * its counts are the counts of the `in.sys.funnel.*` events the session
 * actors emitted in real time.
 */

const TOKEN = 'query-api-test-token-0123456789';
const PROJECT = 5;
const T0 = Date.UTC(2026, 2, 2, 8);

const CHECKOUT = {
  name: 'checkout',
  mode: 'ordered',
  windowMs: 600_000,
  steps: [
    { name: 'view', pattern: 'in.gen.shop.view' },
    { name: 'cart', pattern: 'in.gen.shop.cart', withinMs: 300_000 },
    { name: 'buy', pattern: 'in.gen.shop.buy', filters: [{ field: 'data.price', op: 'gte', value: 100 }] },
  ],
  exclusions: [{ pattern: 'in.gen.shop.refund' }],
};
const ANY = { name: 'explore', mode: 'any', windowMs: 900_000, steps: [{ pattern: 'in.gen.shop.view' }, { pattern: 'in.gen.track.page', filters: [{ field: 'data.plan', op: 'eq', value: 'pro' }] }] };

describe('query API (server store, real engine)', () => {
  let gw: TestGateway;
  const logs: string[] = [];
  const auth = { authorization: `Bearer ${TOKEN}` };
  const get = (path: string, headers: Record<string, string> = auth): Promise<Response> => fetch(`${gw.url}${path}`, { headers });

  beforeAll(async () => {
    const logger = createLogger({ level: 'debug', destination: { write: (s: string) => { logs.push(s); } } });
    gw = await startGateway('uws', { adminToken: TOKEN, storage: { flushMs: 100 }, funnels: [CHECKOUT, ANY], log: { level: 'debug' } }, { logger });
  });
  afterAll(async () => { await gw.stop('test over'); });

  it('without the bearer token, with a wrong one or another scheme: 401, and the token is never logged', async () => {
    for (const headers of [{}, { authorization: `Bearer ${TOKEN}x` }, { authorization: `Basic ${TOKEN}` }, { authorization: TOKEN }] as Record<string, string>[]) {
      const res = await get('/api/v1/query/events', headers);
      expect(res.status).toBe(401);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('FLOW_ERR_UNAUTHORIZED');
    }
    const ok = await get('/api/v1/query');
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ reports: ['events', 'users', 'funnel', 'retention', 'sessions', 'timeline', 'segments'] });
    expect(logs.join('')).not.toContain(TOKEN);
  });

  it('a bad parameter is a 400 with {error: {code, message}} naming it', async () => {
    const res = await get('/api/v1/query/events?interval=fortnight');
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: { code: 'FLOW_ERR_FIELD_INVALID', message: 'invalid field "interval": must be one of minute, hour, day, week, month' } });
    const bad = await get("/api/v1/query/segments?filter=utm_source%3Aeq%3Ax'&breakdown=1");
    expect(((await bad.json()) as { error: { message: string } }).error.message).toContain('"breakdown"');
    expect((await get('/api/v1/query/nope')).status).toBe(400);
  });

  it('funnel report = the real-time funnel events, for an ordered funnel with windows, a filter and an exclusion, and an any-order one', async () => {
    const rand = mulberry32(11);
    const keys = ['shop/view', 'shop/view', 'shop/cart', 'shop/cart', 'shop/buy', 'shop/refund', 'track/page', 'track/page'];
    let sent = 0;
    // One request at a time: the point is the order each user's events arrive in, not load.
    for (let u = 0; u < 24; u++) {
      let ts = T0 + u * 60_000;
      for (let i = 0; i < 14; i++) {
        const path = keys[Math.floor(rand() * keys.length)]!;
        // Mostly forward, sometimes a long gap (windows expire), sometimes back in time (out of order).
        const r = rand();
        ts += r < 0.1 ? -120_000 : r < 0.25 ? 700_000 : Math.floor(rand() * 200_000);
        const body = JSON.stringify({ data: { price: Math.floor(rand() * 200), plan: rand() < 0.5 ? 'pro' : 'free' } });
        // A 503 (storage backlog on the small test server) was refused before the actor: send it again.
        for (;;) {
          const res = await fetch(`${gw.url}/${path}/${PROJECT}?uid=fu-${u}&ts=${ts}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
          if (res.status === 503) { await new Promise((r) => setTimeout(r, 100)); continue; }
          expect(res.status, await res.text()).toBe(200);
          break;
        }
        sent++;
      }
    }
    const store = await gw.storage.store.get();
    const events = `\`${store.database}\`.events`;
    const count = async (sql: string): Promise<number> => Number((await store.query<{ n: string }>(sql))[0]?.n ?? 0);
    await waitFor('every event stored', async () => (await count(`SELECT count() AS n FROM ${events} FINAL WHERE project_id = ${PROJECT} AND channel = 'gen'`)) === sent);
    let last = -1;
    await waitFor('the derived events stored', async () => {
      const n = await count(`SELECT count() AS n FROM ${events} FINAL WHERE project_id = ${PROJECT} AND channel = 'sys'`);
      const settled = n === last;
      last = n;
      return settled;
    }, 20_000, 300);

    for (const name of ['checkout', 'explore']) {
      const step = store.capabilities.modern ? "toUInt32OrZero(props['step'])" : "toUInt32OrZero(visitParamExtractRaw(props, 'step'))";
      const live = await store.query<{ step: number | string; reached: string; users: string }>(
        `SELECT ${step} AS step, count() AS reached, uniqExact(uid) AS users FROM ${events} FINAL WHERE project_id = ${PROJECT} AND key = 'in.sys.funnel.${name}' GROUP BY step ORDER BY step`);
      const res = await get(`/api/v1/query/funnel?funnel=${name}&project=${PROJECT}&from=${T0 - 86_400_000}&to=${T0 + 86_400_000}`);
      expect(res.status).toBe(200);
      const body = await res.json() as { tables: { rows: { step: number; reached: number; users: number }[] }[]; meta: { order: string } };
      // Every event was stamped by its actor: read in the order the actors processed them.
      expect(body.meta.order).toBe('arrival');
      const fromQuery = body.tables[0]!.rows.filter((r) => r.reached > 0).map((r) => ({ step: r.step, reached: r.reached, users: r.users }));
      expect(fromQuery).toEqual(live.map((l) => ({ step: Number(l.step), reached: Number(l.reached), users: Number(l.users) })));
      expect(fromQuery.length).toBeGreaterThanOrEqual(2);
    }
  });

  it('segments export as CSV', async () => {
    const res = await get(`/api/v1/query/segments?project=${PROJECT}&from=${T0 - 86_400_000}&to=${T0 + 86_400_000}&did=in.gen.shop.buy:2&format=csv`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    const lines = (await res.text()).trimEnd().split('\r\n');
    expect(lines[0]).toBe('uid,user_id,events,first_seen,last_seen');
    expect(lines.length).toBeGreaterThan(1);
    expect(lines.slice(1).every((l) => /^fu-\d+,,\d+,2026-/.test(l))).toBe(true);
  });
});
