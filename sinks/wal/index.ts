/** sinks/wal — the write-ahead log with group commit, replayed at start. */
export { Wal, WalSegment } from './wal.js';
export type { Durable, ReplayedRecord, WalOptions, WalStats } from './wal.js';
