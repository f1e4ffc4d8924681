import { DEFAULT_REPLY, type ActorBehavior, type Envelope, type IngestMessage, type Reply, type Responder } from '../engine/index.js';
import { eventRow, type Pipeline } from '../sinks/index.js';

/**
 * The session actor as it stands: it hands each event to the storage
 * pipeline and answers with the default reply once the event is durable
 * (with durability: wal, after the write-ahead log's fsync). Enrichers (#5)
 * and the handler machines (#6) plug in here.
 */
export interface IngestState {
  readonly events: number;
}

/** A reply held until its event is durable. */
class HeldReply {
  constructor(private readonly responder: Responder, private readonly envelope: Envelope, private readonly reply: Reply) {}
  durable(): void {
    this.responder.respond(this.envelope, this.reply);
  }
}

export function createIngestBehavior(pipeline: Pipeline): ActorBehavior<IngestState, IngestMessage> {
  return {
    initial: () => ({ events: 0 }),
    receive(state, message) {
      const { envelope, responder } = message;
      pipeline.emit([{ table: 'events', row: eventRow(envelope) }], responder === null ? null : new HeldReply(responder, envelope, DEFAULT_REPLY));
      return { events: state.events + 1 };
    },
  };
}
