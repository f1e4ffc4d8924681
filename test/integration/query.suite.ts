import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createQueryService, type QueryResult, type QueryService, type RawParams } from '../../query/index.js';
import { isFlowError } from '../../engine/index.js';
import type { ClickHouseStore } from '../../sinks/index.js';
import { createJsonEachRowEncoder } from '../../sinks/rows/index.js';
import { EVENTS } from '../../sinks/schema/tables.js';
import { BASE, createFixture, DAY, loadFixture, OTHER_PROJECT, PROJECT, type FixtureEvent } from '../support/query-fixture.js';

/**
 * The query reports on a seeded fixture, run against chDB and against the
 * ClickHouse server: every number a report gives is worked out here again
 * from the raw fixture in plain TypeScript. Plus what must be refused (400
 * naming the field) and injection attempts in every parameter.
 */

const NOW = BASE + 40 * DAY;
const ISO = (ms: number): string => new Date(ms).toISOString();
const dayOf = (ms: number): number => Math.floor(ms / DAY) * DAY;
const weekOf = (ms: number): number => (Math.floor((Math.floor(ms / DAY) + 3) / 7) * 7 - 3) * DAY;
const uniq = (xs: readonly string[]): number => new Set(xs).size;
/** The funnel tests' copy of PROJECT's client events, each stored once. */
const SINGLE_PROJECT = 9;

