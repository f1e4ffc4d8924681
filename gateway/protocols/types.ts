import type { GatewayContext } from '../context.js';
import type { ClientInfo } from '../http/client-ip.js';
import type { BodyTooLarge, Header, HttpResponseSink, RequestHead } from '../transport/index.js';
import type { Submitter } from './submit.js';

/**
 * A protocol adapter (gateway/protocols/): the endpoints of a vendor's SDK
 * wire format — Segment, GA4 Measurement Protocol, Snowplow, Countly — mapped
 * onto envelopes under `in.{protocol}.…` keys, answered the way that
 * vendor's own collector answers (so the SDK behaves as it would against
 * the vendor), with every refused request or event kept in dead_letters.
 */
export interface ProtocolAdapter {
  /** Short name: the key's channel (`in.segment.…`) and the dead letters' source (`gateway:segment`). */
  readonly name: string;
  /** True for the requests this adapter answers (path and method, and where endpoints are shared, the parameters). */
  matches(head: RequestHead): boolean;
  /** The largest body the protocol documents for this request, when above gateway.limits.maxBodyBytes. */
  readonly maxBodyBytes?: number;
  handle(req: ProtocolRequest): void;
}

export interface ProtocolRequest {
  readonly head: RequestHead;
  readonly res: HttpResponseSink;
  /** null without a body; BodyTooLarge past the limit (not buffered). */
  readonly body: Buffer | null | BodyTooLarge;
  /** CORS headers for the request's origin (the origin is already allowed). */
  readonly cors: readonly Header[];
  /** Client ip (trusted proxies applied) and whether the request came over https. */
  readonly client: ClientInfo;
}

export interface ProtocolDeps {
  readonly ctx: GatewayContext;
  readonly submitter: Submitter;
}
