/**
 * engine/system — the actor system. Promises: one virtual actor per
 * (project, uid), created on its first message; that user's messages are
 * processed one at a time in arrival order; idle actors are passivated by a
 * timer wheel and restored on their next message; a throwing actor keeps its
 * last good state and its failing message goes to the dead-letter listener;
 * queues are bounded and a full one is refused with a result code, never grown.
 */
export { createActorSystem, tellError, SYSTEM_DEFAULTS } from './system.js';
export type { ActorSystem, ActorSystemOptions } from './system.js';
export { createMemoryStateStore } from './state-store.js';
export type { StateStore } from './state-store.js';
export { createLmdbStateStore, stateKey, StateStoreError } from './lmdb-state-store.js';
export type { KeyMigrationProgress, LmdbStateStore, LmdbStateStoreOptions } from './lmdb-state-store.js';
export { createTimerWheel } from './timer-wheel.js';
export type { TimerWheel, WheelEntry } from './timer-wheel.js';
export { hashUid, shardOf } from './hash.js';
export { Mailbox } from './mailbox.js';
export * from './types.js';
export { createReminders, REMINDER_HORIZON_MS } from './reminders.js';
export type { Reminder, Reminders, RemindersOptions } from './reminders.js';
