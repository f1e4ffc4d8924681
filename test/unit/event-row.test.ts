import { describe, expect, it } from 'vitest';
import { createEnvelope } from '../../engine/index.js';
import { eventRow } from '../../sinks/index.js';
import { EVENTS } from '../../sinks/schema/tables.js';

/**
 * sinks/records.ts eventRow declares every events column up front so that
 * enrichment and the session actor fill slots instead of growing the object.
 * That only holds while its keys are the table's columns, in the table's order.
 */
describe('eventRow', () => {
  const envelope = createEnvelope({
    key: 'in.gen.shop.view', projectId: 7, uid: 'row-user',
    ip: '198.51.100.7', userAgent: 'Mozilla/5.0', receivedAt: Date.UTC(2026, 5, 1),
    data: { sku: 'a1' },
  });

  it('has exactly the events columns, in schema order', () => {
    expect(Object.keys(eventRow(envelope))).toEqual(EVENTS.columns.map((c) => c.name));
  });

  it('carries the envelope fields and leaves the later columns unset', () => {
    const row = eventRow(envelope);
    expect(row).toMatchObject({ project_id: 7, key: 'in.gen.shop.view', uid: 'row-user', ip: '198.51.100.7', props: { sku: 'a1' }, arrival: 0 });
    expect(row.session_id).toBeUndefined();
    expect(row.ua_browser).toBeUndefined();
    expect(row.geo_country).toBeUndefined();
  });
});
