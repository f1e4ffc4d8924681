import { describe, expect, it } from 'vitest';
import type { IngestState } from '../../actors/index.js';
import { createEnvelope } from '../../engine/index.js';
import { ingestHarness } from '../support/ingest.js';

/**
 * The session actor's `arrival` stamp (actors/ingest-behavior.ts,
 * nextArrival): what the funnel report orders a user's events by. Driven
 * through the real behavior, its rows caught where the sinks would get them.
 */

const T0 = Date.UTC(2026, 5, 1, 8);
const actor = { projectId: 1, uid: 'stamp-user' };

function setup() {
  const { rows, behavior } = ingestHarness({
    funnels: [{ name: 'buy', steps: [{ pattern: 'in.gen.shop.view' }, { pattern: 'in.gen.shop.buy' }] }],
    dedupIds: 0,
    now: () => T0,
  });
  const send = async (state: IngestState, key: string, receivedAt: number, ts = T0): Promise<IngestState> => {
    const envelope = createEnvelope({ key, projectId: 1, uid: actor.uid, ts, receivedAt, ip: '203.0.113.9', userAgent: 'test' });
    return behavior.receive(state, { envelope, responder: null }, actor);
  };
  return { rows, behavior, send };
}

const clientRows = (rows: readonly Record<string, unknown>[]): Record<string, unknown>[] => rows.filter((r) => r.channel === 'gen');

describe('arrival stamps', () => {
  it('are the receive time in ms × 1024 while the clock moves on', async () => {
    const { rows, behavior, send } = setup();
    let state = behavior.initial(actor);
    state = await send(state, 'in.gen.track.page', T0 + 10);
    await send(state, 'in.gen.track.page', T0 + 20);
    expect(clientRows(rows).map((r) => r.arrival)).toEqual([(T0 + 10) * 1024, (T0 + 20) * 1024]);
  });

  it('keep increasing within one millisecond and when the clock steps back', async () => {
    const { rows, behavior, send } = setup();
    let state = behavior.initial(actor);
    for (const at of [T0 + 50, T0 + 50, T0 + 50, T0 + 10, T0 + 49, T0 + 51]) state = await send(state, 'in.gen.track.page', at);
    const b = (T0 + 50) * 1024;
    expect(clientRows(rows).map((r) => r.arrival)).toEqual([b, b + 1, b + 2, b + 3, b + 4, (T0 + 51) * 1024]);
  });

  it('go on from the last one after the actor is passivated and restored', async () => {
    const { rows, behavior, send } = setup();
    let state = behavior.initial(actor);
    state = await send(state, 'in.gen.track.page', T0 + 100);
    // The snapshot a state store keeps, through the encoding it would use.
    const restored = behavior.restore!(JSON.parse(JSON.stringify(behavior.snapshot!(state, actor))), actor);
    // Back from the state store with the clock behind the last stamp.
    await send(restored, 'in.gen.track.page', T0 + 90);
    const b = (T0 + 100) * 1024;
    // Passivation wrote the session's end (one past the page), the next page one past that.
    expect(rows.filter((r) => r.key !== 'in.sys.churn.score').map((r) => [r.key, r.arrival])).toEqual([
      ['in.sys.session.start', b], ['in.gen.track.page', b], ['in.sys.session.end', b + 1], ['in.gen.track.page', b + 2],
    ]);
  });

  it('derived rows: the session start and funnel steps carry their event\'s stamp, a session end its own, before the event that split it', async () => {
    const { rows, behavior, send } = setup();
    let state = behavior.initial(actor);
    state = await send(state, 'in.gen.shop.view', T0 + 1);
    // Forty minutes later by client time: the first session ends, a new one starts.
    await send(state, 'in.gen.shop.buy', T0 + 2, T0 + 40 * 60_000);
    const byKey = (key: string): unknown[] => rows.filter((r) => r.key === key).map((r) => r.arrival);
    const view = (T0 + 1) * 1024;
    const buy = (T0 + 2) * 1024;
    expect(byKey('in.gen.shop.view')).toEqual([view]);
    // The end is written at server time now() = T0, behind the view's stamp: one past it.
    expect(byKey('in.sys.session.end')).toEqual([view + 1]);
    expect(byKey('in.gen.shop.buy')).toEqual([buy]);
    expect(byKey('in.sys.session.start')).toEqual([view, buy]);
    expect(byKey('in.sys.funnel.buy')).toEqual([view, buy]);
    expect(rows.every((r) => typeof r.arrival === 'number' && r.arrival > 0)).toBe(true);
  });
});
