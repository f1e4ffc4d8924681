import { describe, expect, it } from 'vitest';
import { createSessionizer, derivedEventId, hash53, inRing, nextMidnight, remember, type DedupRing, type Session, type SessionOptions } from '../../actors/session/index.js';
import { createEnvelope, newEventId, SESSION_DEFAULTS, type Envelope } from '../../engine/index.js';
import { eventRow, type Row } from '../../sinks/index.js';

const MIN = 60_000;
const T0 = Date.UTC(2026, 5, 10, 9, 0, 0); // 2026-06-10 09:00 UTC

function options(overrides: Partial<SessionOptions> = {}): SessionOptions {
  return { ...SESSION_DEFAULTS, projectTimeZones: {}, ...overrides };
}

interface Ev {
  readonly at: number;
  readonly key?: string;
  readonly url?: string;
  /** Enrichment columns the sessionizer reads (utm_*, click id, source...). */
  readonly cols?: Row;
}

function event(e: Ev): { envelope: Envelope; row: Row } {
  const envelope = createEnvelope({
    key: e.key ?? 'in.gen.track.page', projectId: 1, uid: 'u1', receivedAt: Math.max(e.at, T0), ts: e.at,
    ip: '203.0.113.9', userAgent: 'test', pageUrl: e.url ?? 'https://shop.example/',
  });
  return { envelope, row: { ...eventRow(envelope), ...e.cols } };
}

/** Runs the events through one sessionizer; returns the session id and seq of each, and the sessions that ended. */
function run(opts: SessionOptions, events: readonly Ev[]): { ids: string[]; seqs: number[]; ended: Session[]; last: Session } {
  const s = createSessionizer(opts);
  let current: Session | null = null;
  const ids: string[] = [];
  const seqs: number[] = [];
  const ended: Session[] = [];
  for (const e of events) {
    const { envelope, row } = event(e);
    const step = s.advance(current, envelope, row);
    if (step.ended !== null) ended.push({ ...step.ended });
    current = step.session;
    ids.push(current.id);
    seqs.push(current.seq);
  }
  return { ids, seqs, ended, last: current! };
}

/** Session numbers (0, 1, ...) per event, from their ids. */
function numbering(ids: readonly string[]): number[] {
  const seen = new Map<string, number>();
  return ids.map((id) => { if (!seen.has(id)) seen.set(id, seen.size); return seen.get(id)!; });
}

describe('sessions - splits', () => {
  it('idle: a gap of exactly idleMs starts a new session, a gap one ms shorter does not', () => {
    const r = run(options(), [{ at: T0 }, { at: T0 + 30 * MIN - 1 }, { at: T0 + 60 * MIN - 1 }, { at: T0 + 60 * MIN + 5 * MIN }]);
    expect(numbering(r.ids)).toEqual([0, 0, 1, 1]);
    expect(r.seqs).toEqual([1, 2, 1, 2]);
    expect(r.ended).toHaveLength(1);
    expect(r.ended[0]).toMatchObject({ seq: 2, startedAt: T0, lastAt: T0 + 30 * MIN - 1 });
  });

  it('max length: a session active without pause is cut at maxMs', () => {
    const events = Array.from({ length: 7 }, (_, i) => ({ at: T0 + i * 20 * MIN }));
    const r = run(options({ maxMs: 60 * MIN }), events);
    // 0, 20, 40 min; at 60 min the session is 60 min long: new one from there.
    expect(numbering(r.ids)).toEqual([0, 0, 0, 1, 1, 1, 2]);
  });

  it('midnight in UTC and in the project\'s time zone', () => {
    const late = Date.UTC(2026, 5, 10, 21, 50); // 23:50 in Berlin (CEST, UTC+2)
    const events = [{ at: late }, { at: late + 15 * MIN }, { at: late + 35 * MIN }];
    // UTC: 21:50, 22:05, 22:25 — no UTC midnight crossed.
    expect(numbering(run(options({ splitAtMidnight: true }), events).ids)).toEqual([0, 0, 0]);
    // Berlin: 23:50, 00:05 (next day), 00:25.
    expect(numbering(run(options({ splitAtMidnight: true, timeZone: 'Europe/Berlin' }), events).ids)).toEqual([0, 1, 1]);
    // Per project: project 1 in Berlin.
    expect(numbering(run(options({ splitAtMidnight: true, projectTimeZones: { 1: 'Europe/Berlin' } }), events).ids)).toEqual([0, 1, 1]);
    // Off: no split.
    expect(numbering(run(options({ timeZone: 'Europe/Berlin' }), events).ids)).toEqual([0, 0, 0]);
  });

  it('campaign: a different campaign starts a session; the same one or none continues it', () => {
    const spring = { utm_source: 'newsletter', utm_medium: 'email', utm_campaign: 'spring' };
    const r = run(options(), [
      { at: T0, cols: spring },
      { at: T0 + MIN },                                       // internal navigation: no campaign
      { at: T0 + 2 * MIN, cols: spring },                     // the same link clicked again
      { at: T0 + 3 * MIN, cols: { ...spring, utm_campaign: 'summer' } },
      { at: T0 + 4 * MIN, cols: { click_id: 'Cj0KCQ', click_id_type: 'gclid' } },
      { at: T0 + 5 * MIN, cols: { click_id: 'Cj0KCQ', click_id_type: 'gclid' } },
    ]);
    expect(numbering(r.ids)).toEqual([0, 0, 0, 1, 2, 2]);
    expect(numbering(run(options({ splitOnCampaign: false }), [{ at: T0, cols: spring }, { at: T0 + MIN, cols: { utm_source: 'x' } }]).ids)).toEqual([0, 0]);
  });

  it('out of order: an older event joins the current session and moves neither its end nor its exit page', () => {
    const r = run(options(), [
      { at: T0, url: 'https://shop.example/a' },
      { at: T0 + 10 * MIN, url: 'https://shop.example/b' },
      { at: T0 - 50 * MIN, url: 'https://shop.example/late' }, // far older than idle: still no new session
      { at: T0 + 12 * MIN, url: 'https://shop.example/c' },
    ]);
    expect(numbering(r.ids)).toEqual([0, 0, 0, 0]);
    expect(r.seqs).toEqual([1, 2, 3, 4]);
    expect(r.last).toMatchObject({ lastAt: T0 + 12 * MIN, landing: 'https://shop.example/a', exit: 'https://shop.example/c', pages: 4 });
  });

  it('counts pages by the configured page keys', () => {
    const r = run(options(), [
      { at: T0, key: 'in.gen.track.page' },
      { at: T0 + 1, key: 'in.gen.track.click' },
      { at: T0 + 2, key: 'in.gen.web.pageview' },
      { at: T0 + 3, key: 'in.gen.shop.add_to_cart' },
    ]);
    expect(r.last).toMatchObject({ seq: 4, pages: 2 });
  });

  it('a session remembers where it came from: source, device, geo of its first event', () => {
    const r = run(options(), [
      { at: T0, cols: { source_type: 'search', ua_browser: 'Firefox', ua_os: 'Linux', ua_device_type: 'desktop', geo_country: 'DE', geo_city: 'Berlin' } },
      { at: T0 + MIN, cols: { source_type: 'internal', ua_browser: 'Chrome' } },
    ]);
    expect(r.last).toMatchObject({ sourceType: 'search', browser: 'Firefox', os: 'Linux', deviceType: 'desktop', country: 'DE', city: 'Berlin' });
  });
});

