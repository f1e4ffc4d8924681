/** sinks/spool — undeliverable batches parked on disk, in order, bounded. */
export { adoptSpool, Spool } from './spool.js';
export type { SpoolEntry } from './spool.js';
