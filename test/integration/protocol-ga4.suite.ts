import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { ClickHouseStore } from '../../sinks/index.js';
import { SERVERS, startGateway, uniqueDatabase, type ServerKind, type TestGateway } from '../support/gateway.js';
import { type Backend, clickhouseFor, count, propsOf, readBack, serverStore, waitFor } from '../support/storage.js';

/**
 * GA4's Measurement Protocol (/mp/collect) and its validation server
 * (/debug/mp/collect): raw requests in the documented wire format (Google
 * publishes no Node client for it) against the running engine over real
 * sockets, then the rows looked up in ClickHouse. Both server implementations.
 */

const WEB_STREAM = 'G-TEST1234';
const WEB_SECRET = 'mp-secret-web';
const APP_STREAM = '1:1234567890:android:0123456789abcdef';
const APP_SECRET = 'mp-secret-app';
const PROJECT = 9;
const HOUR = 3600 * 1000;

interface EventRow {
  key: string; uid: string; user_id: string; ts: string | number; page_url: string; page_referrer: string; page_title: string; props: string;
}
interface DeadLetter { project_id: string | number; code: string; reason: string; payload: string }

export function ga4Suite(backend: Backend, servers: readonly ServerKind[] = SERVERS): void {
describe.each(servers)(`protocols - GA4 Measurement Protocol (%s, ${backend})`, (server) => {
  let gw: TestGateway;
  let store: ClickHouseStore;
  const database = uniqueDatabase('ga4');
  const events = async (where: string): Promise<EventRow[]> => store.query<EventRow>(
    `SELECT key, uid, user_id, toUnixTimestamp64Milli(ts) AS ts, page_url, page_referrer, page_title, toJSONString(props) AS props
     FROM ${database}.events FINAL WHERE project_id = ${PROJECT} AND key LIKE 'in.ga4.%' AND ${where} ORDER BY ts, key`,
  ).catch(async () => store.query<EventRow>(
    // ClickHouse 18.16: ts is UInt64 ms and props already JSON text.
    `SELECT key, uid, user_id, ts, page_url, page_referrer, page_title, props FROM ${database}.events FINAL WHERE project_id = ${PROJECT} AND key LIKE 'in.ga4.%' AND ${where} ORDER BY ts, key`,
  ));
  const deadLetters = async (marker: string): Promise<DeadLetter[]> => store.query<DeadLetter>(
    `SELECT project_id, code, reason, payload FROM ${database}.dead_letters WHERE source = 'gateway:ga4' AND payload LIKE '%${marker}%' ORDER BY at`,
  );
  const waitRows = (what: string, where: string, n: number): Promise<EventRow[]> =>
    waitFor(what, async () => { const r = await events(where); return r.length >= n ? r : null; });
  const waitLetters = (what: string, marker: string, n: number): Promise<DeadLetter[]> =>
    waitFor(what, async () => { const l = await deadLetters(marker); return l.length >= n ? l : null; });

  beforeAll(async () => {
    gw = await startGateway(server, {
      clickhouse: clickhouseFor(backend, database),
      storage: { flushMs: 50 },
      gateway: {
        protocols: {
          ga4: {
            streams: {
              [WEB_STREAM]: { apiSecret: WEB_SECRET, projectId: PROJECT },
              [APP_STREAM]: { apiSecret: APP_SECRET, projectId: PROJECT },
            },
          },
        },
      },
    });
    store = await readBack(backend, gw, database);
  });
  afterAll(async () => {
    if (backend === 'server') await store?.close();
    await gw?.stop('test over');
  });

  /** A POST as GA4 documents it; `query` replaces the web stream's measurement_id + api_secret. */
  const post = (body: unknown, { path = '/mp/collect', query = `measurement_id=${WEB_STREAM}&api_secret=${WEB_SECRET}`, contentType = 'application/json' } = {}): Promise<Response> =>
    fetch(`${gw.url}${path}?${query}`, {
      method: 'POST',
      headers: { 'content-type': contentType, 'user-agent': 'ga4-test/1.0' },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
  const validate = async (body: unknown, query?: string): Promise<unknown> => {
    const res = await post(body, { path: '/debug/mp/collect', ...(query === undefined ? {} : { query }) });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/json');
    return res.json();
  };

  it('GA4 - a page_view\'s page params fill the page columns; user_id, user_properties and timestamp_micros are kept', async () => {
    const clientId = `1111.${server}`;
    const at = Date.now() - 2 * HOUR;
    const res = await post({
      client_id: clientId,
      user_id: `ga-user-${server}`,
      timestamp_micros: at * 1000 + 123,
      non_personalized_ads: true,
      user_properties: { plan: { value: 'pro' }, seats: { value: 12 } },
      events: [{
        name: 'page_view',
        params: {
          page_location: 'https://shop.example.com/pricing?utm_source=mail',
          page_referrer: 'https://mail.example.com/',
          page_title: 'Pricing — Shop',
          session_id: '1700000000',
          engagement_time_msec: 1200,
        },
      }],
    });
    expect(res.status).toBe(204);
    expect(await res.text()).toBe('');
    // The reply comes once the event is durable: it is in ClickHouse without another request.
    const [row] = await waitRows('the page_view', `uid = '${clientId}'`, 1);
    expect(row).toMatchObject({
      key: 'in.ga4.event.page_view',
      user_id: `ga-user-${server}`,
      page_url: 'https://shop.example.com/pricing?utm_source=mail',
      page_referrer: 'https://mail.example.com/',
      page_title: 'Pricing — Shop',
    });
    expect(Number(row!.ts)).toBe(at);
    expect(propsOf(row!)).toMatchObject({
      event_name: 'page_view',
      client_id: clientId,
      measurement_id: WEB_STREAM,
      session_id: '1700000000',
      engagement_time_msec: '1200',
      user_properties: { plan: 'pro', seats: 12 },
      non_personalized_ads: 'true',
    });
  });

  it('GA4 - several events in one request (text/plain body) are each stored, params as props; a timestamp ahead is the receive time', async () => {
    // Not a valid uid (spaces): hashed, and the original kept as props.client_id.
    const clientId = `GA1.1 2222 ${server}`;
    const before = Date.now();
    const res = await post({
      client_id: clientId,
      timestamp_micros: (Date.now() + HOUR) * 1000,
      events: [
        {
          name: 'purchase',
          params: {
            transaction_id: `T-${server}-1`, currency: 'EUR', value: 42.5, coupon: 'WINTER',
            items: [{ item_id: 'SKU_1', item_name: 'Scarf', price: 42.5, quantity: 1 }],
          },
        },
        { name: 'add_to_cart', params: { currency: 'EUR', value: 10 } },
        { name: 'Login', params: { method: 'Google' } },
      ],
    }, { contentType: 'text/plain;charset=UTF-8' });
    expect(res.status).toBe(204);
    const after = Date.now();
    const uid = `h:${createHash('sha256').update(clientId).digest('hex').slice(0, 40)}`;
    const rows = await waitRows('the three events', `uid = '${uid}'`, 3);
    expect(rows.map((r) => r.key).sort()).toEqual(['in.ga4.event.add_to_cart', 'in.ga4.event.login', 'in.ga4.event.purchase']);
    for (const r of rows) {
      expect(Number(r.ts)).toBeGreaterThanOrEqual(before);
      expect(Number(r.ts)).toBeLessThanOrEqual(after);
      expect(r.user_id).toBe('');
    }
    const purchase = propsOf(rows.find((r) => r.key === 'in.ga4.event.purchase')!);
    expect(purchase).toMatchObject({
      event_name: 'purchase', client_id: clientId, transaction_id: `T-${server}-1`, currency: 'EUR', value: '42.5', coupon: 'WINTER',
      items: [{ item_id: 'SKU_1', item_name: 'Scarf', price: 42.5, quantity: 1 }],
    });
    // The key is lower-cased; the name as sent is kept.
    expect(propsOf(rows.find((r) => r.key === 'in.ga4.event.login')!)).toMatchObject({ event_name: 'Login', method: 'Google' });
  });

  it('GA4 - a retried request with a timestamp is stored once (its event ids are derived from it); an event\'s own timestamp_micros wins; without a timestamp a second send is a second event', async () => {
    const stamped = `retry.${server}`;
    const requestAt = Date.now() - HOUR;
    const eventAt = Date.now() - 2 * HOUR;
    const body = {
      client_id: stamped,
      timestamp_micros: requestAt * 1000,
      // Two identical events at different places in the request are two events.
      events: [{ name: 'add_to_cart', params: { item: 'a' } }, { name: 'add_to_cart', params: { item: 'a' } }, { name: 'view_item', timestamp_micros: eventAt * 1000 }],
    };
    expect((await post(body)).status).toBe(204);
    expect((await post(body)).status).toBe(204);
    const plain = `retry-plain.${server}`;
    const unstamped = { client_id: plain, events: [{ name: 'add_to_cart' }] };
    expect((await post(unstamped)).status).toBe(204);
    expect((await post(unstamped)).status).toBe(204);
    // The replies come once the events are durable: the second send of each is in ClickHouse too (or was dropped as a duplicate).
    expect(await waitRows('both unstamped sends', `uid = '${plain}'`, 2)).toHaveLength(2);
    const rows = await events(`uid = '${stamped}'`);
    expect(rows.map((r) => `${r.key} ${Number(r.ts)}`)).toEqual([
      `in.ga4.event.view_item ${eventAt}`, `in.ga4.event.add_to_cart ${requestAt}`, `in.ga4.event.add_to_cart ${requestAt}`,
    ]);
    expect(await count(store, `SELECT count() AS n FROM ${database}.events WHERE uid = '${stamped}' AND key LIKE 'in.ga4.%'`)).toBe(3);
  });

  it('GA4 - an app stream (firebase_app_id, app_instance_id) feeds its project', async () => {
    const instance = `0123456789abcdef0123456789ab${server}`;
    const res = await post(
      { app_instance_id: instance, events: [{ name: 'level_up', params: { level: 5, character: 'wizard' } }] },
      { query: `firebase_app_id=${encodeURIComponent(APP_STREAM)}&api_secret=${APP_SECRET}` },
    );
    expect(res.status).toBe(204);
    const [row] = await waitRows('the app event', `uid = '${instance}'`, 1);
    expect(row!.key).toBe('in.ga4.event.level_up');
    expect(propsOf(row!)).toMatchObject({ app_instance_id: instance, firebase_app_id: APP_STREAM, level: '5', character: 'wizard' });
  });

  it('GA4 - an invalid event among valid ones: the valid are stored, the invalid kept in dead_letters as a request of its own', async () => {
    const clientId = `3333.${server}`;
    const res = await post({
      client_id: clientId,
      user_id: `mixed-${server}`,
      events: [
        { name: 'sign_up', params: { method: 'email' } },
        { name: '_badEventName', params: { method: 'x' } },
        { name: 'tutorial_begin' },
      ],
    });
    expect(res.status).toBe(204);
    const rows = await waitRows('the two valid events', `uid = '${clientId}'`, 2);
    expect(rows.map((r) => r.key).sort()).toEqual(['in.ga4.event.sign_up', 'in.ga4.event.tutorial_begin']);
    const [letter] = await waitLetters('the invalid event', clientId, 1);
    expect(letter!.code).toBe('FLOW_ERR_FIELD_INVALID');
    expect(Number(letter!.project_id)).toBe(PROJECT);
    expect(letter!.reason).toContain('Event at index: [1] has invalid name [_badEventName]. Names must start with an alphabetic character.');
    expect(JSON.parse(letter!.payload)).toEqual({ client_id: clientId, user_id: `mixed-${server}`, events: [{ name: '_badEventName', params: { method: 'x' } }] });
    expect(await count(store, `SELECT count() AS n FROM ${database}.events WHERE uid = '${clientId}' AND key LIKE 'in.ga4.%'`)).toBe(2);
  });

  it('GA4 - what GA4 drops gets 204 and is kept in dead_letters: unknown secret or stream, malformed JSON, too old, too many events', async () => {
    const marker = `refused-${server}`;
    const body = { client_id: `${marker}.1`, events: [{ name: 'sign_up' }] };
    const cases: [string, Response][] = [
      ['wrong secret', await post(body, { query: `measurement_id=${WEB_STREAM}&api_secret=not-the-secret` })],
      ['secret of another stream', await post(body, { query: `measurement_id=${WEB_STREAM}&api_secret=${APP_SECRET}` })],
      ['unknown stream', await post(body, { query: `measurement_id=G-UNKNOWN&api_secret=${WEB_SECRET}` })],
      ['no secret', await post(body, { query: `measurement_id=${WEB_STREAM}` })],
      ['malformed JSON', await post(`{"client_id": "${marker}.2", "events": [`)],
      ['73 hours old', await post({ ...body, client_id: `${marker}.3`, timestamp_micros: (Date.now() - 73 * HOUR) * 1000 })],
      ['26 events', await post({ client_id: `${marker}.4`, events: Array.from({ length: 26 }, (_, i) => ({ name: `e${i}` })) })],
      ['no client_id', await post({ user_id: `${marker}.5`, events: [{ name: 'sign_up' }] })],
    ];
    for (const [what, res] of cases) {
      expect({ what, status: res.status }).toEqual({ what, status: 204 });
    }
    const letters = await waitLetters('eight dead letters', marker, 8);
    expect(letters).toHaveLength(8);
    const codes = letters.map((l) => l.code);
    expect(codes.filter((c) => c === 'FLOW_ERR_UNAUTHORIZED')).toHaveLength(4);
    expect(codes.filter((c) => c === 'FLOW_ERR_PARSE')).toHaveLength(1);
    expect(codes.filter((c) => c === 'FLOW_ERR_FIELD_INVALID')).toHaveLength(2);
    expect(codes.filter((c) => c === 'FLOW_ERR_BATCH_TOO_LARGE')).toHaveLength(1);
    const unauthorized = letters.filter((l) => l.code === 'FLOW_ERR_UNAUTHORIZED').map((l) => JSON.parse(l.payload) as Record<string, unknown>);
    expect(unauthorized.map((p) => p.reason).sort()).toEqual(['api_secret does not match', 'api_secret does not match', 'no api_secret', 'unknown measurement_id']);
    expect(unauthorized[0]).toMatchObject({ measurement_id: WEB_STREAM, body });
    // The secret a client sent is never kept.
    for (const l of letters) expect(l.payload).not.toContain('not-the-secret');
    expect(letters.find((l) => l.code === 'FLOW_ERR_PARSE')!.payload).toContain(`${marker}.2`);
    expect(letters.find((l) => l.payload.includes(`${marker}.3`))!.reason).toMatch(/timestamp_micros.*72 hours/);
    expect(letters.find((l) => l.payload.includes(`${marker}.5`))!.reason).toContain('client_id');
    // None of them became an event.
    expect(await count(store, `SELECT count() AS n FROM ${database}.events WHERE key IN ('in.ga4.event.sign_up', 'in.ga4.event.e0') AND uid LIKE '${marker}%'`)).toBe(0);
  });

  describe('the validation server', () => {
    const valid = { client_id: 'dbg.1', events: [{ name: 'select_item', params: { item_list_id: 'related' } }] };
    const event = (e: Record<string, unknown>): Record<string, unknown> => ({ client_id: 'dbg.1', events: [{ name: 'select_item', ...e }] });
    const params = (p: Record<string, unknown>): Record<string, unknown> => event({ params: p });
    const many = (n: number, f: (i: number) => [string, unknown]): Record<string, unknown> => Object.fromEntries(Array.from({ length: n }, (_, i) => f(i)));
    const userProps = (u: Record<string, unknown>): Record<string, unknown> => ({ ...valid, user_properties: u });
    const APP = `firebase_app_id=${encodeURIComponent(APP_STREAM)}&api_secret=${APP_SECRET}`;

    // [case, body, expected message (null: valid), query]
    const cases: [string, () => unknown, [string, string, RegExp] | null, string?][] = [
      ['a valid request', () => valid, null],
      ['40-character names, 25 params, 100-character values', () => event({ name: 'e'.repeat(40), params: many(25, (i) => [`p${i}`.padEnd(40, 'x'), 'v'.repeat(100)]) }), null],
      ['page_location 1000, page_referrer 420, page_title 300 characters', () => params({ page_location: 'u'.repeat(1000), page_referrer: 'r'.repeat(420), page_title: 't'.repeat(300) }), null],
      ['25 user properties, 24-character names, 36-character values', () => userProps(many(25, (i) => [`u${i}`.padEnd(24, 'x'), { value: 'v'.repeat(36) }])), null],
      ['a timestamp 71 hours old', () => ({ ...valid, timestamp_micros: (Date.now() - 71 * HOUR) * 1000 }), null],
      ['no client_id', () => ({ events: valid.events }), ['client_id', 'VALUE_REQUIRED', /requires a client_id/]],
      ['a client_id that is not a string', () => ({ ...valid, client_id: { id: 1 } }), ['client_id', 'VALUE_INVALID', /client_id/]],
      ['an app stream without app_instance_id', () => valid, ['app_instance_id', 'VALUE_REQUIRED', /requires a app_instance_id/], APP],
      ['a user_id over 256 characters', () => ({ ...valid, user_id: 'u'.repeat(257) }), ['user_id', 'VALUE_OUT_OF_BOUNDS', /256/]],
      ['no events', () => ({ client_id: 'dbg.1' }), ['events', 'VALUE_REQUIRED', /at least one event/]],
      ['26 events', () => ({ client_id: 'dbg.1', events: Array.from({ length: 26 }, () => ({ name: 'select_item' })) }), ['events', 'EXCEEDED_MAX_ENTITIES', /26 events, over the limit of 25/]],
      ['an event without a name', () => event({ name: undefined }), ['events', 'VALUE_REQUIRED', /^Event at index: \[0\] has no name/]],
      ['a name that starts with _', () => event({ name: '_badEventName' }), ['events', 'NAME_INVALID', /^Event at index: \[0\] has invalid name \[_badEventName\]\. Names must start with an alphabetic character\.$/]],
      ['a 41-character name', () => event({ name: 'e'.repeat(41) }), ['events', 'NAME_INVALID', /40 characters or fewer/]],
      ['a name with a hyphen', () => event({ name: 'add-to-cart' }), ['events', 'NAME_INVALID', /alphanumeric characters and underscores/]],
      ['a reserved event name', () => event({ name: 'session_start' }), ['events', 'NAME_RESERVED', /reserved name \[session_start\]/]],
      ['a reserved event name prefix', () => event({ name: 'firebase_thing' }), ['events', 'NAME_RESERVED', /reserved prefix \[firebase_\]/]],
      ['26 params', () => params(many(26, (i) => [`p${i}`, i])), ['events.params', 'EXCEEDED_MAX_ENTITIES', /26 params, over the limit of 25/]],
      ['a 41-character param name', () => params({ ['p'.repeat(41)]: 1 }), ['events.params', 'NAME_INVALID', /40 characters or fewer/]],
      ['a param name that starts with a digit', () => params({ '1st': 1 }), ['events.params', 'NAME_INVALID', /invalid param \[1st\].*start with an alphabetic/]],
      ['a reserved param name prefix', () => params({ ga_thing: 1 }), ['events.params', 'NAME_RESERVED', /reserved prefix \[ga_\]/]],
      ['a 101-character param value', () => params({ note: 'v'.repeat(101) }), ['events.params', 'VALUE_OUT_OF_BOUNDS', /\[note\] with a value longer than 100/]],
      ['a 1001-character page_location', () => params({ page_location: 'u'.repeat(1001) }), ['events.params', 'VALUE_OUT_OF_BOUNDS', /longer than 1000/]],
      ['a 421-character page_referrer', () => params({ page_referrer: 'r'.repeat(421) }), ['events.params', 'VALUE_OUT_OF_BOUNDS', /longer than 420/]],
      ['a 301-character page_title', () => params({ page_title: 't'.repeat(301) }), ['events.params', 'VALUE_OUT_OF_BOUNDS', /longer than 300/]],
      ['26 user properties', () => userProps(many(26, (i) => [`u${i}`, { value: i }])), ['user_properties', 'EXCEEDED_MAX_ENTITIES', /26 user properties/]],
      ['a 25-character user property name', () => userProps({ ['u'.repeat(25)]: { value: 1 } }), ['user_properties', 'NAME_INVALID', /24 characters or fewer/]],
      ['a reserved user property name', () => userProps({ first_open_time: { value: 1 } }), ['user_properties', 'NAME_RESERVED', /first_open_time/]],
      ['a 37-character user property value', () => userProps({ plan: { value: 'v'.repeat(37) } }), ['user_properties', 'VALUE_OUT_OF_BOUNDS', /longer than 36/]],
      ['a timestamp 73 hours old', () => ({ ...valid, timestamp_micros: (Date.now() - 73 * HOUR) * 1000 }), ['timestamp_micros', 'VALUE_OUT_OF_BOUNDS', /72 hours/]],
      ['an event\'s own timestamp 71 hours old', () => event({ timestamp_micros: (Date.now() - 71 * HOUR) * 1000 }), null],
      ['an event\'s own timestamp 73 hours old', () => event({ timestamp_micros: (Date.now() - 73 * HOUR) * 1000 }), ['events.timestamp_micros', 'VALUE_OUT_OF_BOUNDS', /^Event at index: \[0\] .*72 hours/]],
      ['an event\'s own timestamp that is not a number', () => event({ timestamp_micros: 'soon' }), ['events.timestamp_micros', 'VALUE_INVALID', /microseconds/]],
    ];

    it.each(cases)('GA4 debug - %s', async (_what, body, expected, query) => {
      const reply = await validate(body(), query);
      expect(reply).toEqual({
        validationMessages: expected === null ? [] : [{ fieldPath: expected[0], validationCode: expected[1], description: expect.stringMatching(expected[2]) }],
      });
    });

    it('GA4 debug - malformed JSON is a message; the api_secret is not checked (as Google\'s); nothing is stored', async () => {
      const marker = `debug-${server}`;
      expect(await validate(`{"client_id": "${marker}", `)).toEqual({
        validationMessages: [{ fieldPath: '', validationCode: 'VALUE_INVALID', description: expect.stringMatching(/Unable to parse Measurement Protocol JSON payload/) }],
      });
      expect(await validate({ client_id: marker, events: [{ name: 'select_item' }] }, `measurement_id=G-NOPE&api_secret=wrong`)).toEqual({ validationMessages: [] });
      expect(await validate({ client_id: marker, events: [{ name: '_bad' }] })).toMatchObject({ validationMessages: [{ validationCode: 'NAME_INVALID' }] });
      // A request to /mp/collect after them, with one valid and one invalid event: once both are in ClickHouse, anything the debug requests had stored would be too.
      const sentinel = `sentinel-${server}`;
      expect((await post({ client_id: sentinel, events: [{ name: 'select_item' }, { name: '_bad' }] })).status).toBe(204);
      await waitRows('the sentinel event', `uid = '${sentinel}'`, 1);
      await waitLetters('the sentinel dead letter', sentinel, 1);
      expect(await count(store, `SELECT count() AS n FROM ${database}.events WHERE uid = '${marker}'`)).toBe(0);
      expect(await deadLetters(marker)).toEqual([]);
    });
  });

  describe('over the rate limit', () => {
    let limited: TestGateway;
    const limitedDb = uniqueDatabase('ga4rl');
    beforeAll(async () => {
      limited = await startGateway(server, {
        clickhouse: { url: inject('clickhouseUrl'), database: limitedDb },
        storage: { flushMs: 50 },
        gateway: {
          limits: { ratePerSecond: 1, rateBurst: 3 },
          protocols: { ga4: { streams: { [WEB_STREAM]: { apiSecret: WEB_SECRET, projectId: PROJECT } } } },
        },
      });
    });
    afterAll(async () => { await limited?.stop('test over'); });

    it('GA4 - a request over the rate limit gets 429 + Retry-After (not GA4\'s 204), so the sender can retry; nothing of it is kept', async () => {
      const send = (clientId: string, n: number): Promise<Response> => fetch(`${limited.url}/mp/collect?measurement_id=${WEB_STREAM}&api_secret=${WEB_SECRET}`, {
        method: 'POST',
        body: JSON.stringify({ client_id: clientId, events: Array.from({ length: n }, () => ({ name: 'scroll' })) }),
      });
      expect((await send('rl.ok', 2)).status).toBe(204);
      const over = await send('rl.over', 5);
      expect(over.status).toBe(429);
      expect(Number(over.headers.get('retry-after'))).toBeGreaterThan(0);
      // What GA4 would drop (an unknown secret) is refused by the rate limit before it is kept: no dead letter.
      const unknown = await fetch(`${limited.url}/mp/collect?measurement_id=${WEB_STREAM}&api_secret=not-the-secret`, {
        method: 'POST',
        body: JSON.stringify({ client_id: 'rl.unknown', events: [{ name: 'scroll' }, { name: 'scroll' }, { name: 'scroll' }] }),
      });
      expect(unknown.status).toBe(429);
      const db = await serverStore(inject('clickhouseUrl'), limitedDb);
      try {
        await waitFor('the accepted request', async () => (await count(db, `SELECT count() AS n FROM ${limitedDb}.events WHERE key = 'in.ga4.event.scroll'`)) === 2);
        expect(await count(db, `SELECT count() AS n FROM ${limitedDb}.events WHERE uid IN ('rl.over', 'rl.unknown')`)).toBe(0);
        expect(await count(db, `SELECT count() AS n FROM ${limitedDb}.dead_letters`)).toBe(0);
      } finally {
        await db.close();
      }
    });
  });

  it('GA4 debug - the validation server is rate limited too (one token per request): 429 + Retry-After', async () => {
    const limitedDb = uniqueDatabase('ga4dbg');
    const limited = await startGateway(server, {
      clickhouse: { url: inject('clickhouseUrl'), database: limitedDb },
      gateway: { limits: { ratePerSecond: 1, rateBurst: 3 }, protocols: { ga4: { streams: { [WEB_STREAM]: { apiSecret: WEB_SECRET, projectId: PROJECT } } } } },
    });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) {
        const res = await fetch(`${limited.url}/debug/mp/collect?measurement_id=${WEB_STREAM}`, { method: 'POST', body: JSON.stringify({ client_id: 'dbg.rl', events: [{ name: 'scroll' }] }) });
        statuses.push(res.status);
        if (res.status === 429) expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
      }
      expect(statuses.slice(0, 3)).toEqual([200, 200, 200]);
      expect(statuses).toContain(429);
    } finally {
      await limited.stop('test over');
    }
  });

  it('GA4 - a GET /mp/collect is not GA4\'s: the generic route answers (in.gen.mp.collect)', async () => {
    const res = await fetch(`${gw.url}/mp/collect?uid=u-get-${server}&measurement_id=${WEB_STREAM}&api_secret=${WEB_SECRET}`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { key: string }).key).toBe('in.gen.mp.collect');
  });
});
}
