import { Analytics } from '@segment/analytics-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { ClickHouseStore } from '../../sinks/index.js';
import { SERVERS, startGateway, uniqueDatabase, type ServerKind, type TestGateway } from '../support/gateway.js';
import { type Backend, clickhouseFor, count, readBack, serverStore, waitFor } from '../support/storage.js';

/**
 * Segment's HTTP Tracking API, driven by Segment's own Node library
 * (@segment/analytics-node) against the running engine over real sockets,
 * then the rows looked up in ClickHouse; the error behaviour with raw
 * requests. Both server implementations.
 */

const WRITE_KEY = 'wk_test_segment';
const PROJECT = 7;

interface EventRow { key: string; uid: string; user_id: string; event_id: string; page_url: string; page_title: string; props: string; ip: string }

export function segmentSuite(backend: Backend, servers: readonly ServerKind[] = SERVERS): void {
describe.each(servers)(`protocols - Segment (%s, ${backend})`, (server) => {
  let gw: TestGateway;
  let store: ClickHouseStore;
  const database = uniqueDatabase('seg');
  const events = async (where: string): Promise<EventRow[]> => store.query<EventRow>(
    `SELECT key, uid, user_id, toString(event_id) AS event_id, page_url, page_title, toJSONString(props) AS props, toString(ip) AS ip
     FROM ${database}.events FINAL WHERE project_id = ${PROJECT} AND ${where} ORDER BY ts`,
  ).catch(async () => store.query<EventRow>(
    // ClickHouse 18.16: no toJSONString, props is already JSON text.
    `SELECT key, uid, user_id, toString(event_id) AS event_id, page_url, page_title, props, ip FROM ${database}.events FINAL WHERE project_id = ${PROJECT} AND ${where} ORDER BY ts`,
  ));
  const deadLetters = async (): Promise<{ source: string; code: string; reason: string; payload: string }[]> =>
    store.query(`SELECT source, code, reason, payload FROM ${database}.dead_letters WHERE source = 'gateway:segment' ORDER BY at`);

  beforeAll(async () => {
    gw = await startGateway(server, {
      clickhouse: clickhouseFor(backend, database),
      storage: { flushMs: 50 },
      gateway: { protocols: { segment: { writeKeys: { [WRITE_KEY]: PROJECT } } } },
    });
    store = await readBack(backend, gw, database);
  });
  afterAll(async () => {
    if (backend === 'server') await store?.close();
    await gw?.stop('test over');
  });

  const post = (path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> => fetch(`${gw.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`${WRITE_KEY}:`).toString('base64')}`, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

  it('Segment - calls from @segment/analytics-node are stored under in.segment.* keys, identify and alias as identities', async () => {
    const analytics = new Analytics({ writeKey: WRITE_KEY, host: gw.url, flushInterval: 20, maxRetries: 2 });
    const errors: unknown[] = [];
    analytics.on('error', (err) => errors.push(err));
    const anon = `anon-${server}-1`;
    analytics.identify({ anonymousId: anon, userId: `user-${server}`, traits: { plan: 'pro' } });
    analytics.page({ anonymousId: anon, name: 'Pricing', properties: { url: 'https://shop.example.com/pricing', title: 'Pricing — Shop' } });
    analytics.track({ anonymousId: anon, event: 'Order Completed', properties: { revenue: 42.5, currency: 'EUR' }, context: { ip: '81.2.69.160' } });
    analytics.screen({ userId: `user-${server}`, name: 'Home' });
    analytics.group({ userId: `user-${server}`, groupId: 'acme', traits: { seats: 10 } });
    analytics.alias({ userId: `user-${server}`, previousId: anon });
    await analytics.closeAndFlush({ timeout: 10_000 });
    expect(errors).toEqual([]);

    const rows = await waitFor('the six calls in ClickHouse', async () => {
      const r = await events(`key LIKE 'in.segment.%'`);
      return r.length >= 6 ? r : null;
    });
    expect(rows.map((r) => r.key).sort()).toEqual([
      'in.segment.page.view', 'in.segment.screen.view', 'in.segment.track.order_completed',
      'in.segment.user.alias', 'in.segment.user.group', 'in.segment.user.identify',
    ]);
    const track = rows.find((r) => r.key === 'in.segment.track.order_completed')!;
    expect(track.uid).toBe(anon);
    // The identify before it set the user id the actor carries.
    expect(track.user_id).toBe(`user-${server}`);
    expect(JSON.parse(track.props)).toMatchObject({ event: 'Order Completed', currency: 'EUR', anonymousId: anon });
    // context.ip is the end user's address (Segment's rule), not the library's (127.0.0.1); stored anonymized (the default).
    expect(track.ip).toContain('81.2.69.0');
    const page = rows.find((r) => r.key === 'in.segment.page.view')!;
    expect(page).toMatchObject({ page_url: 'https://shop.example.com/pricing', page_title: 'Pricing — Shop' });
    // A call with only a userId gets a uid derived from it, the same for every call of that user.
    const screen = rows.find((r) => r.key === 'in.segment.screen.view')!;
    expect(screen.uid).toMatch(/^user:user-/);
    expect(rows.find((r) => r.key === 'in.segment.user.group')!.uid).toBe(screen.uid);

    const identities = await store.query<{ kind: string; external_id: string }>(
      `SELECT kind, external_id FROM ${database}.identities FINAL WHERE project_id = ${PROJECT} AND (uid = '${anon}' OR uid = '${screen.uid}') ORDER BY kind`,
    );
    expect(identities).toEqual([{ kind: 'alias', external_id: anon }, { kind: 'identify', external_id: `user-${server}` }]);
  });

  it('Segment - a retried batch (same messageIds) is stored once; the batch context is merged into each call', async () => {
    const batch = {
      batch: [
        { type: 'track', event: 'Signed Up', anonymousId: `anon-${server}-2`, messageId: `m-${server}-1`, timestamp: '2026-12-01T10:00:00.000Z' },
        { type: 'track', event: 'Signed Up', anonymousId: `anon-${server}-3`, messageId: `m-${server}-2`, context: { locale: 'de-DE' } },
      ],
      context: { app: { name: 'shop', version: '1.2' }, locale: 'en-GB' },
    };
    for (let attempt = 0; attempt < 3; attempt++) {
      const res = await post('/v1/batch', batch);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ success: true });
    }
    const rows = await waitFor('the batch', async () => {
      const r = await events(`key = 'in.segment.track.signed_up'`);
      return r.length >= 2 ? r : null;
    });
    expect(await count(store, `SELECT count() AS n FROM ${database}.events FINAL WHERE key = 'in.segment.track.signed_up'`)).toBe(2);
    const props = rows.map((r) => JSON.parse(r.props) as Record<string, unknown>);
    const contexts = props.map((p) => (typeof p.context === 'string' ? JSON.parse(p.context) : p.context) as Record<string, unknown>);
    expect(contexts[0]).toMatchObject({ app: { name: 'shop' }, locale: 'en-GB' });
    expect(contexts[1]).toMatchObject({ app: { name: 'shop' }, locale: 'de-DE' });
  });

  it('Segment - malformed JSON and over-size payloads get 400 {success:false}; everything refused is in dead_letters', async () => {
    const bad = await post('/v1/track', '{"event": "x", ');
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ success: false, message: expect.stringMatching(/Invalid JSON/) });

    const big = await post('/v1/track', { event: 'Big', anonymousId: 'a-big', properties: { blob: 'x'.repeat(33 * 1024) } });
    expect(big.status).toBe(400);
    expect(((await big.json()) as { message: string }).message).toMatch(/32768-byte limit/);

    const notBatch = await post('/v1/batch', { batch: 'nope' });
    expect(notBatch.status).toBe(400);

    // What Segment answers 200 and drops: an unknown write key, a call without ids, a track without a name.
    const unknownKey = await post('/v1/track', { event: 'X', anonymousId: 'a-1' }, { authorization: `Basic ${Buffer.from('wrong:').toString('base64')}` });
    expect(unknownKey.status).toBe(200);
    const noIds = await post('/v1/track', { event: 'No Ids' });
    expect(noIds.status).toBe(200);
    const noName = await post('/v1/track', { anonymousId: 'a-2' });
    expect(noName.status).toBe(200);

    const letters = await waitFor('six dead letters', async () => {
      const l = await deadLetters();
      return l.length >= 6 ? l : null;
    });
    const codes = letters.map((l) => l.code);
    expect(codes.filter((c) => c === 'FLOW_ERR_PARSE')).toHaveLength(1);
    expect(codes.filter((c) => c === 'FLOW_ERR_INVALID_REQUEST')).toHaveLength(2);
    expect(codes.filter((c) => c === 'FLOW_ERR_UNAUTHORIZED')).toHaveLength(1);
    expect(codes.filter((c) => c === 'FLOW_ERR_FIELD_INVALID')).toHaveLength(2);
    expect(letters.find((l) => l.code === 'FLOW_ERR_UNAUTHORIZED')!.payload).toContain('"writeKey":"wrong"');
    expect(letters.some((l) => /userId or anonymousId/.test(l.reason))).toBe(true);
    expect(letters.some((l) => /event name/.test(l.reason))).toBe(true);
    // None of them became an event.
    expect(await count(store, `SELECT count() AS n FROM ${database}.events WHERE key IN ('in.segment.track.x', 'in.segment.track.no_ids', 'in.segment.track.big')`)).toBe(0);
  });

  it('Segment - over the rate limit: 429 {success:false} + Retry-After, so the library retries; a refused request leaves no dead letter', async () => {
    const limitedDb = uniqueDatabase('segrl');
    const limited = await startGateway(server, {
      clickhouse: clickhouseFor('server', limitedDb),
      storage: { flushMs: 50 },
      gateway: { protocols: { segment: { writeKeys: { [WRITE_KEY]: PROJECT } } }, limits: { ratePerSecond: 1, rateBurst: 2 } },
    });
    const send = (body: unknown): Promise<Response> => fetch(`${limited.url}/v1/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`${WRITE_KEY}:`).toString('base64')}` },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    const call = (id: string): Record<string, unknown> => ({ type: 'track', event: 'Limited', anonymousId: 'seg-rl', messageId: id });
    try {
      expect((await send({ batch: [call('rl-1'), call('rl-2')] })).status).toBe(200);
      const over = await send({ batch: [call('rl-3')] });
      expect(over.status).toBe(429);
      expect(Number(over.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(await over.json()).toMatchObject({ success: false, message: expect.stringMatching(/rate limit/) });
      // Malformed JSON is Segment's 400 with a dead letter; over the limit it is refused first, and nothing is written.
      expect((await send('{"batch": [')).status).toBe(429);
      const db = await serverStore(inject('clickhouseUrl'), limitedDb);
      try {
        await waitFor('the admitted batch', async () => (await count(db, `SELECT count() AS n FROM ${limitedDb}.events FINAL WHERE key = 'in.segment.track.limited'`)) === 2);
        expect(await count(db, `SELECT count() AS n FROM ${limitedDb}.dead_letters`)).toBe(0);
      } finally {
        await db.close();
      }
    } finally {
      await limited.stop('test over');
    }
  });

  it('Segment - the write key can come in the body instead of Basic auth; other /v1 paths are not Segment\'s', async () => {
    const res = await post('/v1/track', { writeKey: WRITE_KEY, event: 'Body Key', anonymousId: `anon-${server}-4` }, { authorization: '' });
    expect(res.status).toBe(200);
    await waitFor('the body-key event', async () => (await events(`key = 'in.segment.track.body_key'`)).length === 1);
    // GET is not a Segment call: the generic route takes it (in.gen.v1.track).
    const get = await fetch(`${gw.url}/v1/track?uid=u-get-${server}`);
    expect(get.status).toBe(200);
    expect(((await get.json()) as { key: string }).key).toBe('in.gen.v1.track');
  });
});
}
