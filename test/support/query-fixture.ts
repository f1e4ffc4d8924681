import { mulberry32 } from '../../bench/lib/random.js';
import { createJsonEachRowEncoder } from '../../sinks/rows/index.js';
import { EVENTS, SESSIONS } from '../../sinks/schema/tables.js';
import type { Row } from '../../sinks/schema/types.js';
import type { ClickHouseStore } from '../../sinks/clickhouse/store.js';

/**
 * The query tests' fixture: a few weeks of clickstream for a few hundred
 * users, generated from a fixed seed — page views, a shop funnel (view →
 * cart → buy with prices and plans), signups, utm sources, countries,
 * devices, known user ids — plus what must NOT be counted: derived `sys`
 * events, another project's events, repeated events (same id, written twice)
 * and older versions of session rows. The tests compute what every report
 * should say from `events` / `sessions` here, in plain TypeScript.
 */

export const DAY = 86_400_000;
/** A Monday, 00:00 UTC. */
export const BASE = Date.UTC(2026, 0, 5);
export const PROJECT = 3;
export const OTHER_PROJECT = 4;

export interface FixtureEvent {
  readonly event_id: string;
  readonly project_id: number;
  readonly key: string;
  readonly channel: string;
  readonly uid: string;
  readonly user_id: string;
  readonly session_id: string;
  readonly seq: number;
  readonly ts: number;
  readonly received_at: number;
  /** The actor's order stamp (actors/ingest-behavior.ts, nextArrival): received ms × 1024. */
  readonly arrival: number;
  readonly page_url: string;
  readonly utm_source: string;
  readonly geo_country: string;
  readonly ua_device_type: string;
  readonly props: Readonly<Record<string, string | number>>;
}

export interface FixtureSession {
  readonly session_id: string;
  readonly uid: string;
  readonly user_id: string;
  readonly started_at: number;
  readonly ended_at: number;
  readonly events: number;
  readonly pages: number;
  readonly landing_page: string;
  readonly exit_page: string;
  readonly source_type: string;
  readonly utm_source: string;
  readonly utm_campaign: string;
  readonly device_type: string;
  readonly geo_country: string;
}

export interface Fixture {
  /** Every distinct event of every project and channel (what the store holds once deduplicated). */
  readonly events: readonly FixtureEvent[];
  /** The latest version of every session of PROJECT. */
  readonly sessions: readonly FixtureSession[];
  readonly users: number;
}

const COUNTRIES = ['DE', 'FR', 'US', 'BR', 'JP'];
const DEVICES = ['desktop', 'mobile', 'tablet'];
const SOURCES = ['', '', 'google', 'newsletter', "o'hara \\ co"];
const PAGES = ['/', '/pricing', '/blog/a', '/blog/b', '/docs'];

