import { describe, expect, it } from 'vitest';
import { Packr } from 'msgpackr';
import { packSnapshot, unpackSnapshot, type IngestSnapshot } from '../../actors/snapshot.js';
import { uuidv7 } from '../../engine/envelope/uuid.js';
import type { IngestState } from '../../actors/index.js';
import { createEnvelope } from '../../engine/index.js';
import { ingestHarness } from '../support/ingest.js';

const T = Date.UTC(2026, 11, 4, 21, 0, 0, 123);

/** A passivated user as the session actor leaves one: one session, a funnel attempt, a churn state. */
function snapshotAt(t: number, over: Partial<IngestSnapshot> = {}): IngestSnapshot {
  return {
    events: 3,
    arrival: (t + 1_800_000) * 1024 + 2,
    userId: '',
    session: {
      id: uuidv7(t - 60_000), seq: 3, pages: 2, startedAt: t - 60_000, lastAt: t, lastReceivedAt: t + 40, splitAt: 0, campaign: '',
      landing: 'https://shop.example.com/', exit: 'https://shop.example.com/p/2', referrer: 'https://www.google.com/', sourceType: 'search',
      utmSource: '', utmMedium: '', utmCampaign: '', deviceType: 'desktop', browser: 'Chrome', os: 'Windows', country: 'US', city: 'Mountain View',
      isBot: 0, endedAtSeq: 3,
    },
    dedup: { hashes: [123456789012345, 42], next: 0 },
    funnels: {
      checkout: { s: 'reached_1', t0: t - 50_000, tl: t - 20_000, m: 3, v: '1rlzf6y', d: t + 600_000, k: 1 },
      engaged: { s: 'reached_0', t0: t, tl: t, m: 1, v: 'x9' },
    },
    churn: { t, a: 1.5, min: 0.75, p: 1 / 3, l: t, hi: false },
    funnelProgress: 0.5,
    churnAt: 0,
    wakeAt: t + 600_000,
    ...over,
  };
}

const packr = new Packr({ useRecords: false });

describe('session actor snapshot format', () => {
  it('stores the session id as 22 characters and the times as small differences, and gives back exactly the state', () => {
    const state = snapshotAt(T);
    const packed = packSnapshot(state) as unknown as Record<string, unknown> & { session: Record<string, unknown> };
    expect(packed.f).toBe(2);
    expect(packed.session.id).toHaveLength(22);
    expect(packed.session.startedAt).toBe(T - 60_000);
    expect(packed.session.lastAt).toBe(60_000);
    expect(packed.session.lastReceivedAt).toBe(40);
    expect(packed.arrival).toBe(1_800_000 * 1024 - 40 * 1024 + 2);
    expect(packed.churn).toMatchObject({ t: 0, l: 0, a: 1.5 });
    expect(packed.funnels).toMatchObject({ checkout: { t0: -50_000, tl: -20_000, d: T + 600_000 }, engaged: { t0: 0, tl: 0 } });
    expect(unpackSnapshot(structuredClone(packed))).toEqual(state);
    // Over MessagePack: the state's own layout against the stored one.
    expect(packr.pack(packed).length).toBeLessThan(packr.pack(state).length - 50);
  });

  it('gives back every time exactly, over many times and offsets, negative differences included', () => {
    for (let i = 0; i < 2_000; i++) {
      const t = T + Math.floor(Math.sin(i) * 1e10);
      const state = snapshotAt(t, {
        arrival: (t - 5_000 + i) * 1024 + (i % 1024),
        churn: { t: t - i * 977, a: i / 7, min: 0, p: 0, l: t + i, hi: i % 2 === 0 },
      });
      expect(unpackSnapshot(packSnapshot(state))).toEqual(state);
    }
  });

  it('keeps the state as it is (format 1) where format 2 could not give it back exactly', () => {
    const fractional = snapshotAt(T, { churn: { t: T + 0.5, a: 1, min: 0, p: 0, l: T, hi: false } });
    const notUuid = snapshotAt(T);
    const upper = snapshotAt(T);
    const cases = [
      snapshotAt(T, { session: null }),
      fractional,
      { ...notUuid, session: { ...notUuid.session!, id: 'session-1' } },
      { ...upper, session: { ...upper.session!, id: upper.session!.id.toUpperCase() } },
    ];
    for (const state of cases) {
      expect(packSnapshot(state)).toBe(state);
      expect(unpackSnapshot(state)).toBe(state);
    }
  });

  it('hands anything else on unchanged for restore to check: format 1, junk, a malformed format 2', () => {
    for (const stored of [undefined, null, 7, 'x', [], { events: 1 }, { f: 2 }, { f: 2, session: null }, { f: 2, session: { id: 'short' } }, { f: 3, session: {} }]) {
      expect(unpackSnapshot(stored)).toBe(stored);
    }
  });
});

describe('session actor snapshot format - through the actor', () => {
  const actor = { projectId: 1, uid: '56383633-824c-4e85-8a8e-f62f50e0126d' };
  function setup(now: () => number) {
    const { rows, behavior } = ingestHarness({
      funnels: [{ name: 'buy', steps: [{ pattern: 'in.gen.shop.view' }, { pattern: 'in.gen.shop.cart' }, { pattern: 'in.gen.shop.buy' }] }],
      dedupIds: 8,
      now,
    });
    const send = async (state: IngestState, key: string, at: number, id?: string): Promise<IngestState> => {
      const envelope = createEnvelope({ key, projectId: 1, uid: actor.uid, ts: at, receivedAt: at + 15, ip: '203.0.113.9', userAgent: 'test', id });
      return behavior.receive(state, { envelope, responder: null }, actor);
    };
    return { rows, behavior, send };
  }

  it('a passivated user is stored in format 2 and comes back as it left: same session, funnel step, churn, dedup, arrival', async () => {
    let now = T;
    const { rows, behavior, send } = setup(() => now);
    let state = behavior.initial(actor);
    state = await send(state, 'in.gen.shop.view', T, 'client-1');
    state = await send(state, 'in.gen.shop.cart', T + 5_000);
    now = T + 65_000;
    const stored = JSON.parse(JSON.stringify(behavior.snapshot!(state, actor))) as Record<string, unknown>;
    expect(stored.f).toBe(2);
    const restored = behavior.restore!(stored, actor);
    // The state the format 1 layout (builds before 2026-12-05) would have stored, restored the same.
    const legacy = behavior.restore!(JSON.parse(JSON.stringify(unpackSnapshot(stored))), actor);
    const { memo: _a, ...fromStored } = restored;
    const { memo: _b, ...fromLegacy } = legacy;
    expect(fromStored).toEqual(fromLegacy);
    expect(restored.session).toEqual(state.session);
    expect(restored.churn).toEqual(state.churn);
    expect(restored.funnels).toEqual(state.funnels);
    expect(restored.arrival).toBe(state.arrival);

    // Back within the idle window: the same session goes on, the funnel converts, the repeated id is dropped.
    now = T + 70_000;
    await send(restored, 'in.gen.shop.view', T + 6_000, 'client-1');
    const after = await send(restored, 'in.gen.shop.buy', T + 70_000);
    expect(after.session!.id).toBe(state.session!.id);
    expect(after.session!.seq).toBe(3);
    const steps = rows.filter((r) => r.key === 'in.sys.funnel.buy').map((r) => (r.props as { step: number }).step);
    expect(steps).toEqual([0, 1, 2]);
  });
});
