import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { ClickHouseStore } from '../../sinks/index.js';
import { tempDir } from '../support/engine-process.js';
import { SERVERS, startGateway, uniqueDatabase, type ServerKind, type TestGateway } from '../support/gateway.js';
import { type Backend, clickhouseFor, count, propsOf, readBack, serverStore, waitFor } from '../support/storage.js';

/**
 * Countly's write API, driven by Countly's own Node SDK (countly-sdk-nodejs:
 * the Countly singleton for /i, Countly.Bulk for /i/bulk with a checksum256
 * salt) against the running engine over real sockets, then the rows looked
 * up in ClickHouse; checksums, errors and the /i shared with Snowplow with
 * raw requests built per Countly's API docs. Both server implementations.
 */

// countly-sdk-nodejs ships no type declarations: the part of its API these tests use.
interface CountlyBulkUser {
  begin_session(metrics: Record<string, string>): CountlyBulkUser;
  add_event(event: Record<string, unknown>): CountlyBulkUser;
  user_details(user: Record<string, unknown>): CountlyBulkUser;
}
interface CountlyBulk {
  add_user(conf: { device_id: string }): CountlyBulkUser;
  start(onEmpty?: () => void): void;
  stop(): void;
}
interface CountlySdk {
  init(conf: Record<string, unknown>): void;
  begin_session(noHeartBeat?: boolean): void;
  add_event(event: Record<string, unknown>): void;
  user_details(user: Record<string, unknown>): void;
  end_session(seconds?: number): void;
  change_id(newId: string, merge: boolean): void;
  halt(preventRequestProcessing?: boolean): void;
  Bulk: new (conf: Record<string, unknown>) => CountlyBulk;
}
const Countly = createRequire(import.meta.url)('countly-sdk-nodejs') as CountlySdk;

const APP_KEY = 'cly_app_plain';
const SALTED_KEY = 'cly_app_salted';
const SALT = 's3cr3t-salt';
const PROJECT = 21;
const MISSING = { result: 'Missing parameter "app_key" or "device_id"' };

interface EventRow { key: string; uid: string; event_id: string; ts_ms: string; received_ms: string; ip: string; props: string }