export function createFixture(seed = 7, users = 160, days = 35): Fixture {
  const rand = mulberry32(seed);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rand() * list.length)]!;
  const hex = (n: number): string => Array.from({ length: n }, () => Math.floor(rand() * 16).toString(16)).join('');
  const uuid = (): string => `${hex(8)}-${hex(4)}-7${hex(3)}-8${hex(3)}-${hex(12)}`;
  const events: FixtureEvent[] = [];
  const sessions: FixtureSession[] = [];

  for (let u = 0; u < users; u++) {
    const uid = `u${String(u).padStart(4, '0')}`;
    const country = pick(COUNTRIES);
    const device = pick(DEVICES);
    const firstDay = Math.floor(rand() * (days - 5));
    const loyalty = rand();
    let userId = '';
    let sessionNo = 0;
    for (let day = firstDay; day < days; day++) {
      if (day !== firstDay && rand() > loyalty * 0.5) continue;
      sessionNo++;
      if (sessionNo === 2 && u % 2 === 0) userId = `cust-${u}`;
      const sessionId = `s-${uid}-${String(sessionNo).padStart(3, '0')}`;
      const source = pick(SOURCES);
      let t = BASE + day * DAY + Math.floor(rand() * 20 * 3_600_000);
      const n = 1 + Math.floor(rand() * 8);
      const own: FixtureEvent[] = [];
      for (let i = 0; i < n; i++) {
        const r = rand();
        let key = 'in.gen.track.page';
        let props: Record<string, string | number> = {};
        if (sessionNo === 1 && i === 0 && u % 3 !== 0) key = 'in.gen.track.signup';
        else if (r < 0.2) { key = 'in.gen.shop.view'; props = { sku: `sku-${Math.floor(rand() * 5)}` }; }
        else if (r < 0.3) { key = 'in.gen.shop.cart'; props = { sku: `sku-${Math.floor(rand() * 5)}`, qty: 1 + Math.floor(rand() * 3) }; }
        else if (r < 0.36) { key = 'in.gen.shop.buy'; props = { price: Math.floor(rand() * 300), plan: rand() < 0.5 ? 'pro' : 'basic' }; }
        const page = pick(PAGES);
        own.push({
          event_id: uuid(), project_id: PROJECT, key, channel: 'gen', uid, user_id: userId, session_id: sessionId, seq: i + 1,
          ts: t, received_at: t + 150, arrival: (t + 150) * 1024, page_url: `https://shop.example${page}`, utm_source: source, geo_country: country, ua_device_type: device, props,
        });
        t += 10_000 + Math.floor(rand() * 300_000);
      }
      events.push(...own);
      // What the engine derives: must never count as something a user did.
      events.push({ ...own[0]!, event_id: uuid(), key: 'in.sys.session.start', channel: 'sys', seq: 0, props: {} });
      const pages = own.filter((e) => e.key === 'in.gen.track.page');
      sessions.push({
        session_id: sessionId, uid, user_id: userId, started_at: own[0]!.ts, ended_at: own[own.length - 1]!.ts,
        events: own.length, pages: pages.length, landing_page: own[0]!.page_url, exit_page: own[own.length - 1]!.page_url,
        source_type: source === '' ? 'direct' : 'paid', utm_source: source, utm_campaign: source === '' ? '' : 'spring',
        device_type: device, geo_country: country,
      });
    }
  }
  // Another project's traffic, same uids: never in PROJECT's reports.
  for (let i = 0; i < 50; i++) {
    const t = BASE + Math.floor(rand() * days * DAY);
    events.push({
      event_id: uuid(), project_id: OTHER_PROJECT, key: 'in.gen.shop.buy', channel: 'gen', uid: `u${String(i).padStart(4, '0')}`, user_id: '',
      session_id: `o-${i}`, seq: 1, ts: t, received_at: t + 150, arrival: (t + 150) * 1024, page_url: 'https://other.example/', utm_source: '', geo_country: 'DE', ua_device_type: 'desktop', props: { price: 1 },
    });
  }
  return { events, sessions, users };
}

function eventRow(e: FixtureEvent): Row {
  const [, , service, name] = e.key.split('.');
  return { ...e, service, name, event_date: e.ts, page_path: new URL(e.page_url).pathname };
}

function sessionRow(s: FixtureSession, version: number): Row {
  return { ...s, project_id: PROJECT, start_date: s.started_at, duration_ms: s.ended_at - s.started_at, version };
}

/** Writes the fixture: events (every 9th again, as a retried write would), sessions (with a stale older version of every 5th). */
export async function loadFixture(store: ClickHouseStore, f: Fixture): Promise<void> {
  const caps = store.capabilities;
  const ev = createJsonEachRowEncoder(EVENTS, caps);
  const se = createJsonEachRowEncoder(SESSIONS, caps);
  const insert = async (enc: typeof ev, table: 'events' | 'sessions', rows: Row[]): Promise<void> => {
    const batch = enc.encode(rows);
    if (batch.rejected.length > 0) throw new Error(`fixture rows refused: ${JSON.stringify(batch.rejected.slice(0, 3))}`);
    await store.insert({ table, columns: enc.columns, format: 'JSONEachRow', body: batch.body });
  };
  await insert(ev, 'events', f.events.map(eventRow));
  await insert(ev, 'events', f.events.filter((_, i) => i % 9 === 0).map(eventRow));
  await insert(se, 'sessions', f.sessions.filter((_, i) => i % 5 === 0).map((s) => ({ ...sessionRow(s, 0), events: 1, pages: 0, ended_at: s.started_at })));
  await insert(se, 'sessions', f.sessions.map((s) => sessionRow(s, s.events)));
}
