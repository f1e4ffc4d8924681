import { DEFAULT_REPLY, type ActorBehavior, type Envelope, type IngestMessage, type Reply, type Responder } from '../engine/index.js';
import { eventRow, type Pipeline, type Row } from '../sinks/index.js';
import { anonymizeIp, type EnricherSet, type EnrichMemo } from './enrichers/index.js';

/**
 * The session actor as it stands: it enriches each event (local enrichers
 * inline, remote ones within their timeout), anonymizes the IP for storage,
 * hands the row to the storage pipeline and answers with the default reply
 * once the event is durable (with durability: wal, after the write-ahead
 * log's fsync). The handler machines (#6) plug in here.
 */
export interface IngestState {
  readonly events: number;
  /** The enrichers' per-session memo: live state only, never in the snapshot. */
  readonly memo: EnrichMemo | undefined;
}

/** What a passivated session keeps. */
interface IngestSnapshot {
  readonly events: number;
}

export interface IngestOptions {
  readonly pipeline: Pipeline;
  readonly enrichers: EnricherSet;
  readonly ipAnonymization: 'zero' | 'drop' | 'none';
  readonly dropBots: boolean;
}

/** A reply held until its event is durable. */
class HeldReply {
  constructor(private readonly responder: Responder, private readonly envelope: Envelope, private readonly reply: Reply) {}
  durable(): void {
    this.responder.respond(this.envelope, this.reply);
  }
}

export function createIngestBehavior(o: IngestOptions): ActorBehavior<IngestState, IngestMessage> {
  function finish(state: IngestState, message: IngestMessage, row: Row): IngestState {
    const { envelope, responder } = message;
    row.ip = anonymizeIp(envelope.ip, o.ipAnonymization);
    if (o.dropBots && row.is_bot === 1) {
      // Acknowledged, not stored: the client is not told it was recognized.
      responder?.respond(envelope, DEFAULT_REPLY);
      return state;
    }
    o.pipeline.emit([{ table: 'events', row }], responder === null ? null : new HeldReply(responder, envelope, DEFAULT_REPLY));
    return { events: state.events + 1, memo: state.memo };
  }

  return {
    initial: () => ({ events: 0, memo: o.enrichers.memo() }),
    receive(state, message) {
      const row = eventRow(message.envelope);
      const pending = o.enrichers.apply(message.envelope, row, state.memo);
      if (pending === undefined) return finish(state, message, row);
      return pending.then(() => finish(state, message, row));
    },
    snapshot: (state): IngestSnapshot => ({ events: state.events }),
    restore: (snapshot) => ({ events: (snapshot as IngestSnapshot).events, memo: o.enrichers.memo() }),
  };
}
