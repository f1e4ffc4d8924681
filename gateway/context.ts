import type { ActorSystem, Clock, Config, IngestMessage, Logger } from '../engine/index.js';
import type { Pipeline } from '../sinks/index.js';
import type { Cors } from './http/cors.js';
import type { ClientInfo } from './http/client-ip.js';
import type { RedirectVerdict } from './http/redirect.js';
import type { RateLimiter } from './limits/rate-limiter.js';
import type { GatewayMetrics } from './metrics.js';
import type { RequestHead } from './transport/index.js';

/** What the HTTP and WebSocket handlers share, built once by createGateway. */
export interface GatewayContext {
  readonly config: Config;
  readonly gateway: Config['gateway'];
  readonly system: ActorSystem<IngestMessage>;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly metrics: GatewayMetrics;
  readonly limiter: RateLimiter;
  readonly cors: Cors;
  readonly clientInfo: (head: RequestHead) => ClientInfo;
  readonly redirect: (location: string) => RedirectVerdict;
  /** The storage pipeline, for what the gateway stores itself (cookie-sync identities, refused protocol requests in dead_letters); events go through the actors. */
  readonly pipeline: Pick<Pipeline, 'emit' | 'deadLetter'>;
  readonly ready: () => { ready: boolean; checks: Record<string, unknown> };
  /** True when storage is backed up (spool full): new events get FLOW_ERR_OVERLOADED. */
  readonly saturated: () => boolean;
  /** True once shutdown began: new work is refused with FLOW_ERR_SHUTTING_DOWN. */
  closing: boolean;
}