export function querySuite(backend: string, open: () => Promise<ClickHouseStore>, close: () => Promise<void>): void {
  describe(`query reports (${backend})`, () => {
    const fixture = createFixture();
    const client = fixture.events.filter((e) => e.project_id === PROJECT && e.channel === 'gen');
    let store: ClickHouseStore;
    let service: QueryService;
    const run = (report: string, params: Record<string, string | string[]>): Promise<QueryResult> => {
      const raw: Record<string, string[]> = {};
      for (const [k, v] of Object.entries(params)) raw[k] = Array.isArray(v) ? v : [v];
      return service.run(report, raw as RawParams);
    };
    const range = (fromDay: number, toDay: number) => ({ from: ISO(BASE + fromDay * DAY), to: ISO(BASE + toDay * DAY), project: String(PROJECT) });

    beforeAll(async () => {
      store = await open();
      await loadFixture(store, fixture);
      service = createQueryService({ store: async () => store, defaultProjectId: 1, now: () => NOW });
    });
    afterAll(async () => { await close(); });

    it('events - per day, one key pattern: counts and distinct users, each repeated event once, empty days 0', async () => {
      const r = await run('events', { ...range(0, 35), key: 'in.gen.shop.*' });
      const shop = client.filter((e) => e.key.startsWith('in.gen.shop.'));
      const expected = Array.from({ length: 35 }, (_, d) => {
        const day = shop.filter((e) => dayOf(e.ts) === BASE + d * DAY);
        return { t: ISO(BASE + d * DAY), events: day.length, users: uniq(day.map((e) => e.uid)) };
      });
      expect(r.tables[0]!.rows).toEqual(expected);
      expect(r.meta.events).toBe(shop.length);
    });

    it('events - property filter and breakdown by utm_source per week (the values are data, quotes and backslashes included)', async () => {
      const r = await run('events', { ...range(0, 35), interval: 'week', filter: 'data.plan:eq:pro', breakdown: 'utm_source' });
      const pro = client.filter((e) => e.props.plan === 'pro');
      const sources = [...new Set(pro.map((e) => e.utm_source))].sort();
      expect(sources).toContain("o'hara \\ co");
      const weeks = [...new Set(Array.from({ length: 35 }, (_, d) => weekOf(BASE + d * DAY)))];
      const expected = weeks.flatMap((w) => sources.map((s) => {
        const cell = pro.filter((e) => weekOf(e.ts) === w && e.utm_source === s);
        return { t: ISO(w), utm_source: s, events: cell.length, users: uniq(cell.map((e) => e.uid)) };
      }));
      expect(r.tables[0]!.rows).toEqual(expected);
      const quoted = await run('events', { ...range(0, 35), interval: 'month', filter: ["utm_source:eq:o'hara \\ co", 'data.price:gte:100'] });
      expect(quoted.meta.events).toBe(client.filter((e) => e.utm_source === "o'hara \\ co" && Number(e.props.price) >= 100).length);
    });

    it('users - unique per day and in total; DAU / WAU / MAU; new vs returning per week', async () => {
      const unique = await run('users', range(0, 35));
      expect(unique.meta.total).toBe(uniq(client.map((e) => e.uid)));
      expect(unique.tables[0]!.rows[3]).toEqual({ t: ISO(BASE + 3 * DAY), users: uniq(client.filter((e) => dayOf(e.ts) === BASE + 3 * DAY).map((e) => e.uid)) });

      const active = await run('users', { ...range(20, 30), metric: 'active' });
      const within = (d: number, n: number): number => uniq(client.filter((e) => dayOf(e.ts) <= d && dayOf(e.ts) > d - n * DAY).map((e) => e.uid));
      expect(active.tables[0]!.rows).toEqual(Array.from({ length: 10 }, (_, i) => {
        const d = BASE + (20 + i) * DAY;
        return { day: ISO(d).slice(0, 10), dau: within(d, 1), wau: within(d, 7), mau: within(d, 30) };
      }));

      const fresh = await run('users', { ...range(7, 28), metric: 'new', interval: 'week' });
      const first = new Map<string, number>();
      for (const e of client) first.set(e.uid, Math.min(first.get(e.uid) ?? Infinity, e.ts));
      expect(fresh.tables[0]!.rows).toEqual([7, 14, 21].map((d) => {
        const w = BASE + d * DAY;
        const who = [...new Set(client.filter((e) => e.ts >= w && e.ts < w + 7 * DAY).map((e) => e.uid))];
        return { t: ISO(w), new: who.filter((u) => first.get(u)! >= w).length, returning: who.filter((u) => first.get(u)! < w).length };
      }));
    });

    it('funnel - ad-hoc ordered steps within a window: per-step reached and users as the funnel rules give them', async () => {
      const steps = ['in.gen.shop.view', 'in.gen.shop.cart', 'in.gen.shop.buy'];
      const windowMs = 2 * 3_600_000;
      const r = await run('funnel', { ...range(0, 35), step: steps, window: '2h' });
      const want = orderedFunnel(client, steps, windowMs);
      expect(r.tables[0]!.rows.map((row) => [row.reached, row.users])).toEqual(want.map((s) => [s.reached, s.users.size]));
      expect(want[2]!.reached).toBeGreaterThan(0);
      expect(r.meta.conversions).toBe(want[2]!.reached);
    });

    it('funnel - strict mode, where an event stored twice would break the order: each stored event counts once', async () => {
      const steps = ['in.gen.shop.view', 'in.gen.shop.cart', 'in.gen.shop.buy'];
      const r = await run('funnel', { ...range(0, 35), step: steps, window: '2h', mode: 'strict' });
      const want = orderedFunnel(client, steps, 2 * 3_600_000, true);
      expect(r.tables[0]!.rows.map((row) => [row.reached, row.users])).toEqual(want.map((s) => [s.reached, s.users.size]));
      expect(want[1]!.reached).toBeGreaterThan(0);
      // The fixture writes every 9th event twice: the read merged the copies.
      expect(r.meta.final).toBe(true);
    });

    it('funnel - with no event stored twice the read skips FINAL and counts the same', async () => {
      const steps = ['in.gen.shop.view', 'in.gen.shop.cart', 'in.gen.shop.buy'];
      // The same client events in a project of their own, each written once.
      const rows = client.map((e) => {
        const [, , service, name] = e.key.split('.');
        return { ...e, project_id: SINGLE_PROJECT, service, name, event_date: e.ts, page_path: new URL(e.page_url).pathname };
      });
      const encoder = createJsonEachRowEncoder(EVENTS, store.capabilities);
      await store.insert({ table: 'events', columns: encoder.columns, format: 'JSONEachRow', body: encoder.encode(rows).body });
      for (const mode of ['ordered', 'strict'] as const) {
        const want = orderedFunnel(client, steps, 2 * 3_600_000, mode === 'strict').map((s) => [s.reached, s.users.size]);
        const single = await run('funnel', { ...range(0, 35), project: String(SINGLE_PROJECT), step: steps, window: '2h', mode });
        expect(single.meta.final, mode).toBe(false);
        expect(single.tables[0]!.rows.map((row) => [row.reached, row.users]), mode).toEqual(want);
      }
    });

    it('funnel - a user\'s events go in the order their actor stamped them; rows without a stamp (before schema 4) by received_at', async () => {
      const steps = ['in.gen.shop.view', 'in.gen.shop.cart', 'in.gen.shop.buy'];
      const t = BASE + 3 * DAY;
      // view, cart, buy a minute apart by client time; the server clock stepped
      // back between them, so by received_at they came in as buy, cart, view.
      const user = (uid: string, stamps: readonly number[]): Record<string, unknown>[] => steps.map((key, i) => ({
        event_id: `0190e000-0000-7000-8000-${uid.padStart(8, '0')}000${i}`, project_id: 0, key, channel: 'gen', service: 'shop', name: key.split('.')[3],
        uid, session_id: `s-${uid}`, seq: i + 1, ts: t + i * 60_000, event_date: t, received_at: t + 3_000 - i * 1_000, arrival: stamps[i],
      }));
      const write = async (projectId: number, rows: Record<string, unknown>[]): Promise<void> => {
        const encoder = createJsonEachRowEncoder(EVENTS, store.capabilities);
        const batch = encoder.encode(rows.map((r) => ({ ...r, project_id: projectId })));
        expect(batch.rejected).toEqual([]);
        await store.insert({ table: 'events', columns: encoder.columns, format: 'JSONEachRow', body: batch.body });
      };
      const reached = async (projectId: number): Promise<{ order: unknown; steps: unknown[] }> => {
        const r = await run('funnel', { ...range(0, 35), project: String(projectId), step: steps, window: '1h' });
        return { order: r.meta.order, steps: r.tables[0]!.rows.map((row) => row.reached) };
      };
      // Stamped in processing order: the funnel converts.
      await write(21, user('a', [5_000, 5_001, 5_002]));
      expect(await reached(21)).toEqual({ order: 'arrival', steps: [1, 1, 1] });
      // Stored before the stamp existed: received_at order, only view is reached (nothing follows it).
      await write(22, user('b', [0, 0, 0]));
      expect(await reached(22)).toEqual({ order: 'received', steps: [1, 0, 0] });
      // One user with an unstamped view and stamped cart and buy after it, one with nothing stamped: each in its order.
      await write(23, [...user('c', [0, (t + 10_000) * 1024, (t + 10_000) * 1024 + 1]), ...user('d', [0, 0, 0])]);
      expect(await reached(23)).toEqual({ order: 'received', steps: [2, 1, 1] });
    });

    it('retention - daily cohorts by first event, returns in the 7 days after; weekly signup → buy', async () => {
      const r = await run('retention', { ...range(0, 14), period: 'day', periods: '7' });
      const byUser = new Map<string, Set<number>>();
      for (const e of client) (byUser.get(e.uid) ?? byUser.set(e.uid, new Set()).get(e.uid)!).add(dayOf(e.ts));
      const expected = new Map<number, number[]>();
      for (const days of byUser.values()) {
        const c = Math.min(...days);
        if (c >= BASE + 14 * DAY) continue;
        const row = expected.get(c) ?? expected.set(c, Array.from({ length: 9 }, () => 0)).get(c)!;
        row[0]!++;
        for (const d of days) { const k = (d - c) / DAY; if (k <= 7) row[k + 1]!++; }
      }
      expect(r.tables[0]!.rows).toEqual([...expected.entries()].sort((a, b) => a[0] - b[0]).map(([c, n]) => ({
        cohort: ISO(c).slice(0, 10), users: n[0], ...Object.fromEntries(n.slice(1).map((v, k) => [`day_${k}`, v])),
      })));

      const w = await run('retention', { ...range(0, 28), period: 'week', periods: '3', start: 'in.gen.track.signup', return: 'in.gen.shop.buy' });
      const signup = new Map<string, number>();
      for (const e of client) if (e.key === 'in.gen.track.signup') signup.set(e.uid, Math.min(signup.get(e.uid) ?? Infinity, e.ts));
      const cohorts = new Map<number, number[]>();
      for (const [uid, t] of signup) {
        const c = weekOf(t);
        const row = cohorts.get(c) ?? cohorts.set(c, [0, 0, 0, 0, 0]).get(c)!;
        row[0]!++;
        const buys = new Set(client.filter((e) => e.uid === uid && e.key === 'in.gen.shop.buy').map((e) => (weekOf(e.ts) - c) / (7 * DAY)));
        for (const k of buys) if (k >= 0 && k <= 3) row[k + 1]!++;
      }
      expect(w.tables[0]!.rows).toEqual([...cohorts.entries()].filter(([c]) => c < BASE + 28 * DAY).sort((a, b) => a[0] - b[0]).map(([c, n]) => ({
        cohort: ISO(c).slice(0, 10), users: n[0], week_0: n[1], week_1: n[2], week_2: n[3], week_3: n[4],
      })));
    });

    it('sessions - count, median and mean duration, bounce rate, pages; top landing pages (latest version of each session)', async () => {
      const r = await run('sessions', { ...range(0, 35), limit: '5' });
      const s = fixture.sessions;
      const durations = s.map((x) => x.ended_at - x.started_at).sort((a, b) => a - b);
      expect(r.tables[0]!.rows[0]).toEqual({
        sessions: s.length, users: uniq(s.map((x) => x.uid)),
        median_duration_ms: durations[Math.floor(durations.length / 2)],
        mean_duration_ms: Math.round(durations.reduce((a, b) => a + b, 0) / s.length * 10) / 10,
        bounce_rate: Math.round(s.filter((x) => x.pages <= 1).length / s.length * 10_000) / 10_000,
        pages_per_session: Math.round(s.reduce((a, x) => a + x.pages, 0) / s.length * 1000) / 1000,
      });
      const landing = new Map<string, number>();
      for (const x of s) landing.set(x.landing_page, (landing.get(x.landing_page) ?? 0) + 1);
      const top = [...landing.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, 5);
      expect(r.tables[1]!.rows.map((row) => [row.landing_page, row.sessions])).toEqual(top);
      const countries = r.tables.find((t) => t.title === 'countries')!;
      expect(countries.rows.reduce((n, row) => n + (row.sessions as number), 0)).toBe(s.length);
    });

    it('timeline - one uid newest first across pages; by user id every uid that carried it', async () => {
      const uid = [...client].sort((a, b) => a.uid.localeCompare(b.uid)).find((e) => client.filter((x) => x.uid === e.uid).length > 12)!.uid;
      const mine = fixture.events.filter((e) => e.project_id === PROJECT && e.uid === uid)
        .sort((a, b) => b.ts - a.ts || (a.event_id < b.event_id ? 1 : -1));
      const seen: string[] = [];
      let cursor: string | null = null;
      for (let page = 0; page < 20; page++) {
        const r: QueryResult = await run('timeline', { uid, limit: '5', from: ISO(BASE), to: ISO(NOW), project: String(PROJECT), ...(cursor ? { cursor } : {}) });
        seen.push(...r.tables[0]!.rows.map((row) => row.id as string));
        expect(r.tables[1]!.rows.length).toBeGreaterThan(0);
        cursor = r.meta.next as string | null;
        if (cursor === null) break;
      }
      expect(seen).toEqual(mine.map((e) => e.event_id));
      const byUser = await run('timeline', { user: 'cust-0', limit: '1000', from: ISO(BASE), to: ISO(NOW), project: String(PROJECT) });
      expect(byUser.tables[0]!.rows.length).toBe(fixture.events.filter((e) => e.project_id === PROJECT && e.uid === 'u0000').length);
    });

    it('segments - did X at least N times, with a property filter, as rows and CSV-ready cells', async () => {
      const r = await run('segments', { ...range(0, 35), did: 'in.gen.shop.buy:2', filter: 'geo_country:in:DE|FR' });
      const expected = [...new Set(client.map((e) => e.uid))].sort().filter((u) => {
        const mine = client.filter((e) => e.uid === u);
        return mine.filter((e) => e.key === 'in.gen.shop.buy').length >= 2 && mine.some((e) => e.geo_country === 'DE' || e.geo_country === 'FR');
      });
      expect(expected.length).toBeGreaterThan(0);
      expect(r.tables[0]!.rows.map((row) => [row.uid, row.events])).toEqual(expected.map((u) => [u, client.filter((e) => e.uid === u).length]));
    });

    it('a bad parameter is FLOW_ERR_FIELD_INVALID naming it, before any query', async () => {
      const cases: [string, Record<string, string | string[]>, string][] = [
        ['events', { from: 'yesterday' }, 'from'],
        ['events', { from: ISO(BASE + DAY), to: ISO(BASE) }, 'to'],
        ['events', { from: '2001-01-01', to: '2026-01-01' }, 'from'],
        ['events', { interval: 'minute', from: ISO(BASE), to: ISO(BASE + 30 * DAY) }, 'interval'],
        ['events', { breakdown: 'password' }, 'breakdown'],
        ['events', { filter: 'utm_source:like:x' }, 'filter'],
        ['events', { key: 'in.gen.*.x.y.z' }, 'key'],
        ['events', { nonsense: '1' }, 'nonsense'],
        ['events', { limit: '100000' }, 'limit'],
        ['funnel', { funnel: 'nope' }, 'funnel'],
        ['funnel', { step: 'in.gen.a.b', window: '900d' }, 'window'],
        ['timeline', { uid: 'a b' }, 'uid'],
        ['timeline', { uid: 'a', cursor: "1_'; DROP" }, 'cursor'],
        ['segments', { did: 'in.gen.shop.buy:0' }, 'did'],
        ['nope', {}, 'report'],
      ];
      for (const [report, params, field] of cases) {
        const err = await run(report, params).then(() => null, (e: unknown) => e);
        expect(isFlowError(err, 'FLOW_ERR_FIELD_INVALID'), `${report} ${JSON.stringify(params)}`).toBe(true);
        expect((err as { params: { field: string } }).params.field).toBe(field);
      }
    });

    it('injection attempts in every parameter are refused or taken as plain values; the data is untouched', async () => {
      const before = await store.query<{ n: string }>(`SELECT count() AS n FROM \`${store.database}\`.events`);
      const evil = ["'; DROP TABLE events; --", "x' OR '1'='1", '\\\' OR 1=1 --', '{p0:String}', "') UNION ALL SELECT name FROM system.tables --", '1; SELECT 1'];
      const attempts: [string, string][] = [];
      const reports: Record<string, string[]> = {
        events: ['from', 'to', 'interval', 'key', 'filter', 'breakdown', 'limit', 'project'],
        users: ['metric', 'interval', 'from'],
        funnel: ['funnel', 'step', 'mode', 'window', 'breakdown'],
        retention: ['period', 'periods', 'start', 'return'],
        sessions: ['limit', 'to'],
        timeline: ['uid', 'user', 'cursor', 'limit'],
        segments: ['did', 'filter', 'limit'],
      };
      for (const [report, names] of Object.entries(reports)) {
        for (const name of names) {
          for (const v of evil) {
            const params: Record<string, string> = name === 'cursor' || name === 'limit' ? { uid: 'u0001' } : {};
            if (report === 'timeline' && name === 'user') delete params.uid;
            if (report === 'timeline' && !('uid' in params) && name !== 'user') params.uid = 'u0001';
            if (report === 'funnel' && name !== 'funnel' && name !== 'step') params.step = 'in.gen.shop.view';
            params[name] = v;
            attempts.push([report, name]);
            const out = await run(report, params).then((r) => r, (e: unknown) => e);
            if (isFlowError(out)) expect(out.code, `${report}.${name}=${v}: ${out.message}`).toBe('FLOW_ERR_FIELD_INVALID');
            else expect((out as QueryResult).tables.length, `${report}.${name}=${v}`).toBeGreaterThan(0);
          }
        }
      }
      // Values that are allowed as data: a filter value and a user id full of SQL.
      for (const v of evil) {
        const r = await run('events', { ...range(0, 35), filter: `utm_source:eq:${v}` });
        expect(r.meta.events).toBe(0);
        const u = await run('timeline', { user: v, project: String(PROJECT) });
        expect(u.tables[0]!.rows).toEqual([]);
        const p = await run('events', { ...range(0, 35), filter: `data.${'x'}:contains:${v}` });
        expect(p.meta.events).toBe(0);
      }
      expect(attempts.length).toBeGreaterThan(100);
      const after = await store.query<{ n: string }>(`SELECT count() AS n FROM \`${store.database}\`.events`);
      expect(after).toEqual(before);
    });

    it('another project\'s events and derived events are not what users did', async () => {
      const r = await run('users', range(0, 35));
      expect(r.meta.total).toBe(uniq(client.map((e) => e.uid)));
      const other = await run('events', { ...range(0, 35), project: String(OTHER_PROJECT), key: 'in.gen.shop.buy' });
      expect(other.meta.events).toBe(fixture.events.filter((e) => e.project_id === OTHER_PROJECT).length);
    });
  });
}