describe('sessions - nextMidnight', () => {
  it('UTC', () => {
    expect(nextMidnight(Date.UTC(2026, 0, 1, 12), 'UTC')).toBe(Date.UTC(2026, 0, 2));
    expect(nextMidnight(Date.UTC(2026, 0, 1), 'UTC')).toBe(Date.UTC(2026, 0, 2));
  });

  it('Europe/Berlin around the spring and autumn DST changes', () => {
    // 2026-03-29: clocks go 02:00 CET -> 03:00 CEST.
    expect(nextMidnight(Date.UTC(2026, 2, 28, 12), 'Europe/Berlin')).toBe(Date.UTC(2026, 2, 28, 23)); // 00:00 CET
    expect(nextMidnight(Date.UTC(2026, 2, 29, 12), 'Europe/Berlin')).toBe(Date.UTC(2026, 2, 29, 22)); // 00:00 CEST
    // 2026-10-25: clocks go 03:00 CEST -> 02:00 CET; the day has 25 hours.
    expect(nextMidnight(Date.UTC(2026, 9, 24, 23), 'Europe/Berlin')).toBe(Date.UTC(2026, 9, 25, 23)); // from 01:00 CEST on the 25th
  });

  it('America/Sao_Paulo, where DST once skipped midnight itself', () => {
    // 2018-11-04: 00:00 -> 01:00. The day started at 01:00 local = 03:00 UTC.
    expect(nextMidnight(Date.UTC(2018, 10, 3, 15), 'America/Sao_Paulo')).toBe(Date.UTC(2018, 10, 4, 3));
  });
});

describe('sessions - dedup ring', () => {
  it('remembers up to capacity ids, forgetting the oldest first', () => {
    const ring: DedupRing = { hashes: [], next: 0 };
    const ids = Array.from({ length: 6 }, (_, i) => hash53(`client-id-${i}`));
    for (const h of ids.slice(0, 4)) remember(ring, h, 4);
    expect(ids.slice(0, 4).every((h) => inRing(ring, h))).toBe(true);
    remember(ring, ids[4]!, 4);
    remember(ring, ids[5]!, 4);
    expect(ids.map((h) => inRing(ring, h))).toEqual([false, false, true, true, true, true]);
    expect(ring.hashes).toHaveLength(4);
  });

  it('hash53 is a 53-bit integer that tells 100k similar ids apart', () => {
    const seen = new Set<number>();
    for (let i = 0; i < 100_000; i++) {
      const h = hash53(`evt-${i}`);
      expect(Number.isSafeInteger(h) && h >= 0).toBe(true);
      seen.add(h);
    }
    expect(seen.size).toBe(100_000);
  });
});

describe('sessions - derived event ids', () => {
  it('start and end ids are distinct version-8 UUIDs, stable for a session and distinct across sessions', () => {
    const uuid8 = /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
    const seen = new Set<string>();
    for (let i = 0; i < 10_000; i++) {
      const id = newEventId(T0 + (i >> 4));
      const start = derivedEventId(id, 'start');
      const end = derivedEventId(id, 'end');
      expect(start).toMatch(uuid8);
      expect(end).toMatch(uuid8);
      expect(derivedEventId(id, 'end')).toBe(end);
      seen.add(start).add(end);
    }
    expect(seen.size).toBe(20_000);
  });
});
