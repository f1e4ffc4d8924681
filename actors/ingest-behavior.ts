import { DEFAULT_REPLY, type ActorBehavior, type IngestMessage } from '../engine/index.js';

/**
 * The session actor as it stands: it counts the user's events and answers
 * each with the default reply. Sinks (#4), enrichers (#5) and the handler
 * machines (#6) plug in here.
 */
export interface IngestState {
  readonly events: number;
}

export function createIngestBehavior(): ActorBehavior<IngestState, IngestMessage> {
  return {
    initial: () => ({ events: 0 }),
    receive(state, message) {
      message.responder?.respond(message.envelope, DEFAULT_REPLY);
      return { events: state.events + 1 };
    },
  };
}
