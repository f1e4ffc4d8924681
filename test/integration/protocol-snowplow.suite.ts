import { randomUUID } from 'node:crypto';
import {
  buildEcommerceTransaction, buildEcommerceTransactionItem, buildPagePing, buildPageView, buildSelfDescribingEvent, buildStructEvent, newTracker,
  type EventBatch, type RequestFailure,
} from '@snowplow/node-tracker';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { PIXEL_GIF } from '../../gateway/http/pixel.js';
import type { ClickHouseStore } from '../../sinks/index.js';
import { SERVERS, startGateway, uniqueDatabase, type ServerKind, type TestGateway } from '../support/gateway.js';
import { type Backend, clickhouseFor, count, propsOf, readBack, serverStore, waitFor } from '../support/storage.js';

/**
 * The Snowplow tracker protocol, driven by Snowplow's own Node tracker
 * (@snowplow/node-tracker: POST tp2 batches, and GET /i with
 * eventMethod "get") against the running engine over real sockets, then the
 * rows looked up in ClickHouse; ids, cookies, timestamps, CORS and the error
 * behaviour with raw requests built per the tracker protocol. Both server
 * implementations.
 */

const APP = 'shop-web';
const PROJECT = 11;
const ORIGIN = 'https://shop.example.com';
const TP2 = '/com.snowplowanalytics.snowplow/tp2';
const PAYLOAD_DATA = 'iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4';
const USER_CONTEXT = { schema: 'iglu:com.acme/user_context/jsonschema/1-0-0', data: { tier: 'gold' } };

interface EventRow {
  key: string; uid: string; user_id: string; event_id: string; ts_ms: string; received_ms: string;
  page_url: string; page_title: string; page_referrer: string; ua: string; ip: string; props: string;
}

