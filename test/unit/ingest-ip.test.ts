import { describe, expect, it } from 'vitest';
import type { IngestState } from '../../actors/index.js';
import { createEnvelope } from '../../engine/index.js';
import { ingestHarness } from '../support/ingest.js';

/**
 * IP anonymization through the session actor (actors/ingest-behavior.ts):
 * a user who changes address — or sends one that is not an address — gets
 * each event's own address anonymized, and no address reaches the snapshot.
 */

const T0 = Date.UTC(2026, 5, 1, 8);
const actor = { projectId: 1, uid: 'ip-user' };

describe('session actor: IP anonymization per event', () => {
  it('stores each event\'s own address, anonymized, as the user moves between addresses', async () => {
    const { rows, behavior } = ingestHarness({ funnels: [], dedupIds: 0, now: () => T0, ipAnonymization: 'zero' });
    const sent: [string, string][] = [
      ['203.0.113.9', '203.0.113.0'],
      ['203.0.113.9', '203.0.113.0'],
      ['198.51.100.7', '198.51.100.0'],
      ['203.0.113.77', '203.0.113.0'],
      ['not-an-ip', ''],
      ['2001:db8:1234:5678::1', '2001:db8:1234::'],
      ['', ''],
      ['198.51.100.7', '198.51.100.0'],
    ];
    let state: IngestState = behavior.initial(actor);
    for (const [i, [ip]] of sent.entries()) {
      const envelope = createEnvelope({ key: 'in.gen.track.page', projectId: 1, uid: actor.uid, ts: T0 + i, receivedAt: T0 + i, ip, userAgent: 'test' });
      state = await behavior.receive(state, { envelope, responder: null }, actor);
    }
    expect(rows.filter((r) => r.channel === 'gen').map((r) => r.ip)).toEqual(sent.map(([, stored]) => stored));
  });

  it('keeps no address in the snapshot, and anonymizes again after a restore', async () => {
    const { rows, behavior } = ingestHarness({ funnels: [], dedupIds: 0, now: () => T0, ipAnonymization: 'drop' });
    let state: IngestState = behavior.initial(actor);
    const send = async (s: IngestState, ip: string, at: number): Promise<IngestState> =>
      behavior.receive(s, { envelope: createEnvelope({ key: 'in.gen.track.page', projectId: 1, uid: actor.uid, ts: at, receivedAt: at, ip, userAgent: 'test' }), responder: null }, actor);
    state = await send(state, '203.0.113.9', T0);
    const snapshot = JSON.parse(JSON.stringify(behavior.snapshot!(state, actor))) as Record<string, unknown>;
    expect(JSON.stringify(snapshot)).not.toContain('203.0.113');
    await send(behavior.restore!(snapshot, actor), '203.0.113.9', T0 + 1);
    expect(rows.filter((r) => r.channel === 'gen').map((r) => r.ip)).toEqual(['', '']);
  });
});
