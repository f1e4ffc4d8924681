/** sinks/batch — batching, ordered delivery, retry with backoff, split on refused rows. */
export { createBatchingSink } from './batching-sink.js';
export type { BatchingSinkOptions, BatchPreparer, Delivery, DeadLetter, Refused } from './batching-sink.js';
export { backoffDelay, DEFAULT_BACKOFF } from './backoff.js';
export type { Backoff } from './backoff.js';
