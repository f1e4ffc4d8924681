/**
 * engine/envelope — the Envelope every event travels in, and its validation
 * with errors that name the field.
 */
export { createEnvelope, eventIdFromClientId, newEventId, isValidUid, isUuid, LIMITS as ENVELOPE_LIMITS, CLIENT_ID_NAMESPACE } from './envelope.js';
export type { Envelope, EnvelopeInput } from './envelope.js';
export { packUuid, unpackUuid } from './uuid.js';
