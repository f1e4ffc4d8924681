import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventIdFromClientId } from '../../engine/index.js';
import { migrate, TABLES, type ClickHouseStore } from '../../sinks/index.js';
import { MIGRATIONS } from '../../sinks/schema/migrate.js';
import { createRowBinaryEncoder } from '../../sinks/rows/index.js';
import { createSilentLogger } from '../../engine/index.js';
import { startGateway, TestClient, track, type TestGateway, type ServerKind } from '../support/gateway.js';
import { count, waitFor } from '../support/storage.js';

/**
 * The storage suite, run against chDB and against a ClickHouse server: what
 * a user sends through the gateway ends up in the store, with every contract
 * column, once; refused rows land in dead_letters; the schema is managed.
 */
const CHROME_UA = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';

export function storageSuite(backend: 'chdb' | 'server', server: ServerKind = 'uws'): void {
  describe(`storage (${backend})`, () => {
    let gw: TestGateway;
    let store: ClickHouseStore;
    const db = `st_${backend}_${process.pid}`;

    beforeAll(async () => {
      const clickhouse = backend === 'chdb' ? { database: db } : undefined;
      gw = await startGateway(server, {
        storage: { flushMs: 100 },
        ...(clickhouse ? { clickhouse } : {}),
      });
      store = await gw.storage.store.get();
    });
    afterAll(async () => { await gw.stop('test over'); });

    const table = (name: string): string => `\`${store.database}\`.\`${name}\``;
    const stored = (): number => Object.values(gw.storage.sinkStats()).reduce((n, st) => n + st.stored, 0);
    let storedSoFar = 0;

    it('creates the tables and records the migration', async () => {
      const tables = await store.query<{ name: string; engine: string }>(`SELECT name, engine FROM system.tables WHERE database = '${store.database}' ORDER BY name`);
      expect(tables).toEqual([
        { name: 'dead_letters', engine: 'MergeTree' },
        { name: 'events', engine: 'ReplacingMergeTree' },
        { name: 'identities', engine: 'ReplacingMergeTree' },
        { name: 'schema_migrations', engine: 'MergeTree' },
        { name: 'sessions', engine: 'ReplacingMergeTree' },
      ]);
      const versions = await store.query<{ version: number | string }>(`SELECT version FROM ${table('schema_migrations')} ORDER BY version`);
      expect(versions.map((v) => Number(v.version))).toEqual(MIGRATIONS.map((m) => m.version));
      const types = await store.query<{ name: string; type: string }>(`SELECT name, type FROM system.columns WHERE database = '${store.database}' AND table = 'events' AND name IN ('ts', 'key', 'props')`);
      const byName = Object.fromEntries(types.map((t) => [t.name, t.type]));
      if (store.capabilities.modern) {
        expect(byName).toEqual({ ts: "DateTime64(3, 'UTC')", key: 'LowCardinality(String)', props: 'Map(String, String)' });
      } else {
        expect(byName).toEqual({ ts: 'UInt64', key: 'String', props: 'String' });
      }
    });

    it('migrating again changes nothing, and a missing column is added back, never dropped', async () => {
      const again = await migrate(store, createSilentLogger());
      expect(again.applied).toEqual([]);
      await store.command(`ALTER TABLE ${table('sessions')} DROP COLUMN referrer`);
      const fixed = await migrate(store, createSilentLogger());
      expect(fixed.mismatches).toEqual([]);
      const cols = await store.query<{ name: string }>(`SELECT name FROM system.columns WHERE database = '${store.database}' AND table = 'sessions' AND name = 'referrer'`);
      expect(cols).toHaveLength(1);
      expect(await count(store, `SELECT count() AS n FROM ${table('schema_migrations')}`)).toBe(MIGRATIONS.length);
    });

    it('upgrades a database created by an older version: adds the new columns and keeps the data', async () => {
      const old = { ...store, database: `${store.database}_v1` } as ClickHouseStore;
      // What version 1 of flowstat created: its columns only, its one migration.
      const v1Tables = Object.values(TABLES).map((t) => ({ ...t, columns: t.columns.filter((c) => c.since === 1) }));
      expect((await migrate(old, createSilentLogger(), v1Tables, MIGRATIONS.slice(0, 1))).applied).toEqual([1]);
      await old.command(`INSERT INTO \`${old.database}\`.events (event_id, project_id, event_date, key, uid) VALUES ('00000000-0000-7000-8000-000000000001', 1, toDate('2026-01-01'), 'in.gen.track.page', 'early-user')`);
      const v2 = await migrate(old, createSilentLogger());
      expect(v2.applied).toEqual(MIGRATIONS.slice(1).map((m) => m.version));
      const cols = await old.query<{ name: string }>(`SELECT name FROM system.columns WHERE database = '${old.database}' AND table = 'events' AND name IN ('source_name', 'search_keyword')`);
      expect(cols.map((c) => c.name).sort()).toEqual(['search_keyword', 'source_name']);
      const rows = await old.query<{ uid: string; source_name: string }>(`SELECT uid, source_name FROM \`${old.database}\`.events`);
      expect(rows).toEqual([{ uid: 'early-user', source_name: '' }]);
    });

    it('stores an HTTP event with every contract column', async () => {
      const ts = Date.now() - 5_000;
      const res = await fetch(`${gw.url}/shop/purchase/7?id=order-77&uid=buyer-1&ts=${ts}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': CHROME_UA, origin: 'https://shop.example.com' },
        body: JSON.stringify({
          page: { url: 'https://shop.example.com/cart?x=1&utm_source=spring-news&utm_medium=email&utm_campaign=spring', ref: 'https://www.google.com/', title: 'Cart — ünïcode ✓' },
          user: { id: 'customer-1' },
          data: { total: 99.5, currency: 'EUR', items: [{ sku: 'a' }] },
        }),
      });
      expect(res.status).toBe(200);
      const body = await res.json() as { id: string };
      expect(body.id).toBe(eventIdFromClientId(7, 'order-77'));
      const row = await waitFor('the event row', async () => {
        const rows = await store.query<Record<string, unknown>>(
          `SELECT toString(event_id) AS id, project_id, toString(event_date) AS event_date, key, channel, service, name, uid, user_id, session_id, seq, ts, received_at, ip, ua, page_url, page_referrer, page_title, props,
             ua_browser, ua_browser_major, ua_os, ua_device_type, is_bot, page_host, page_path, page_query, referrer_host,
             utm_source, utm_medium, utm_campaign, source_type, source_name, fpid, geo_country FROM ${table('events')} FINAL WHERE event_id = toUUID('${body.id}')`,
        );
        return rows[0];
      });
      const tsMs = (v: unknown): number => (typeof v === 'string' && v.includes('-') ? Date.parse(`${v.replace(' ', 'T')}Z`) : Number(v));
      expect(row).toMatchObject({
        id: body.id, project_id: 7, key: 'in.gen.shop.purchase', channel: 'gen', service: 'shop', name: 'purchase',
        // The IP is anonymized for storage by default (last IPv4 octet zeroed).
        uid: 'buyer-1', user_id: 'customer-1', ip: '127.0.0.0', ua: CHROME_UA,
        page_url: 'https://shop.example.com/cart?x=1&utm_source=spring-news&utm_medium=email&utm_campaign=spring',
        page_referrer: 'https://www.google.com/', page_title: 'Cart — ünïcode ✓',
        // Enrichment (the default enrichers): user agent, page, campaign, source, fingerprint; loopback has no geo.
        ua_browser: 'Chrome', ua_browser_major: '131', ua_os: 'Windows', ua_device_type: 'desktop', is_bot: 0,
        page_host: 'shop.example.com', page_path: '/cart', page_query: 'x=1&utm_source=spring-news&utm_medium=email&utm_campaign=spring',
        referrer_host: 'www.google.com', utm_source: 'spring-news', utm_medium: 'email', utm_campaign: 'spring',
        source_type: 'email', geo_country: '',
        event_date: new Date(ts).toISOString().slice(0, 10),
      });
      expect(tsMs(row.ts)).toBe(ts);
      expect(row.fpid).toMatch(/^[0-9a-f]{16}$/);
      expect(Math.abs(tsMs(row.received_at) - Date.now())).toBeLessThan(60_000);
      const props = store.capabilities.modern ? row.props as Record<string, string> : JSON.parse(row.props as string) as Record<string, unknown>;
      if (store.capabilities.modern) expect(props).toEqual({ total: '99.5', currency: 'EUR', items: '[{"sku":"a"}]' });
      else expect(props).toEqual({ total: 99.5, currency: 'EUR', items: [{ sku: 'a' }] });
    });

    it('stores WebSocket events and counts a retried event once', async () => {
      storedSoFar = stored();
      const c = await TestClient.connect(`${gw.wsUrl}?projectId=3&uid=ws-storage`);
      c.sendJson([track(1, { id: 'dup-1', name: 'scroll' }), track(2, { id: 'dup-1', name: 'scroll' }), track(3, { id: 'once-2', name: 'scroll' })]);
      expect(await c.next()).toHaveLength(3);
      c.sendJson(track(4, { id: 'dup-1', name: 'scroll' })); // a client retry later
      await c.next();
      c.close();
      const ids = [eventIdFromClientId(3, 'dup-1'), eventIdFromClientId(3, 'once-2')];
      // All four deliveries reach the store; merges may already have folded the repeats.
      const before = storedSoFar;
      await waitFor('all four writes', async () => stored() - before >= 4);
      expect(await count(store, `SELECT count() AS n FROM ${table('events')} FINAL WHERE project_id = 3 AND channel = 'gen'`)).toBe(2);
      const kept = await store.query<{ id: string }>(`SELECT toString(event_id) AS id FROM ${table('events')} FINAL WHERE project_id = 3 AND channel = 'gen' ORDER BY id`);
      expect(kept.map((r) => r.id)).toEqual([...ids].sort());
    });

    it('an insert repeating a batch\'s deduplication token is dropped on modern stores', async () => {
      const enc = createRowBinaryEncoder(TABLES.events, store.capabilities);
      const rows = (from: number): Record<string, unknown>[] => [from, from + 1, from + 2].map((i) => ({
        event_id: eventIdFromClientId(11, `dedup-${i}`), project_id: 11, event_date: Date.now(), key: 'in.gen.track.page',
        channel: 'gen', service: 'track', name: 'page', uid: `u${i}`, ts: Date.now(), received_at: Date.now(),
      }));
      const insert = (body: Buffer): Promise<void> => store.insert({ table: 'events', columns: enc.columns, format: 'RowBinary', body, dedupToken: 'dedup-test-batch' });
      const first = enc.encode(rows(1)).body;
      await insert(first);
      await insert(first); // a retry after an ambiguous failure
      // Other bytes, same token: dropped too, so the token (not a hash of the data) is what decides.
      await insert(enc.encode(rows(4)).body);
      const where = `WHERE project_id = 11`;
      // 18.16 has no tokens: every insert is stored, and the retried rows collapse on merge / under FINAL.
      expect(await count(store, `SELECT count() AS n FROM ${table('events')} ${where}`)).toBe(store.capabilities.modern ? 3 : 9);
      expect(await count(store, `SELECT count() AS n FROM ${table('events')} FINAL ${where}`)).toBe(store.capabilities.modern ? 3 : 6);
    });

    it('puts a refused row in dead_letters and stores the rest of its batch', async () => {
      const good = (i: number): Record<string, unknown> => ({
        event_id: eventIdFromClientId(9, `batch-${i}`), project_id: 9, event_date: Date.now(), key: 'in.gen.track.page',
        channel: 'gen', service: 'track', name: 'page', uid: `u${i}`, ts: Date.now(), received_at: Date.now(),
      });
      const rows = [good(1), good(2), { ...good(3), event_id: 'not-a-uuid' }, good(4)];
      gw.storage.pipeline.emit(rows.map((row) => ({ table: 'events' as const, row })), null);
      await waitFor('the good rows', async () => (await count(store, `SELECT count() AS n FROM ${table('events')} FINAL WHERE project_id = 9`)) === 3);
      const letters = await waitFor('the dead letter', async () => {
        const r = await store.query<{ source: string; code: string; reason: string; payload: string }>(`SELECT source, code, reason, payload FROM ${table('dead_letters')} WHERE project_id = 9`);
        return r.length > 0 ? r : null;
      });
      expect(letters).toHaveLength(1);
      expect(letters[0]!.source).toBe('sink:events');
      expect(letters[0]!.reason).toContain('event_id');
      expect(JSON.parse(letters[0]!.payload)).toMatchObject({ event_id: 'not-a-uuid', uid: 'u3' });
    });

    it('reports the store and sinks on /readyz and sink counts on /metrics', async () => {
      const ready = await (await fetch(`${gw.url}/readyz`)).json() as { ready: boolean; checks: Record<string, unknown> };
      expect(ready.ready).toBe(true);
      expect(ready.checks.store).toEqual({ kind: backend, reachable: true });
      const metrics = await (await fetch(`${gw.url}/metrics`)).text();
      expect(Number(/flowstat_sink_stored_records (\d+)/.exec(metrics)?.[1])).toBeGreaterThan(0);
      expect(metrics).toMatch(/flowstat_sink_spooled_records 0/);
    });
  });
}
