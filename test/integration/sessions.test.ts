import { afterEach, describe, expect, inject, it } from 'vitest';
import { startGateway, TestClient, track as rpcTrack, type TestGateway } from '../support/gateway.js';
import { waitFor } from '../support/storage.js';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver.js';

/**
 * Sessions, identity and dedup through the whole engine: events over real
 * HTTP, the real session actor, stored in the shared ClickHouse server and
 * read back with plain SQL over its HTTP interface (so rows written during
 * shutdown can be read after the engine has stopped).
 */

const MIN = 60_000;
const T0 = Date.now() - 6 * 60 * MIN; // client time: six hours ago

async function sql<T>(database: string, query: string): Promise<T[]> {
  const res = await fetch(`${inject('clickhouseUrl')}/?database=${database}`, { method: 'POST', body: `${query} FORMAT JSON` });
  if (!res.ok) throw new Error(`${res.status}: ${await res.text()}`);
  return ((await res.json()) as { data: T[] }).data;
}

let gw: TestGateway | null = null;
let hooks: WebhookReceiver | null = null;
afterEach(async () => {
  await gw?.stop('test over');
  gw = null;
  await hooks?.close();
  hooks = null;
});

async function start(overrides: Record<string, unknown> = {}): Promise<{ gw: TestGateway; db: string }> {
  gw = await startGateway('uws', { storage: { flushMs: 100 }, ...overrides });
  const store = await gw.storage.store.get();
  return { gw, db: store.database };
}

async function track(g: TestGateway, path: string, params: Record<string, string | number>): Promise<{ id: string }> {
  const q = new URLSearchParams(Object.entries(params).map(([k, v]): [string, string] => [k, String(v)]));
  const res = await fetch(`${g.url}${path}?${q.toString()}`);
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as { id: string };
}

interface EventRow { key: string; session_id: string; seq: number; page_seq: number; user_id: string; page_url: string }

