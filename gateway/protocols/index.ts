import type { GatewayContext } from '../context.js';
import type { RequestHead } from '../transport/index.js';
import { createCountlyAdapter } from './countly.js';
import { createGa4Adapter } from './ga4.js';
import { createSegmentAdapter } from './segment.js';
import { createSnowplowAdapter } from './snowplow.js';
import { createSubmitter } from './submit.js';
import type { ProtocolAdapter } from './types.js';

/**
 * gateway/protocols — endpoints that speak other vendors' SDK wire formats
 * (docs/protocols.md). Each adapter maps its requests onto envelopes under
 * `in.{protocol}.…` and answers as the vendor's collector would; the events
 * then go through the same actors, enrichers and sinks as our own.
 */

export type { ProtocolAdapter, ProtocolRequest } from './types.js';

export interface Protocols {
  /** The adapter that answers this request, or null (the generic routes then do). */
  match(head: RequestHead): ProtocolAdapter | null;
}

export function createProtocols(ctx: GatewayContext): Protocols {
  const submitter = createSubmitter(ctx);
  const deps = { ctx, submitter };
  const adapters: readonly ProtocolAdapter[] = [createSegmentAdapter(deps), createGa4Adapter(deps), createSnowplowAdapter(deps), createCountlyAdapter(deps)];
  return {
    match(head) {
      for (const a of adapters) if (a.matches(head)) return a;
      return null;
    },
  };
}
