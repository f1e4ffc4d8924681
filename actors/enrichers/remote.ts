import type { Envelope } from '../../engine/index.js';
import type { EnrichPatch, Enricher } from './types.js';

/**
 * A remote enricher: an HTTP service (a Python model, a CRM lookup) that
 * receives the declared envelope fields as JSON and answers with a JSON
 * object of columns — how Rockstat's Band services plugged in, but bounded by
 * a timeout instead of stalling the event. Only declared columns are kept.
 */

export interface RemoteEnricherOptions {
  readonly name: string;
  readonly url: string;
  readonly namespace: string;
  /** Columns the service may set (e.g. ["props_segment"] or ["geo_city"]). */
  readonly columns: readonly string[];
  readonly reads: readonly (keyof Envelope)[];
  readonly timeoutMs: number;
  readonly headers?: Readonly<Record<string, string>>;
}

export function createRemoteEnricher(o: RemoteEnricherOptions): Enricher {
  const headers = { 'content-type': 'application/json', ...o.headers };
  return {
    name: o.name,
    namespace: o.namespace,
    columns: o.columns,
    reads: o.reads,
    timeoutMs: o.timeoutMs,
    async enrich(envelope): Promise<EnrichPatch> {
      const body: Record<string, unknown> = {};
      for (const field of o.reads) body[field] = envelope[field];
      const res = await fetch(o.url, {
        method: 'POST',
        headers,
        body: JSON.stringify(body),
        // The runtime stops waiting at the timeout; this also frees the socket.
        signal: AbortSignal.timeout(o.timeoutMs + 50),
      });
      if (!res.ok) throw new Error(`remote enricher ${o.name} answered ${res.status}`);
      const patch = (await res.json()) as unknown;
      if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) throw new Error(`remote enricher ${o.name} did not answer an object`);
      const out: Record<string, string | number> = {};
      for (const col of o.columns) {
        const v = (patch as Record<string, unknown>)[col];
        if (typeof v === 'string' || typeof v === 'number') out[col] = v;
      }
      return out;
    },
  };
}