export function snowplowSuite(backend: Backend, servers: readonly ServerKind[] = SERVERS): void {
describe.each(servers)(`protocols - Snowplow (%s, ${backend})`, (server) => {
  let gw: TestGateway;
  let store: ClickHouseStore;
  const database = uniqueDatabase('sp');
  const events = async (where: string): Promise<EventRow[]> => store.query<EventRow>(
    `SELECT key, uid, user_id, toString(event_id) AS event_id, toString(toUnixTimestamp64Milli(ts)) AS ts_ms, toString(toUnixTimestamp64Milli(received_at)) AS received_ms,
       page_url, page_title, page_referrer, ua, toString(ip) AS ip, toJSONString(props) AS props
     FROM ${database}.events FINAL WHERE project_id = ${PROJECT} AND key LIKE 'in.sp.%' AND ${where} ORDER BY ts`,
  ).catch(async () => store.query<EventRow>(
    // ClickHouse 18.16: ts is UInt64 ms, props already JSON text.
    `SELECT key, uid, user_id, toString(event_id) AS event_id, toString(ts) AS ts_ms, toString(received_at) AS received_ms,
       page_url, page_title, page_referrer, ua, ip, props FROM ${database}.events FINAL WHERE project_id = ${PROJECT} AND key LIKE 'in.sp.%' AND ${where} ORDER BY ts`,
  ));
  const deadLetters = async (): Promise<{ code: string; reason: string; payload: string }[]> =>
    store.query(`SELECT code, reason, payload FROM ${database}.dead_letters WHERE source = 'gateway:sp' ORDER BY at`);

  beforeAll(async () => {
    gw = await startGateway(server, {
      clickhouse: clickhouseFor(backend, database),
      storage: { flushMs: 50 },
      gateway: {
        protocols: { snowplow: { appIds: { [APP]: PROJECT } } },
        cors: { origins: [ORIGIN] },
        cookie: { domain: 'example.com' },
        // So a test can say it came over https (X-Forwarded-Proto) for the cookie's Secure flag.
        trustedProxies: ['127.0.0.1'],
      },
    });
    store = await readBack(backend, gw, database);
  });
  afterAll(async () => {
    if (backend === 'server') await store?.close();
    await gw?.stop('test over');
  });

  const tp2 = (body: unknown, headers: Record<string, string> = {}): Promise<Response> => fetch(`${gw.url}${TP2}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json; charset=UTF-8', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const batch = (...data: unknown[]): { schema: string; data: unknown[] } => ({ schema: PAYLOAD_DATA, data });

  it('Snowplow - page views, structured and self-describing events with contexts from @snowplow/node-tracker are stored under in.sp.* keys', async () => {
    const statuses: number[] = [];
    let sent = 0;
    const failures: RequestFailure[] = [];
    const tracker = newTracker({ namespace: 'sp-test', appId: APP }, {
      endpoint: gw.url,
      onRequestSuccess: (sentBatch: EventBatch, res: Response) => { statuses.push(res.status); sent += sentBatch.length; },
      onRequestFailure: (failure: RequestFailure) => failures.push(failure),
    });
    const duid = `duid-${server}-1`;
    const sessionId = randomUUID();
    tracker.setDomainUserId(duid);
    tracker.setUserId(`user-${server}`);
    tracker.setSessionId(sessionId);
    tracker.setSessionIndex(3);
    tracker.setIpAddress('81.2.69.160');
    tracker.setUseragent('Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0');
    tracker.track(buildPageView({ pageUrl: 'https://shop.example.com/pricing', pageTitle: 'Pricing — Shop', referrer: 'https://search.example.org/' }), [USER_CONTEXT]);
    tracker.track(buildStructEvent({ category: 'Checkout', action: 'Add To Cart', label: 'sku-1', property: 'blue', value: 2 }));
    tracker.track(buildSelfDescribingEvent({ event: { schema: 'iglu:com.acme/video_played/jsonschema/1-0-0', data: { videoId: 'v-1', seconds: 12 } } }), [USER_CONTEXT]);
    tracker.track(buildPagePing({ pageUrl: 'https://shop.example.com/pricing', minXOffset: 5, maxXOffset: 10, minYOffset: 100, maxYOffset: 400 }));
    // The tracker stores events asynchronously: let them land in its buffer (it holds ten) before flushing.
    await new Promise((r) => setTimeout(r, 50));
    await tracker.flush();
    await waitFor('the tracker to send the four events', async () => sent >= 4 || failures.length > 0, 10_000, 20);
    expect(failures).toEqual([]);
    expect(sent).toBe(4);
    // POST tp2 batches (the four in one or two requests), each answered 200.
    expect(statuses.length).toBeGreaterThanOrEqual(1);
    expect(statuses.every((s) => s === 200)).toBe(true);

    const rows = await waitFor('the four events in ClickHouse', async () => {
      const r = await events(`uid = '${duid}'`);
      return r.length >= 4 ? r : null;
    });
    expect(rows.map((r) => r.key).sort()).toEqual(['in.sp.struct.checkout_add_to_cart', 'in.sp.track.page_ping', 'in.sp.track.page_view', 'in.sp.unstruct.video_played']);
    for (const r of rows) {
      expect(r.user_id).toBe(`user-${server}`);
      // The ip the tracker reported, not the request's (127.0.0.1); stored anonymized (the default).
      expect(r.ip).toContain('81.2.69.0');
      expect(r.ua).toContain('Firefox/120.0');
      expect(propsOf(r)).toMatchObject({ appId: APP, sessionId, sessionIndex: '3', domainUserId: duid, platform: 'srv', trackerNamespace: 'sp-test' });
    }
    const view = rows.find((r) => r.key === 'in.sp.track.page_view')!;
    expect(view).toMatchObject({ page_url: 'https://shop.example.com/pricing', page_title: 'Pricing — Shop', page_referrer: 'https://search.example.org/' });
    expect(propsOf(view).contexts).toEqual([USER_CONTEXT]);
    const struct = propsOf(rows.find((r) => r.key === 'in.sp.struct.checkout_add_to_cart')!);
    expect(struct).toMatchObject({ category: 'Checkout', action: 'Add To Cart', label: 'sku-1', property: 'blue', value: '2' });
    const video = propsOf(rows.find((r) => r.key === 'in.sp.unstruct.video_played')!);
    expect(video).toMatchObject({ videoId: 'v-1', seconds: '12', schema: 'iglu:com.acme/video_played/jsonschema/1-0-0', contexts: [USER_CONTEXT] });
    const ping = propsOf(rows.find((r) => r.key === 'in.sp.track.page_ping')!);
    expect(ping).toMatchObject({ minXOffset: '5', maxXOffset: '10', minYOffset: '100', maxYOffset: '400' });
    // The tracker's event ids are ours.
    const eids = rows.map((r) => r.event_id);
    expect(new Set(eids).size).toBe(4);
  });

  it('Snowplow - the tracker over GET /i (eventMethod "get", no base64: ue_pr and co) gets the pixel; a raw GET /i too', async () => {
    const contentTypes: (string | null)[] = [];
    const failures: RequestFailure[] = [];
    const tracker = newTracker({ namespace: 'sp-get', appId: APP, encodeBase64: false }, {
      endpoint: gw.url,
      eventMethod: 'get',
      bufferSize: 1,
      onRequestSuccess: (_batch: EventBatch, res: Response) => contentTypes.push(res.headers.get('content-type')),
      onRequestFailure: (failure: RequestFailure) => failures.push(failure),
    });
    const duid = `duid-${server}-get`;
    tracker.setDomainUserId(duid);
    tracker.track(buildSelfDescribingEvent({ event: { schema: 'iglu:com.acme/newsletter_signup/jsonschema/1-0-0', data: { list: 'weekly' } } }), [USER_CONTEXT]);
    tracker.track(buildPageView({ pageUrl: 'https://shop.example.com/thanks', pageTitle: 'Thanks' }));
    await tracker.flush();
    await waitFor('the tracker to send both events', async () => contentTypes.length >= 2 || failures.length > 0, 10_000, 20);
    expect(failures).toEqual([]);
    expect(contentTypes).toEqual(['image/gif', 'image/gif']);

    const pixel = await fetch(`${gw.url}/i?e=pv&aid=${APP}&duid=${duid}&url=${encodeURIComponent('https://shop.example.com/raw-get')}&page=Raw&tv=raw-1&lang=de-DE`);
    expect(pixel.status).toBe(200);
    expect(pixel.headers.get('content-type')).toBe('image/gif');
    expect(Buffer.from(await pixel.arrayBuffer())).toEqual(Buffer.from(PIXEL_GIF));

    const rows = await waitFor('the three GET events', async () => {
      const r = await events(`uid = '${duid}'`);
      return r.length >= 3 ? r : null;
    });
    const signup = rows.find((r) => r.key === 'in.sp.unstruct.newsletter_signup')!;
    expect(propsOf(signup)).toMatchObject({ list: 'weekly', contexts: [USER_CONTEXT] });
    expect(rows.filter((r) => r.key === 'in.sp.track.page_view').map((r) => r.page_url).sort())
      .toEqual(['https://shop.example.com/raw-get', 'https://shop.example.com/thanks']);
    const raw = rows.find((r) => r.page_url.endsWith('/raw-get'))!;
    // Fields the adapter does not map are kept as the tracker sent them.
    const rawProps = propsOf(raw);
    expect(rawProps).toMatchObject({ lang: 'de-DE', trackerVersion: 'raw-1' });
    expect(rawProps).not.toHaveProperty('tv');
    expect(raw.page_title).toBe('Raw');
  });

  it('Snowplow - SP-Anonymous (the tracker\'s serverAnonymization): no sp cookie read or set, the all-zero network user id, no IP kept', async () => {
    const setCookies: (string | null)[] = [];
    const failures: RequestFailure[] = [];
    const tracker = newTracker({ namespace: 'sp-anon', appId: APP }, {
      endpoint: gw.url,
      serverAnonymization: true,
      bufferSize: 1,
      onRequestSuccess: (_batch: EventBatch, res: Response) => setCookies.push(res.headers.get('set-cookie')),
      onRequestFailure: (failure: RequestFailure) => failures.push(failure),
    });
    const duid = `duid-${server}-anon`;
    tracker.setDomainUserId(duid);
    // Reported by the tracker, and still not kept: anonymous means no IP at all.
    tracker.setIpAddress('81.2.69.160');
    tracker.track(buildPageView({ pageUrl: 'https://shop.example.com/anon', pageTitle: 'Anon' }));
    await tracker.flush();
    await waitFor('the anonymous event to be sent', async () => setCookies.length >= 1 || failures.length > 0, 10_000, 20);
    expect(failures).toEqual([]);
    expect(setCookies).toEqual([null]);
    // A raw request with the header and an sp cookie: the cookie is neither used nor set again; no duid, so the all-zero id is the uid.
    const marker = `anon-raw-${server}`;
    const res = await tp2(batch({ e: 'pv', aid: APP, eid: randomUUID(), url: `https://shop.example.com/${marker}` }), { 'sp-anonymous': '*', cookie: 'sp=0f0e0d0c-known-cookie-id' });
    expect(res.status).toBe(200);
    expect(res.headers.get('set-cookie')).toBeNull();
    const zero = '00000000-0000-0000-0000-000000000000';
    const [tracked] = await waitFor('the tracker\'s anonymous event', async () => { const r = await events(`uid = '${duid}'`); return r.length >= 1 ? r : null; });
    expect(tracked!.ip).toMatch(/^(|::)$/);
    expect(propsOf(tracked!)).toMatchObject({ networkUserId: zero, domainUserId: duid });
    const [raw] = await waitFor('the raw anonymous event', async () => { const r = await events(`page_url LIKE '%${marker}'`); return r.length >= 1 ? r : null; });
    expect(raw!.uid).toBe(zero);
    expect(raw!.ip).toMatch(/^(|::)$/);
    expect(propsOf(raw!)).toMatchObject({ networkUserId: zero });
  });

  it('Snowplow - a repeated eid is acknowledged and stored once; ts is the true timestamp, else the derived one, never after receipt', async () => {
    const t0 = Date.now();
    const eid = randomUUID();
    const duid = `duid-${server}-dedup`;
    const retried = { e: 'se', aid: APP, duid, eid, se_ca: 'Dedup', se_ac: 'Once', dtm: String(t0 - 60_000), stm: String(t0 - 1_000) };
    for (let attempt = 0; attempt < 3; attempt++) {
      const res = await tp2(batch(retried));
      expect(res.status).toBe(200);
      expect(await res.text()).toBe('ok');
    }
    const ttm = t0 - 3_600_000;
    const res = await tp2(batch(
      { e: 'se', aid: APP, duid, eid: randomUUID(), se_ca: 'Clock', se_ac: 'True', ttm: String(ttm), dtm: String(t0 - 10), stm: String(t0) },
      { e: 'se', aid: APP, duid, eid: randomUUID(), se_ca: 'Clock', se_ac: 'Ahead', dtm: String(t0 + 3_600_000) },
    ));
    expect(res.status).toBe(200);
    const t1 = Date.now();

    const rows = await waitFor('the dedup and clock events', async () => {
      const r = await events(`uid = '${duid}'`);
      return r.length >= 3 ? r : null;
    });
    expect(await count(store, `SELECT count() AS n FROM ${database}.events FINAL WHERE key = 'in.sp.struct.dedup_once'`)).toBe(1);
    const once = rows.find((r) => r.key === 'in.sp.struct.dedup_once')!;
    expect(once.event_id).toBe(eid);
    // Derived: received − (stm − dtm) = received − 59 s, not the device's dtm (t0 − 60 s).
    expect(Number(once.ts_ms)).toBeGreaterThanOrEqual(t0 - 59_000);
    expect(Number(once.ts_ms)).toBeLessThanOrEqual(t1 - 59_000);
    expect(Number(rows.find((r) => r.key === 'in.sp.struct.clock_true')!.ts_ms)).toBe(ttm);
    const ahead = rows.find((r) => r.key === 'in.sp.struct.clock_ahead')!;
    expect(Number(ahead.ts_ms)).toBe(Number(ahead.received_ms));
  });

  it('Snowplow - the sp cookie is set on the first request, reused after, and is the uid of events without a duid; Secure behind https', async () => {
    const first = await tp2(batch({ e: 'pv', aid: APP, eid: randomUUID(), url: `https://shop.example.com/cookie-${server}-1` }));
    expect(first.status).toBe(200);
    const set = first.headers.getSetCookie().find((c) => c.startsWith('sp='))!;
    expect(set).toMatch(/^sp=[0-9a-f-]{36}; Path=\/; Max-Age=31536000; HttpOnly; Domain=example\.com; SameSite=Lax$/);
    const nuid = /^sp=([^;]+)/.exec(set)![1]!;

    const second = await tp2(batch({ e: 'pv', aid: APP, eid: randomUUID(), url: `https://shop.example.com/cookie-${server}-2` }), { cookie: `sp=${nuid}`, 'x-forwarded-proto': 'https' });
    expect(second.status).toBe(200);
    expect(second.headers.getSetCookie().find((c) => c.startsWith('sp='))).toBe(`sp=${nuid}; Path=/; Max-Age=31536000; HttpOnly; Domain=example.com; SameSite=None; Secure`);
    // The GET pixel sets it too.
    const pixel = await fetch(`${gw.url}/i?e=pv&aid=${APP}&url=${encodeURIComponent(`https://shop.example.com/cookie-${server}-3`)}`, { headers: { cookie: `other=1; sp=${nuid}` } });
    expect(pixel.headers.getSetCookie().find((c) => c.startsWith('sp='))).toMatch(new RegExp(`^sp=${nuid};`));

    const rows = await waitFor('the cookie events', async () => {
      const r = await events(`page_url LIKE 'https://shop.example.com/cookie-${server}-%'`);
      return r.length >= 3 ? r : null;
    });
    expect(rows.map((r) => r.uid)).toEqual([nuid, nuid, nuid]);
    expect(rows.map((r) => propsOf(r).networkUserId)).toEqual([nuid, nuid, nuid]);
  });

  it('Snowplow - malformed payloads are answered 200 (as the collector does) and kept in dead_letters; the valid events of a batch are stored', async () => {
    const bad = await tp2('{"schema": ');
    expect(bad.status).toBe(200);
    expect(await bad.text()).toBe('ok');
    expect((await tp2({ data: [{ e: 'pv' }] })).status).toBe(200);
    const mixed = await tp2(batch(
      { e: 'se', aid: APP, duid: `duid-${server}-mixed`, se_ca: 'Mixed', se_ac: 'Valid', eid: randomUUID() },
      { aid: APP, url: 'https://shop.example.com/no-type' },
      { e: 'zz', aid: APP },
      { e: 'ue', aid: APP, ue_pr: 'not json' },
      { e: 'pv', aid: 'unknown-app', url: 'https://shop.example.com/unknown-app' },
    ));
    expect(mixed.status).toBe(200);
    const pixel = await fetch(`${gw.url}/i?e=zz&aid=${APP}`);
    expect(pixel.status).toBe(200);
    expect(pixel.headers.get('content-type')).toBe('image/gif');

    await waitFor('the valid event of the mixed batch', async () => (await events(`key = 'in.sp.struct.mixed_valid'`)).length === 1);
    const letters = await waitFor('seven dead letters', async () => {
      const l = await deadLetters();
      return l.length >= 7 ? l : null;
    });
    const codes = letters.map((l) => l.code).sort();
    expect(codes).toEqual([
      'FLOW_ERR_FIELD_INVALID', 'FLOW_ERR_FIELD_INVALID', 'FLOW_ERR_FIELD_INVALID', 'FLOW_ERR_FIELD_INVALID',
      'FLOW_ERR_INVALID_REQUEST', 'FLOW_ERR_PARSE', 'FLOW_ERR_UNAUTHORIZED',
    ]);
    expect(letters.find((l) => l.code === 'FLOW_ERR_PARSE')!.payload).toBe('{"schema": ');
    expect(letters.find((l) => l.code === 'FLOW_ERR_INVALID_REQUEST')!.reason).toMatch(/payload_data/);
    expect(letters.find((l) => l.code === 'FLOW_ERR_UNAUTHORIZED')!.payload).toContain('"aid":"unknown-app"');
    const reasons = letters.filter((l) => l.code === 'FLOW_ERR_FIELD_INVALID').map((l) => l.reason).join('\n');
    expect(reasons).toMatch(/needs its type "e"/);
    expect(reasons).toMatch(/"zz" is not one of/);
    expect(reasons).toMatch(/ue_pr/);
    // None of them became an event.
    expect(await count(store, `SELECT count() AS n FROM ${database}.events WHERE page_url IN ('https://shop.example.com/no-type', 'https://shop.example.com/unknown-app')`)).toBe(0);
  });

  it('Snowplow - transactions and their items (tr / ti) from the tracker are stored as in.sp.ecommerce.*', async () => {
    let sent = 0;
    const failures: RequestFailure[] = [];
    const tracker = newTracker({ namespace: 'sp-shop', appId: APP }, {
      endpoint: gw.url,
      onRequestSuccess: (sentBatch: EventBatch) => { sent += sentBatch.length; },
      onRequestFailure: (failure: RequestFailure) => failures.push(failure),
    });
    const duid = `duid-${server}-shop`;
    tracker.setDomainUserId(duid);
    tracker.track(buildEcommerceTransaction({ orderId: `o-${server}`, total: 59.9, tax: 9.56, shipping: 4.9, city: 'Berlin', country: 'DE', currency: 'EUR', affiliation: 'web' }));
    tracker.track(buildEcommerceTransactionItem({ orderId: `o-${server}`, sku: 'SKU-7', name: 'Lamp', category: 'home', price: 27.5, quantity: 2, currency: 'EUR' }));
    await new Promise((r) => setTimeout(r, 50));
    await tracker.flush();
    await waitFor('the tracker to send both events', async () => sent >= 2 || failures.length > 0, 10_000, 20);
    expect(failures).toEqual([]);
    const rows = await waitFor('the transaction in ClickHouse', async () => {
      const r = await events(`uid = '${duid}'`);
      return r.length >= 2 ? r : null;
    });
    expect(rows.map((r) => r.key).sort()).toEqual(['in.sp.ecommerce.item', 'in.sp.ecommerce.transaction']);
    expect(propsOf(rows.find((r) => r.key === 'in.sp.ecommerce.transaction')!)).toMatchObject({
      orderId: `o-${server}`, total: '59.9', tax: '9.56', shipping: '4.9', city: 'Berlin', country: 'DE', currency: 'EUR', affiliation: 'web',
    });
    expect(propsOf(rows.find((r) => r.key === 'in.sp.ecommerce.item')!)).toMatchObject({
      orderId: `o-${server}`, sku: 'SKU-7', name: 'Lamp', category: 'home', price: '27.5', quantity: '2', currency: 'EUR',
    });
  });

  it('Snowplow - with defaultProjectId, events of an app id not listed (or none) go to that project; over the rate limit: 429 + Retry-After', async () => {
    const otherDb = uniqueDatabase('spdef');
    const other = await startGateway(server, {
      clickhouse: { url: inject('clickhouseUrl'), database: otherDb },
      storage: { flushMs: 50 },
      gateway: { protocols: { snowplow: { appIds: { [APP]: PROJECT }, defaultProjectId: 12 } }, limits: { ratePerSecond: 1, rateBurst: 3 } },
    });
    try {
      const res = await fetch(`${other.url}${TP2}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(batch(
          { e: 'pv', aid: 'not-listed', duid: 'def-1', url: 'https://other.example.com/a' },
          { e: 'pv', duid: 'def-1', url: 'https://other.example.com/b' },
          { e: 'pv', aid: APP, duid: 'def-1', url: 'https://shop.example.com/c' },
        )),
      });
      expect(res.status).toBe(200);
      // The batch took the burst (one token per event): the next requests, sent at once, are refused so the tracker retries later.
      const limited = await fetch(`${other.url}${TP2}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(batch({ e: 'pv', aid: APP, duid: 'def-2' })) });
      expect(limited.status).toBe(429);
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(await limited.text()).toMatch(/rate limit/);
      // A body that is not JSON (the collector's bad row, our dead letter) is refused by the rate limit first: nothing is written.
      expect((await fetch(`${other.url}${TP2}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"schema": ' })).status).toBe(429);
      // The second engine stores on the test server whatever this suite's backend is (chDB allows one data directory per process).
      const db = await serverStore(inject('clickhouseUrl'), otherDb);
      try {
        const rows = await waitFor('the three events', async () => {
          const r = await db.query<{ project_id: string | number; page_url: string }>(
            `SELECT project_id, page_url FROM ${otherDb}.events WHERE key = 'in.sp.track.page_view' ORDER BY page_url`,
          );
          return r.length >= 3 ? r : null;
        });
        expect(rows.map((r) => `${Number(r.project_id)} ${r.page_url}`)).toEqual([
          '12 https://other.example.com/a', '12 https://other.example.com/b', `${PROJECT} https://shop.example.com/c`,
        ]);
        expect(await count(db, `SELECT count() AS n FROM ${otherDb}.dead_letters`)).toBe(0);
      } finally {
        await db.close();
      }
    } finally {
      await other.stop('test over');
    }
  });

  it('Snowplow - a browser on an allowed origin passes the CORS preflight for tp2 and gets credentialed replies', async () => {
    const pre = await fetch(`${gw.url}${TP2}`, {
      method: 'OPTIONS',
      headers: { origin: ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    expect(pre.headers.get('access-control-allow-credentials')).toBe('true');
    expect(pre.headers.get('access-control-allow-methods')).toContain('POST');
    expect(pre.headers.get('access-control-allow-headers')).toContain('content-type');
    const res = await tp2(batch({ e: 'pv', aid: APP, eid: randomUUID(), duid: `duid-${server}-cors`, url: 'https://shop.example.com/cors' }), { origin: ORIGIN });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    expect(res.headers.get('access-control-allow-credentials')).toBe('true');
    await waitFor('the CORS event', async () => (await events(`uid = 'duid-${server}-cors'`)).length === 1);
  });
});
}
