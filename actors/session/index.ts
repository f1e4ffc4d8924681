export { createSessionizer, campaignOf, type Session, type SessionOptions, type Sessionizer, type SplitReason, type Step } from './session.js';
export { nextMidnight } from './time-zone.js';
export { hash53, inRing, remember, type DedupRing } from './dedup.js';
export { ARRIVAL_PER_MS, derivedRow, sessionStartRow, sessionEndRow, sessionsRow, derivedEventId } from './rows.js';