describe('sessions through the engine', () => {
  it('assigns session id, seq and page seq; an idle gap starts a new session and writes the old one\'s end', async () => {
    const { gw: g, db } = await start();
    const uid = 'sess-user-1';
    await track(g, '/track/page', { uid, ts: T0, url: 'https://shop.example/landing?utm_source=newsletter' });
    await track(g, '/track/click', { uid, ts: T0 + MIN, url: 'https://shop.example/landing' });
    await track(g, '/track/page', { uid, ts: T0 + 2 * MIN, url: 'https://shop.example/p/1' });
    // 40 minutes later by the client's clock: a new session.
    await track(g, '/track/page', { uid, ts: T0 + 42 * MIN, url: 'https://shop.example/p/2' });

    const rows = await waitFor('7 events stored', async () => {
      const r = await sql<EventRow>(db, `SELECT key, session_id, seq, page_seq, user_id, page_url FROM events FINAL WHERE uid = '${uid}' AND key != 'in.sys.churn.score' ORDER BY ts, seq`);
      return r.length === 7 ? r : undefined;
    });
    const first = rows[0]!.session_id;
    const second = rows[6]!.session_id;
    expect(first).not.toBe(second);
    expect(rows.map((r) => [r.key, r.session_id === first ? 1 : 2, Number(r.seq), Number(r.page_seq)])).toEqual([
      ['in.sys.session.start', 1, 0, 1],
      ['in.gen.track.page', 1, 1, 1],
      ['in.gen.track.click', 1, 2, 1],
      ['in.gen.track.page', 1, 3, 2],
      ['in.sys.session.end', 1, 3, 2],
      ['in.sys.session.start', 2, 0, 1],
      ['in.gen.track.page', 2, 1, 1],
    ]);
    // The sessions table has batches of its own: wait for the second session's start row and the first's end.
    const sessions = await waitFor('both sessions stored', async () => {
      const r = await sql<Record<string, unknown>>(db, `SELECT session_id, events, pages, duration_ms, landing_page, exit_page, utm_source FROM sessions FINAL WHERE uid = '${uid}' ORDER BY started_at`);
      return r.length === 2 && r[0]!.events === 3 ? r : undefined;
    });
    expect(sessions).toEqual([
      { session_id: first, events: 3, pages: 2, duration_ms: String(2 * MIN), landing_page: 'https://shop.example/landing?utm_source=newsletter', exit_page: 'https://shop.example/p/1', utm_source: 'newsletter' },
      { session_id: second, events: 1, pages: 1, duration_ms: '0', landing_page: 'https://shop.example/p/2', exit_page: 'https://shop.example/p/2', utm_source: '' },
    ]);
  });

  it('shutdown passivates the actor, which writes the open session\'s end', async () => {
    const { gw: g, db } = await start();
    const uid = 'sess-user-2';
    await track(g, '/track/page', { uid, ts: T0 });
    await track(g, '/track/page', { uid, ts: T0 + 5 * MIN });
    await g.stop('test over');
    gw = null;
    const ends = await sql<{ seq: number; props: string }>(db, `SELECT seq, props FROM events FINAL WHERE uid = '${uid}' AND key = 'in.sys.session.end'`);
    expect(ends).toHaveLength(1);
    expect(Number(ends[0]!.seq)).toBe(2);
    expect(JSON.parse(ends[0]!.props)).toMatchObject({ duration_ms: 5 * MIN, events: 2, pages: 2 });
  });

  it('identify links the uid to a user id: an identities row, and later events carry user_id; alias is recorded', async () => {
    const { gw: g, db } = await start();
    const uid = 'sess-user-3';
    await track(g, '/track/page', { uid, ts: T0 });
    await track(g, '/user/identify', { uid, ts: T0 + MIN, userId: 'customer-42', plan: 'pro' });
    await track(g, '/track/page', { uid, ts: T0 + 2 * MIN });
    await track(g, '/user/alias', { uid, ts: T0 + 3 * MIN, previousId: 'anon-cookie-7' });
    const rows = await waitFor('4 events stored', async () => {
      const r = await sql<EventRow>(db, `SELECT key, user_id FROM events FINAL WHERE uid = '${uid}' AND channel = 'gen' ORDER BY ts`);
      return r.length === 4 ? r : undefined;
    });
    expect(rows.map((r) => [r.key, r.user_id])).toEqual([
      ['in.gen.track.page', ''],
      ['in.gen.user.identify', 'customer-42'],
      ['in.gen.track.page', 'customer-42'],
      ['in.gen.user.alias', 'customer-42'],
    ]);
    const ids = await waitFor('2 identities stored', async () => {
      const r = await sql<{ kind: string; external_id: string }>(db, `SELECT kind, external_id FROM identities FINAL WHERE uid = '${uid}' ORDER BY kind`);
      return r.length >= 2 ? r : undefined;
    });
    expect(ids).toEqual([{ kind: 'alias', external_id: 'anon-cookie-7' }, { kind: 'identify', external_id: 'customer-42' }]);
  });

  it('a repeated client event id is acknowledged with the same id and processed once', async () => {
    const { gw: g, db } = await start();
    const uid = 'sess-user-4';
    const a = await track(g, '/track/page', { uid, ts: T0, id: 'client-evt-1' });
    const b = await track(g, '/track/page', { uid, ts: T0, id: 'client-evt-1' });
    await track(g, '/track/page', { uid, ts: T0 + MIN, id: 'client-evt-2' });
    expect(b.id).toBe(a.id);
    const metrics = await (await fetch(`${g.url}/metrics`)).text();
    expect(metrics).toContain('flowstat_duplicate_events_total{by="client_id"} 1');
    const rows = await waitFor('2 events stored', async () => {
      const r = await sql<EventRow>(db, `SELECT seq FROM events WHERE uid = '${uid}' AND channel = 'gen' ORDER BY seq`);
      return r.length >= 2 ? r : undefined;
    });
    // Not FINAL: the repeat was not even written again.
    expect(rows.map((r) => Number(r.seq))).toEqual([1, 2]);
  });

  it('funnel steps become in.sys.funnel events, and a session\'s end scores churn', async () => {
    const { gw: g, db } = await start({
      funnels: [{ name: 'cart', mode: 'ordered', windowMs: 3_600_000, steps: [{ pattern: 'in.gen.track.page' }, { pattern: 'in.gen.shop.add_to_cart', filters: [{ field: 'data.price', op: 'gte', value: 10 }] }] }],
    });
    const uid = 'sess-user-5';
    await track(g, '/track/page', { uid, ts: T0 });
    const cart = async (ts: number, price: number): Promise<void> => {
      const res = await fetch(`${g.url}/shop/add_to_cart`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ uid, ts, data: { price } }) });
      expect(res.status).toBe(200);
    };
    await cart(T0 + MIN, 5); // filtered out
    await cart(T0 + 2 * MIN, 25); // step 2: converted
    await g.stop('test over');
    gw = null;
    const steps = await sql<{ props: string }>(db, `SELECT props FROM events FINAL WHERE uid = '${uid}' AND key = 'in.sys.funnel.cart' ORDER BY ts, seq`);
    expect(steps.map((r) => JSON.parse(r.props) as Record<string, unknown>)).toEqual([
      { step: 0, step_name: 'step_0', steps: 2, since_start_ms: 0, converted: false },
      { step: 1, step_name: 'step_1', steps: 2, since_start_ms: 2 * MIN, converted: true },
    ]);
    const churn = await sql<{ props: string }>(db, `SELECT props FROM events FINAL WHERE uid = '${uid}' AND key = 'in.sys.churn.score'`);
    expect(churn).toHaveLength(1);
    const score = JSON.parse(churn[0]!.props) as { score: number; activity: number; crossed: boolean };
    expect(score.score).toBeGreaterThan(0);
    expect(score.score).toBeLessThan(1);
    expect(score.activity).toBeGreaterThan(0);
  });

  it('derived events carry their event\'s session context (who, session, page, device, source), not its raw request', async () => {
    const { gw: g, db } = await start({ funnels: [{ name: 'land', steps: [{ pattern: 'in.gen.track.page' }, { pattern: 'in.gen.shop.buy' }] }] });
    const uid = 'sess-user-derived';
    const chrome = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36';
    const q = new URLSearchParams({
      uid, ts: String(T0), url: 'https://shop.example/landing?utm_source=newsletter&utm_medium=email&utm_campaign=spring&utm_term=shoes',
      ref: 'https://www.google.com/search?q=shoes', title: 'Spring sale',
    });
    const res = await fetch(`${g.url}/track/page?${q.toString()}`, { headers: { 'user-agent': chrome } });
    expect(res.status, await res.clone().text()).toBe(200);
    await g.stop('test over');
    gw = null;

    const columns = 'key, channel, uid, session_id, seq, ts, page_url, ua_browser, ua_os, ua_device_type, source_type, utm_source, utm_medium, utm_campaign, ' +
      'is_bot, arrival, ua, page_title, page_referrer, utm_term, ua_browser_version';
    const rows = await sql<Record<string, unknown>>(db, `SELECT ${columns} FROM events FINAL WHERE uid = '${uid}' AND key IN ('in.gen.track.page', 'in.sys.session.start', 'in.sys.funnel.land')`);
    const byKey = new Map(rows.map((r) => [r.key as string, r]));
    const page = byKey.get('in.gen.track.page')!;
    // The source event has it all: the enrichers ran on it.
    expect(page).toMatchObject({ ua_browser: 'Chrome', ua_os: 'Windows', ua_device_type: 'desktop', utm_source: 'newsletter', utm_term: 'shoes', ua: chrome, page_title: 'Spring sale' });
    const context = ['uid', 'session_id', 'page_url', 'ua_browser', 'ua_os', 'ua_device_type', 'source_type', 'utm_source', 'utm_medium', 'utm_campaign', 'is_bot', 'arrival', 'ts'] as const;
    for (const key of ['in.sys.session.start', 'in.sys.funnel.land']) {
      const derived = byKey.get(key);
      expect(derived, key).toBeDefined();
      expect(derived!.channel).toBe('sys');
      for (const c of context) expect(derived![c], `${key} ${c}`).toEqual(page[c]);
      // The raw request and the finer enrichment stay on the source row (found by session_id + seq).
      expect(derived).toMatchObject({ ua: '', page_title: '', page_referrer: '', utm_term: '', ua_browser_version: '' });
    }
    expect(byKey.get('in.sys.funnel.land')!.seq).toBe(page.seq);
    expect(byKey.get('in.sys.session.start')!.seq).toBe(0);
  });

  it('a funnel config error stops the engine from starting, naming the path', async () => {
    await expect(startGateway('uws', { funnels: [{ name: 'Bad Name', steps: [] }] })).rejects.toThrow(/funnels\[0\]\.name/);
  });

  it('funnel actions: a step pushes to every open WebSocket of the user and adds its reply data to the answer', async () => {
    const { gw: g } = await start({
      funnels: [{
        name: 'cart', mode: 'ordered', windowMs: 3_600_000,
        steps: [{ pattern: 'in.gen.track.page' }, {
          pattern: 'in.gen.shop.add_to_cart',
          actions: [{ type: 'push', params: { offer: 'free-shipping' } }, { type: 'reply', data: { coupon: 'CART10' } }],
        }],
      }],
    });
    const tab = await TestClient.connect(`${g.wsUrl}?uid=funnel-user`);
    const otherTab = await TestClient.connect(`${g.wsUrl}?uid=funnel-user`);
    const stranger = await TestClient.connect(`${g.wsUrl}?uid=someone-else`);
    try {
      const first = await tab.call(rpcTrack(1)) as { result: Record<string, unknown> };
      expect(first.result).not.toHaveProperty('coupon');
      tab.sendJson(rpcTrack(2, { service: 'shop', name: 'add_to_cart' }));
      const got = [await tab.next(), await tab.next()] as Record<string, unknown>[];
      const push = { jsonrpc: '2.0', method: 'push', params: { offer: 'free-shipping' } };
      expect(got.find((m) => m.method === 'push')).toEqual(push);
      expect(got.find((m) => m.id === 2)).toMatchObject({ result: { key: 'in.gen.shop.add_to_cart', uid: 'funnel-user', coupon: 'CART10' } });
      expect(await otherTab.next()).toEqual(push);
      await expect(stranger.next(300)).rejects.toThrow('no message');
      const metrics = await (await fetch(`${g.url}/metrics`)).text();
      expect(metrics).toContain('flowstat_pushes_total{counted="deliveries"} 2');
    } finally {
      for (const c of [tab, otherTab, stranger]) c.close();
    }
  });

  it('funnel webhook action: the derived step event is POSTed to the configured URL', async () => {
    hooks = await startWebhookReceiver([503]); // the first attempt fails: retried
    const { gw: g } = await start({
      webhooks: { backoffMs: 50 },
      funnels: [{ name: 'signup', steps: [{ pattern: 'in.gen.track.page' }, { pattern: 'in.gen.user.signup', actions: [{ type: 'webhook', url: hooks.url }] }] }],
    });
    const uid = 'webhook-user';
    await track(g, '/track/page', { uid });
    await track(g, '/user/signup', { uid, plan: 'pro' });
    await waitFor('webhook delivered', async () => hooks!.received.length === 2);
    const bodies = hooks.received.map((r) => JSON.parse(r.body) as Record<string, unknown>);
    expect(bodies[0]).toEqual(bodies[1]);
    expect(bodies[0]).toMatchObject({ key: 'in.sys.funnel.signup', uid, project_id: 1, props: { step: 1, converted: true } });
    expect(hooks.received[1]!.headers['idempotency-key']).toBe(bodies[0]!.id);
    const metrics = await (await fetch(`${g.url}/metrics`)).text();
    expect(metrics).toContain('flowstat_webhooks_total{result="delivered"} 1');
    expect(metrics).toContain('flowstat_webhooks_total{result="retried"} 1');
  });

  it('abandonment timer: cart reached, no checkout in time → push over the WebSocket, webhook, in.sys.abandon event', async () => {
    hooks = await startWebhookReceiver();
    const { gw: g, db } = await start({
      actors: { tickMs: 100 },
      funnels: [{
        name: 'checkout',
        steps: [{ name: 'view', pattern: 'in.gen.track.page' }, { name: 'cart', pattern: 'in.gen.shop.cart' }, { name: 'buy', pattern: 'in.gen.shop.buy' }],
        abandon: { afterMs: 1_000, fromStep: 1, actions: [{ type: 'push', params: { offer: 'free-shipping' } }, { type: 'webhook', url: hooks.url }] },
      }],
    });
    const tab = await TestClient.connect(`${g.wsUrl}?uid=cart-user`);
    const buyer = await TestClient.connect(`${g.wsUrl}?uid=buyer`);
    try {
      for (const c of [tab, buyer]) {
        await c.call(rpcTrack(1));
        await c.call(rpcTrack(2, { service: 'shop', name: 'cart' }));
      }
      await buyer.call(rpcTrack(3, { service: 'shop', name: 'buy' }));
      const sentAt = Date.now();
      expect(await tab.next(5_000)).toEqual({ jsonrpc: '2.0', method: 'push', params: { offer: 'free-shipping' } });
      expect(Date.now() - sentAt).toBeGreaterThanOrEqual(700);
      // The buyer converted in time: nothing comes.
      await expect(buyer.next(500)).rejects.toThrow('no message');
      await waitFor('webhook delivered', async () => hooks!.received.length === 1);
      expect(JSON.parse(hooks.received[0]!.body)).toMatchObject({ key: 'in.sys.abandon.checkout', uid: 'cart-user', props: { step: 1, step_name: 'cart', steps: 3, reached: 2 } });
      const rows = await waitFor('abandon event stored', async () => {
        const r = await sql<{ uid: string; session_id: string; props: string }>(db, `SELECT uid, session_id, props FROM events FINAL WHERE key = 'in.sys.abandon.checkout'`);
        return r.length === 1 ? r : undefined;
      });
      expect(rows[0]!.uid).toBe('cart-user');
      expect(rows[0]!.session_id).not.toBe('');
      const metrics = await (await fetch(`${g.url}/metrics`)).text();
      expect(metrics).toContain('flowstat_handler_events_total{event="funnel_abandoned"} 1');
    } finally {
      tab.close();
      buyer.close();
    }
  });

  it('churn threshold: when a user\'s score crosses it while away, a push reaches their open WebSocket and a webhook is POSTed', async () => {
    hooks = await startWebhookReceiver();
    const { gw: g, db } = await start({
      // The session ends when the idle actor is passivated (half a second); the score then rises by
      // one logit per second of absence (recencyPerDay = 86 400) from 1/(1+e) and crosses 0.8 about 2.4 s later.
      actors: { tickMs: 100, idleTimeoutMs: 500 },
      churn: {
        threshold: 0.8,
        coefficients: { intercept: -1, recencyPerDay: 86_400, frequency: 0, sessionMinutes: 0, funnelProgress: 0 },
        actions: [{ type: 'push', params: { offer: 'win-back' } }, { type: 'webhook', url: hooks.url }],
      },
    });
    const uid = 'churning-user';
    const tab = await TestClient.connect(`${g.wsUrl}?uid=${uid}`);
    try {
      await tab.call(rpcTrack(1));
      const lastEventAt = Date.now();
      expect(await tab.next(10_000)).toEqual({ jsonrpc: '2.0', method: 'push', params: { offer: 'win-back' } });
      // Not before the model says: a score of 0.8 needs ln(4) + 1 ≈ 2.4 s of absence.
      expect(Date.now() - lastEventAt).toBeGreaterThanOrEqual(2_000);
      await waitFor('webhook delivered', async () => hooks!.received.length === 1);
      const body = JSON.parse(hooks.received[0]!.body) as { key: string; uid: string; props: { score: number; crossed: boolean } };
      expect(body).toMatchObject({ key: 'in.sys.churn.score', uid, props: { crossed: true } });
      expect(body.props.score).toBeGreaterThanOrEqual(0.8);
      const scores = await waitFor('both scores stored', async () => {
        const r = await sql<{ props: string }>(db, `SELECT props FROM events FINAL WHERE uid = '${uid}' AND key = 'in.sys.churn.score' ORDER BY ts`);
        return r.length === 2 ? r.map((x) => JSON.parse(x.props) as { score: number; crossed: boolean }) : undefined;
      });
      // At the session's end (not crossed, low), then at the crossing.
      expect(scores.map((x) => x.crossed)).toEqual([false, true]);
      expect(scores[0]!.score).toBeLessThan(0.8);
      // Once per crossing: nothing more while the user stays away.
      await expect(tab.next(1_500)).rejects.toThrow('no message');
    } finally {
      tab.close();
    }
  });

  it('every stored event carries its actor\'s arrival stamp: strictly increasing per user, within one batch and across passivation', async () => {
    const { gw: g, db } = await start({ actors: { tickMs: 100, idleTimeoutMs: 300 } });
    const uid = 'arrival-user';
    const tab = await TestClient.connect(`${g.wsUrl}?uid=${uid}`);
    // One frame of 30: processed within a millisecond or two, so the stamps must be more than the clock.
    const batch = Array.from({ length: 30 }, (_, i) => rpcTrack(i + 1, { ts: T0 + i, data: { n: i } }));
    tab.sendJson(batch);
    const replies = await tab.next() as unknown[];
    expect(replies).toHaveLength(30);
    tab.close();
    await waitFor('actor passivated', async () => g.engine.system.stats().passivated >= 1 && g.engine.system.stats().live === 0);
    await track(g, '/track/page', { uid, ts: T0 + 100, n: 30 });
    expect(g.engine.system.stats().restored).toBe(1);
    const modern = (await g.storage.store.get()).capabilities.modern;
    const n = modern ? "toUInt32(props['n'])" : "toUInt32(replaceAll(visitParamExtractRaw(props, 'n'), '\"', ''))";
    const rows = await waitFor('31 events stored', async () => {
      const r = await sql<{ n: number; arrival: string; received_at: string }>(db,
        `SELECT ${n} AS n, toString(arrival) AS arrival, toString(${modern ? 'toUnixTimestamp64Milli(received_at)' : 'received_at'}) AS received_at FROM events FINAL WHERE uid = '${uid}' AND channel = 'gen' ORDER BY arrival`);
      return r.length === 31 ? r : undefined;
    });
    // Ordered by the stamp, the events are in the order they were sent, and no two share one.
    expect(rows.map((r) => Number(r.n))).toEqual(Array.from({ length: 31 }, (_, i) => i));
    expect(new Set(rows.map((r) => r.arrival)).size).toBe(31);
    // A stamp is never less than its event's server receive time in ms × 1024.
    for (const r of rows) expect(BigInt(r.arrival) >= BigInt(r.received_at) * 1024n, JSON.stringify(r)).toBe(true);
    // The derived events of the user are stamped too (session start copies its event's, the end has its own).
    const unstamped = await sql<{ n: string }>(db, `SELECT count() AS n FROM events FINAL WHERE uid = '${uid}' AND arrival = 0`);
    expect(Number(unstamped[0]!.n)).toBe(0);
  });

  it('funnel state survives passivation: an attempt begun before the actor left memory converts after it comes back', async () => {
    const { gw: g, db } = await start({
      actors: { tickMs: 100, idleTimeoutMs: 300 },
      funnels: [{ name: 'signup', steps: [{ pattern: 'in.gen.track.page' }, { pattern: 'in.gen.user.signup' }] }],
    });
    const uid = 'passivated-funnel-user';
    await track(g, '/track/page', { uid, ts: T0 });
    await waitFor('actor passivated', async () => g.engine.system.stats().passivated >= 1 && g.engine.system.stats().live === 0);
    await track(g, '/user/signup', { uid, ts: T0 + 5 * MIN });
    expect(g.engine.system.stats().restored).toBe(1);
    const steps = await waitFor('both steps stored', async () => {
      const r = await sql<{ props: string }>(db, `SELECT props FROM events FINAL WHERE uid = '${uid}' AND key = 'in.sys.funnel.signup' ORDER BY ts`);
      return r.length === 2 ? r.map((x) => JSON.parse(x.props) as Record<string, unknown>) : undefined;
    });
    expect(steps).toEqual([
      { step: 0, step_name: 'step_0', steps: 2, since_start_ms: 0, converted: false },
      { step: 1, step_name: 'step_1', steps: 2, since_start_ms: 5 * MIN, converted: true },
    ]);
  });
});