/**
 * Ordered funnel, window from the first step, no filters or exclusions:
 * docs/funnels.md, restated plainly. `strict`: while an attempt runs, a step-0
 * event begins it again and any other step event out of turn ends it.
 */
function orderedFunnel(events: readonly FixtureEvent[], steps: readonly string[], windowMs: number, strict = false): { reached: number; users: Set<string> }[] {
  const out = steps.map(() => ({ reached: 0, users: new Set<string>() }));
  const byUser = new Map<string, FixtureEvent[]>();
  for (const e of events) (byUser.get(e.uid) ?? byUser.set(e.uid, []).get(e.uid)!).push(e);
  for (const [uid, list] of byUser) {
    list.sort((a, b) => a.received_at - b.received_at || a.seq - b.seq);
    let level = 0;
    let t0 = 0;
    let tl = 0;
    for (const e of list) {
      const hit = steps.indexOf(e.key);
      if (hit < 0) continue;
      if (level > 0 && Math.max(e.ts, tl) - t0 > windowMs) level = 0;
      if (level === 0) {
        if (hit !== 0) continue;
        level = 1; t0 = tl = e.ts;
        out[0]!.reached++; out[0]!.users.add(uid);
      } else if (hit === level) {
        tl = Math.max(e.ts, tl);
        out[level]!.reached++; out[level]!.users.add(uid);
        level = level + 1 === steps.length ? 0 : level + 1;
      } else if (strict && hit === 0) {
        t0 = tl = Math.max(e.ts, tl);
        level = 1;
        out[0]!.reached++; out[0]!.users.add(uid);
      } else if (strict) {
        level = 0;
      }
    }
  }
  return out;
}