export function countlySuite(backend: Backend, servers: readonly ServerKind[] = SERVERS): void {
describe.each(servers)(`protocols - Countly (%s, ${backend})`, (server) => {
  let gw: TestGateway;
  let store: ClickHouseStore;
  const database = uniqueDatabase('cly');
  const events = async (where: string): Promise<EventRow[]> => store.query<EventRow>(
    `SELECT key, uid, toString(event_id) AS event_id, toString(toUnixTimestamp64Milli(ts)) AS ts_ms, toString(toUnixTimestamp64Milli(received_at)) AS received_ms,
       toString(ip) AS ip, toJSONString(props) AS props
     FROM ${database}.events FINAL WHERE project_id = ${PROJECT} AND key LIKE 'in.countly.%' AND ${where} ORDER BY ts, key`,
  ).catch(async () => store.query<EventRow>(
    // ClickHouse 18.16: ts is UInt64 ms, props already JSON text.
    `SELECT key, uid, toString(event_id) AS event_id, toString(ts) AS ts_ms, toString(received_at) AS received_ms, ip, props
     FROM ${database}.events FINAL WHERE project_id = ${PROJECT} AND key LIKE 'in.countly.%' AND ${where} ORDER BY ts, key`,
  ));
  type Letter = { code: string; reason: string; payload: string };
  // The table appears with the first dead letter.
  const deadLetters = async (): Promise<Letter[]> =>
    store.query<Letter>(`SELECT code, reason, payload FROM ${database}.dead_letters WHERE source = 'gateway:countly' ORDER BY at`).catch((): Letter[] => []);

  beforeAll(async () => {
    gw = await startGateway(server, {
      clickhouse: clickhouseFor(backend, database),
      storage: { flushMs: 50 },
      gateway: { protocols: { countly: { apps: { [APP_KEY]: { projectId: PROJECT }, [SALTED_KEY]: { projectId: PROJECT, salt: SALT } } } } },
    });
    store = await readBack(backend, gw, database);
  });
  afterAll(async () => {
    if (backend === 'server') await store?.close();
    await gw?.stop('test over');
  });

  const get = (path: string, params: Record<string, string>): Promise<Response> => fetch(`${gw.url}${path}?${new URLSearchParams(params).toString()}`);
  /** Signed as countly-sdk-nodejs signs: SHA-256 hex of the serialized parameters followed by the salt, appended as checksum256. */
  const signed = (params: Record<string, string>, algorithm: 'sha256' | 'sha1' = 'sha256'): string => {
    const data = Object.entries(params).map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&');
    const digest = createHash(algorithm).update(data + SALT).digest('hex');
    return `${data}&${algorithm === 'sha256' ? 'checksum256' : 'checksum'}=${algorithm === 'sha256' ? digest : digest.toUpperCase()}`;
  };

  it('Countly - a session from countly-sdk-nodejs (begin, events with segmentation, user details, end, change_id merge) is stored under in.countly.* keys', async () => {
    const device = `dev-${server}-1`;
    const merged = `dev-${server}-2`;
    Countly.init({
      app_key: APP_KEY,
      url: gw.url,
      device_id: device,
      clear_stored_device_id: true,
      // The SDK keeps its id and queues on disk: a directory of this test's own; and it sends fast.
      // A directory of its own (the SDK appends its file names to this path as given).
      storage_path: `${tempDir()}/`,
      interval: 50,
      fail_timeout: 1,
      app_version: '2.1.0',
      metrics: { _os: 'Linux', _os_version: '6.1', _device: 'ci-box', _resolution: '1920x1080', _locale: 'de_DE', _carrier: 'none' },
    });
    try {
      Countly.begin_session(true);
      Countly.add_event({ key: 'Purchase Done', count: 2, sum: 19.98, dur: 3, segmentation: { plan: 'pro', country: 'DE' } });
      Countly.user_details({ name: 'Ada Lovelace', email: 'ada@example.com', organization: 'Acme', byear: 1815, custom: { tier: 'gold' } });
      Countly.end_session(42);
      await waitFor('the session in ClickHouse', async () => (await events(`uid = '${device}'`)).length >= 4, 20_000);
      // Merging the device into a new id once the session is in (events queued after it would be sent under the new id).
      Countly.change_id(merged, true);
      const rows = await waitFor('the merge in ClickHouse', async () => {
        const r = await events(`uid IN ('${device}', '${merged}')`);
        return r.length >= 5 ? r : null;
      }, 20_000);
      expect(rows.map((r) => `${r.uid} ${r.key}`).sort()).toEqual([
        `${device} in.countly.event.purchase_done`, `${device} in.countly.session.begin`, `${device} in.countly.session.end`,
        `${device} in.countly.user.details`, `${merged} in.countly.user.alias`,
      ]);
      const byKey = (key: string): Record<string, unknown> => propsOf(rows.find((r) => r.key === key)!);
      expect(byKey('in.countly.session.begin')).toMatchObject({
        _os: 'Linux', _os_version: '6.1', _device: 'ci-box', _resolution: '1920x1080', _locale: 'de_DE', _app_version: '2.1.0',
        deviceId: device, sdkName: 'javascript_native_nodejs',
      });
      expect(byKey('in.countly.event.purchase_done')).toMatchObject({ key: 'Purchase Done', count: '2', sum: '19.98', dur: '3', plan: 'pro', country: 'DE' });
      expect(byKey('in.countly.user.details')).toMatchObject({ name: 'Ada Lovelace', email: 'ada@example.com', organization: 'Acme', byear: '1815', custom: { tier: 'gold' } });
      expect(byKey('in.countly.session.end')).toMatchObject({ duration: '42' });
      expect(byKey('in.countly.user.alias')).toMatchObject({ previousId: device, deviceId: merged });
      // Client times (the SDK's request and event timestamps), never after receipt.
      for (const r of rows) expect(Number(r.ts_ms)).toBeLessThanOrEqual(Number(r.received_ms));

      const identities = await store.query<{ kind: string; uid: string; external_id: string }>(
        `SELECT kind, uid, external_id FROM ${database}.identities FINAL WHERE project_id = ${PROJECT} AND uid = '${merged}'`,
      );
      expect(identities).toEqual([{ kind: 'alias', uid: merged, external_id: device }]);
    } finally {
      Countly.halt();
    }
  });

  it('Countly - Countly.Bulk sends /i/bulk signed with checksum256 for a salted app; every request of the bulk is stored', async () => {
    const bulk = new Countly.Bulk({ app_key: SALTED_KEY, url: gw.url, salt: SALT, interval: 50, fail_timeout: 1 });
    const device = `bulk-${server}-1`;
    try {
      const user = bulk.add_user({ device_id: device });
      user.begin_session({ _os: 'Android', _os_version: '14' });
      user.add_event({ key: 'Button Click', count: 1, segmentation: { button: 'buy' } });
      user.user_details({ username: 'bulky', custom: { source: 'import' } });
      bulk.start();
      const rows = await waitFor('the bulk user in ClickHouse', async () => {
        const r = await events(`uid = '${device}'`);
        return r.length >= 3 ? r : null;
      }, 20_000);
      expect(rows.map((r) => r.key).sort()).toEqual(['in.countly.event.button_click', 'in.countly.session.begin', 'in.countly.user.details']);
      expect(propsOf(rows.find((r) => r.key === 'in.countly.session.begin')!)).toMatchObject({ _os: 'Android', _os_version: '14', sdkName: 'javascript_native_nodejs_bulk' });
      expect(propsOf(rows.find((r) => r.key === 'in.countly.event.button_click')!)).toMatchObject({ key: 'Button Click', count: '1', button: 'buy' });
      expect(propsOf(rows.find((r) => r.key === 'in.countly.user.details')!)).toMatchObject({ username: 'bulky', custom: { source: 'import' } });
    } finally {
      bulk.stop();
    }
    // Nothing of it was refused (a checksum mismatch would be).
    expect((await deadLetters()).filter((l) => l.payload.includes(device))).toEqual([]);
  });

  it('Countly - raw /i and /i/bulk: query string, form and JSON bodies; a retried request with a timestamp is stored once', async () => {
    const device = `raw-${server}`;
    const ts = String(Date.now() - 5_000);
    const eventsJson = JSON.stringify([{ key: 'Viewed Item', count: 1, segmentation: { sku: 'A-1' }, timestamp: Number(ts) - 1_000 }]);
    for (let attempt = 0; attempt < 2; attempt++) {
      // The web SDK's `rr` (requests still queued) is set when a request is sent, so a retry can carry another.
      const res = await get('/i', { app_key: APP_KEY, device_id: device, timestamp: ts, events: eventsJson, ip_address: '81.2.69.160', rr: String(3 - attempt) });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ result: 'Success' });
    }
    const form = await fetch(`${gw.url}/i`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ app_key: APP_KEY, device_id: device, session_duration: '30' }).toString(),
    });
    expect(await form.json()).toEqual({ result: 'Success' });
    const json = await fetch(`${gw.url}/i/bulk`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        app_key: APP_KEY,
        requests: [
          { device_id: device, events: [{ key: 'Bulk JSON', count: 3, sum: 1.5 }] },
          { device_id: device, end_session: 1, session_duration: 12 },
          { events: [{ key: 'No Device' }] },
        ],
      }),
    });
    expect(json.status).toBe(200);
    expect(await json.json()).toEqual({ result: 'Success' });

    const rows = await waitFor('the raw requests', async () => {
      const r = await events(`uid = '${device}'`);
      return r.length >= 4 ? r : null;
    });
    expect(rows.map((r) => r.key).sort()).toEqual(['in.countly.event.bulk_json', 'in.countly.event.viewed_item', 'in.countly.session.duration', 'in.countly.session.end']);
    expect(await count(store, `SELECT count() AS n FROM ${database}.events FINAL WHERE key = 'in.countly.event.viewed_item' AND uid = '${device}'`)).toBe(1);
    const viewed = rows.find((r) => r.key === 'in.countly.event.viewed_item')!;
    // The event's own timestamp; the ip_address parameter is the client's address (stored anonymized).
    expect(Number(viewed.ts_ms)).toBe(Number(ts) - 1_000);
    expect(viewed.ip).toContain('81.2.69.0');
    expect(propsOf(viewed)).toMatchObject({ key: 'Viewed Item', sku: 'A-1' });
    expect(propsOf(rows.find((r) => r.key === 'in.countly.session.duration')!)).toMatchObject({ duration: '30' });
    expect(propsOf(rows.find((r) => r.key === 'in.countly.session.end')!)).toMatchObject({ duration: '12' });
    expect(propsOf(rows.find((r) => r.key === 'in.countly.event.bulk_json')!)).toMatchObject({ count: '3', sum: '1.5' });
    // The bulk's request without a device_id is kept in dead_letters.
    const letters = await waitFor('the dead letter', async () => {
      const l = (await deadLetters()).filter((d) => d.payload.includes('No Device'));
      return l.length > 0 ? l : null;
    });
    expect(letters.map((l) => l.code)).toEqual(['FLOW_ERR_FIELD_INVALID']);
  });

  it('Countly - checksum256 and checksum (SHA-1) are verified for a salted app; wrong or missing ones get Countly\'s 400', async () => {
    const device = `salted-${server}`;
    const good = await fetch(`${gw.url}/i?${signed({ app_key: SALTED_KEY, device_id: device, begin_session: '1', metrics: JSON.stringify({ _os: 'iOS' }) })}`);
    expect(good.status).toBe(200);
    expect(await good.json()).toEqual({ result: 'Success' });
    const sha1 = await fetch(`${gw.url}/i`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: signed({ app_key: SALTED_KEY, device_id: device, end_session: '1' }, 'sha1'),
    });
    expect(await sha1.json()).toEqual({ result: 'Success' });

    const tampered = signed({ app_key: SALTED_KEY, device_id: device, events: JSON.stringify([{ key: 'Tampered' }]) }).replace('Tampered', 'Tamperer');
    const wrong = await fetch(`${gw.url}/i?${tampered}`);
    expect(wrong.status).toBe(400);
    expect(await wrong.json()).toEqual({ result: 'Request does not match checksum' });
    // A signed body does not vouch for parameters added to the query string.
    const smuggled = await fetch(`${gw.url}/i?${new URLSearchParams({ events: JSON.stringify([{ key: 'Smuggled' }]) }).toString()}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: signed({ app_key: SALTED_KEY, device_id: device, session_duration: '5' }),
    });
    expect(smuggled.status).toBe(400);
    expect(await smuggled.json()).toEqual({ result: 'Request does not match checksum' });
    const none = await get('/i', { app_key: SALTED_KEY, device_id: device, events: JSON.stringify([{ key: 'Unsigned' }]) });
    expect(none.status).toBe(400);
    expect(await none.json()).toEqual({ result: 'Request does not have checksum' });

    const rows = await waitFor('the signed requests', async () => {
      const r = await events(`uid = '${device}'`);
      return r.length >= 2 ? r : null;
    });
    expect(rows.map((r) => r.key).sort()).toEqual(['in.countly.session.begin', 'in.countly.session.end']);
    const letters = await waitFor('the refused requests', async () => {
      const l = (await deadLetters()).filter((d) => d.payload.includes(device));
      return l.length >= 3 ? l : null;
    });
    expect(letters.map((l) => l.code)).toEqual(['FLOW_ERR_UNAUTHORIZED', 'FLOW_ERR_UNAUTHORIZED', 'FLOW_ERR_UNAUTHORIZED']);
    expect(letters.map((l) => JSON.parse(l.payload).result as string).sort()).toEqual(['Request does not have checksum', 'Request does not match checksum', 'Request does not match checksum']);
    expect(await count(store, `SELECT count() AS n FROM ${database}.events WHERE key IN ('in.countly.event.tampered', 'in.countly.event.tamperer', 'in.countly.event.unsigned', 'in.countly.event.smuggled') OR key = 'in.countly.session.duration' AND uid = '${device}'`)).toBe(0);
  });

  it('Countly - missing parameters and an unknown app_key get Countly\'s 400 bodies and dead letters; bad JSON parts are dead-lettered, the rest stored', async () => {
    const noDevice = await get('/i', { app_key: APP_KEY, begin_session: '1' });
    expect(noDevice.status).toBe(400);
    expect(await noDevice.json()).toEqual(MISSING);
    const noApp = await get('/i', { device_id: `nokey-${server}`, begin_session: '1' });
    expect(noApp.status).toBe(400);
    expect(await noApp.json()).toEqual(MISSING);
    const unknown = await get('/i', { app_key: 'no-such-app', device_id: `unknown-${server}`, begin_session: '1' });
    expect(unknown.status).toBe(400);
    expect(await unknown.json()).toEqual({ result: 'App does not exist' });
    const noRequests = await get('/i/bulk', { app_key: APP_KEY });
    expect(noRequests.status).toBe(400);
    expect(await noRequests.json()).toEqual({ result: 'Missing parameter "requests"' });

    const device = `badjson-${server}`;
    const partial = await get('/i', { app_key: APP_KEY, device_id: device, begin_session: '1', events: '[{"key": "Broken"', user_details: '{"name":"Bob"}' });
    expect(partial.status).toBe(200);
    await waitFor('the readable parts', async () => (await events(`uid = '${device}'`)).length >= 2);
    expect((await events(`uid = '${device}'`)).map((r) => r.key).sort()).toEqual(['in.countly.session.begin', 'in.countly.user.details']);

    const resultOf = (l: { payload: string }): unknown => (JSON.parse(l.payload) as { result?: unknown }).result;
    const letters = await waitFor('the five dead letters', async () => {
      const l = await deadLetters();
      const refused = l.filter((d) => [MISSING.result, 'App does not exist', 'Missing parameter "requests"'].includes(resultOf(d) as string));
      const part = l.filter((d) => d.payload.includes(device));
      return refused.length >= 4 && part.length >= 1 ? { refused, part } : null;
    });
    expect(letters.refused.map((l) => `${l.code} ${resultOf(l) as string}`).sort()).toEqual([
      'FLOW_ERR_FIELD_INVALID Missing parameter "app_key" or "device_id"',
      'FLOW_ERR_FIELD_INVALID Missing parameter "app_key" or "device_id"',
      'FLOW_ERR_FIELD_INVALID Missing parameter "requests"',
      'FLOW_ERR_UNAUTHORIZED App does not exist',
    ]);
    expect(letters.part.map((l) => l.code)).toEqual(['FLOW_ERR_FIELD_INVALID']);
    expect(letters.part[0]!.reason).toMatch(/"events"/);
  });

  it('Countly - over the rate limit: 429 + Retry-After with a {"result"} body; a refused request leaves no dead letter', async () => {
    const limitedDb = uniqueDatabase('clyrl');
    const other = await startGateway(server, {
      clickhouse: { url: inject('clickhouseUrl'), database: limitedDb },
      storage: { flushMs: 50 },
      gateway: { protocols: { countly: { apps: { [APP_KEY]: { projectId: PROJECT } } } }, limits: { ratePerSecond: 1, rateBurst: 2 } },
    });
    const at = (params: Record<string, string>): Promise<Response> => fetch(`${other.url}/i?${new URLSearchParams(params).toString()}`);
    try {
      // Three events on a burst of two: a request larger than the burst takes a full bucket.
      const events3 = JSON.stringify([{ key: 'a' }, { key: 'b' }, { key: 'c' }]);
      expect((await at({ app_key: APP_KEY, device_id: 'rl-1', events: events3 })).status).toBe(200);
      const limited = await at({ app_key: APP_KEY, device_id: 'rl-2', begin_session: '1' });
      expect(limited.status).toBe(429);
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(((await limited.json()) as { result: string }).result).toMatch(/rate limit/);
      // A request Countly would refuse (an unknown app) is refused by the rate limit first: nothing of it is written.
      expect((await at({ app_key: 'rl-unknown-app', device_id: 'rl-3', begin_session: '1' })).status).toBe(429);
      const db = await serverStore(inject('clickhouseUrl'), limitedDb);
      try {
        await waitFor('the admitted request', async () => (await count(db, `SELECT count() AS n FROM ${limitedDb}.events FINAL WHERE uid = 'rl-1' AND key LIKE 'in.countly.%'`)) === 3);
        expect(await count(db, `SELECT count() AS n FROM ${limitedDb}.events WHERE uid IN ('rl-2', 'rl-3')`)).toBe(0);
        expect(await count(db, `SELECT count() AS n FROM ${limitedDb}.dead_letters`)).toBe(0);
      } finally {
        await db.close();
      }
    } finally {
      await other.stop('test over');
    }
  });

  it('Countly - Countly.Bulk with its defaults (50 requests of up to 100 events per /i/bulk) sends more events than gateway.limits.maxBatch in one request: all are stored', async () => {
    const bulk = new Countly.Bulk({ app_key: APP_KEY, url: gw.url, interval: 50, fail_timeout: 1 });
    const users = 12;
    const perUser = 50;
    const prefix = `bulk-big-${server}-`;
    try {
      for (let u = 0; u < users; u++) {
        const user = bulk.add_user({ device_id: `${prefix}${u}` });
        for (let e = 0; e < perUser; e++) user.add_event({ key: 'Item Viewed', count: 1, segmentation: { n: e } });
      }
      bulk.start();
      await waitFor('every bulk event in ClickHouse', async () =>
        (await count(store, `SELECT count() AS n FROM ${database}.events FINAL WHERE key = 'in.countly.event.item_viewed' AND uid LIKE '${prefix}%'`)) === users * perUser, 25_000);
    } finally {
      bulk.stop();
    }
    expect((await deadLetters()).filter((l) => l.code === 'FLOW_ERR_BATCH_TOO_LARGE')).toEqual([]);
    expect(users * perUser).toBeGreaterThan(500);
  });

  it('Countly - GET /i is Countly\'s with app_key (JSON reply) and Snowplow\'s with e= (the pixel)', async () => {
    const countly = await get('/i', { app_key: APP_KEY, device_id: `shared-${server}`, begin_session: '1' });
    expect(countly.headers.get('content-type')).toBe('application/json');
    expect(await countly.json()).toEqual({ result: 'Success' });
    // Snowplow's parameters (no app_key): the Snowplow adapter answers, with its pixel (no app id is configured here, so it is dead-lettered as gateway:sp).
    const snowplow = await get('/i', { e: 'pv', aid: 'x', url: 'https://shop.example.com/' });
    expect(snowplow.status).toBe(200);
    expect(snowplow.headers.get('content-type')).toBe('image/gif');
    await waitFor('the Countly session', async () => (await events(`uid = 'shared-${server}'`)).length === 1);
  });
});
}
