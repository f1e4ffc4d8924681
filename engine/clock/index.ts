/** engine/clock — the injected clock: real (unref'd timers) or manual for tests. */
export { createSystemClock, createManualClock } from './clock.js';
export type { Clock, ManualClock, Timer } from './clock.js';
