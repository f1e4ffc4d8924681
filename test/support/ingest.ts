import { createIngestBehavior, type IngestBehavior } from '../../actors/index.js';
import { createEnricherSet } from '../../actors/enrichers/index.js';
import { createChurn, createFunnels } from '../../actors/machines/index.js';
import { createSessionizer } from '../../actors/session/index.js';
import { SESSION_DEFAULTS } from '../../engine/index.js';
import type { OutRecord, Pipeline } from '../../sinks/index.js';

/**
 * The real session actor behaviour with no enrichers, its `events` rows
 * caught where the sinks would get them: for tests that drive `receive`,
 * `snapshot` and `restore` by hand.
 */
export function ingestHarness(o: {
  readonly funnels: unknown; readonly dedupIds: number; readonly now: () => number; readonly ipAnonymization?: 'zero' | 'drop' | 'none';
}): {
  readonly rows: Record<string, unknown>[];
  readonly behavior: IngestBehavior;
} {
  const rows: Record<string, unknown>[] = [];
  const pipeline = {
    emit(records: readonly OutRecord[]) { for (const r of records) if (r.table === 'events') rows.push(r.row); },
    deadLetter() { throw new Error('no dead letter expected'); },
  } as unknown as Pipeline;
  const behavior = createIngestBehavior({
    pipeline,
    enrichers: createEnricherSet([]),
    sessions: createSessionizer({ ...SESSION_DEFAULTS, projectTimeZones: {} }),
    funnels: createFunnels(o.funnels),
    churn: createChurn({}),
    ipAnonymization: o.ipAnonymization ?? 'none',
    dropBots: false,
    dedupIds: o.dedupIds,
    now: o.now,
  });
  return { rows, behavior };
}
