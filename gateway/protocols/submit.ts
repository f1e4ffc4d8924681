import {
  createEnvelope, createError, tellError, toFlowError, TELL_ACCEPTED,
  type Envelope, type EnvelopeInput, type FlowError, type IngestMessage, type Reply, type Responder,
} from '../../engine/index.js';
import type { GatewayContext } from '../context.js';
import type { ClientInfo } from '../http/client-ip.js';
import { bump } from '../metrics.js';
import type { RequestHead } from '../transport/index.js';

/**
 * What the protocol adapters (Segment, GA4, Snowplow, Countly) share: a
 * request carries one or many events in a vendor's format; the adapter maps
 * each to an EnvelopeInput and hands them here. Each is validated, told to
 * its user's actor like any other event (same enrichers, sessions, funnels,
 * sinks), and `done` runs once every one has an outcome — stored durably per
 * the durability mode, or refused. An event that fails validation, and a
 * whole request an adapter cannot read, go to dead_letters with the reason:
 * nothing a client sent is dropped without a trace.
 */

export interface ProtocolEvent {
  readonly input: EnvelopeInput;
  /** The event as the client sent it: what dead_letters keeps if it is refused. */
  readonly raw: unknown;
}

export type Outcome =
  | { readonly ok: true; readonly envelope: Envelope; readonly reply: Reply }
  | { readonly ok: false; readonly error: FlowError };

type AdmitRequest = { readonly head: RequestHead; readonly client: ClientInfo };

export interface Submitter {
  /**
   * Whether a request of `count` events may come in now: null, or why not —
   * shutting down, storage backed up (503, Retry-After), or over the
   * client's rate limit (429). Counted in the rejected metrics. Adapters ask
   * before they write anything, dead letters included (count 1 for a
   * request they cannot read), so a flood of bad requests is refused like
   * any other and cannot grow dead_letters without bound.
   */
  admit(req: AdmitRequest, count: number): FlowError | null;
  /** The rate limit alone, for requests that store nothing (GA4's validation server). */
  throttle(req: AdmitRequest, count: number): FlowError | null;
  /** `protocol` names the adapter in metrics and dead letters (`gateway:segment`). */
  submit(protocol: string, events: readonly ProtocolEvent[], done: (outcomes: readonly Outcome[]) => void): void;
  /** Keeps a request (or an event) the adapter refused in dead_letters. */
  deadLetter(protocol: string, projectId: number, err: FlowError, payload: unknown): void;
}

/** Collects the outcomes of one request's events; calls back when the last is in. */
class Collector {
  readonly outcomes: Outcome[];
  private pending: number;
  constructor(size: number, private readonly done: (outcomes: readonly Outcome[]) => void) {
    this.outcomes = new Array<Outcome>(size);
    this.pending = size;
  }
  set(i: number, outcome: Outcome): void {
    this.outcomes[i] = outcome;
    if (--this.pending === 0) this.done(this.outcomes);
  }
}

class EventResponder implements Responder {
  constructor(private readonly collector: Collector, private readonly index: number) {}
  respond(envelope: Envelope, reply: Reply): void {
    this.collector.set(this.index, reply.kind === 'error' ? { ok: false, error: reply.error } : { ok: true, envelope, reply });
  }
}

export function createSubmitter(ctx: GatewayContext): Submitter {
  const { metrics } = ctx;
  function deadLetter(protocol: string, projectId: number, err: FlowError, payload: unknown): void {
    ctx.pipeline.deadLetter({ at: ctx.clock.now(), projectId, source: `gateway:${protocol}`, code: err.code, reason: err.message, payload });
  }
  function throttle(req: AdmitRequest, count: number): FlowError | null {
    const retryAfter = ctx.limiter.take(req.client.ip, Math.max(1, count), req.head.receivedAt);
    if (retryAfter === 0) return null;
    const err = createError('FLOW_ERR_RATE_LIMITED', { retryAfter });
    bump(metrics.counters.rejected, err.code);
    return err;
  }
  return {
    deadLetter,
    admit(req, count) {
      let err: FlowError | null = null;
      if (ctx.closing) err = createError('FLOW_ERR_SHUTTING_DOWN');
      else if (ctx.saturated()) err = createError('FLOW_ERR_OVERLOADED', { reason: 'storage backlog', retryAfter: 5 });
      if (err === null) return throttle(req, count);
      bump(metrics.counters.rejected, err.code);
      return err;
    },
    throttle,
    submit(protocol, events, done) {
      if (events.length === 0) { done([]); return; }
      const collector = new Collector(events.length, done);
      for (let i = 0; i < events.length; i++) {
        const { input, raw } = events[i]!;
        let envelope: Envelope;
        try {
          envelope = createEnvelope(input);
        } catch (err) {
          const e = toFlowError(err, 'FLOW_ERR_INVALID_REQUEST');
          bump(metrics.counters.rejected, e.code);
          deadLetter(protocol, typeof input.projectId === 'number' ? input.projectId : 0, e, raw);
          collector.set(i, { ok: false, error: e });
          continue;
        }
        bump(metrics.counters.received, envelope.channel);
        const message: IngestMessage = { envelope, responder: new EventResponder(collector, i) };
        const result = ctx.system.tell(envelope.projectId, envelope.uid, message);
        if (result !== TELL_ACCEPTED) {
          const e = tellError(result)!;
          bump(metrics.counters.rejected, e.code);
          collector.set(i, { ok: false, error: e });
          continue;
        }
        bump(metrics.counters.accepted, envelope.channel);
      }
    },
  };
}
