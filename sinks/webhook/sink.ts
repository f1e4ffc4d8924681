import { createError, type Clock, type FlowError, type Logger } from '../../engine/index.js';
import { createBatchingSink, type DeadLetter } from '../batch/index.js';
import type { StoreFailure } from '../clickhouse/errors.js';
import type { AckTarget, Sink } from '../contract.js';
import type { TableName } from '../schema/types.js';
import { Spool } from '../spool/index.js';

/**
 * The webhook forwarder: batches of events POSTed as JSON lines
 * (application/x-ndjson) to a configured URL, with the same retry, spool and
 * dead-letter machinery as the ClickHouse sink — the pattern for streaming to
 * other systems (Rockstat's Send Mixpanel).
 *
 * 2xx: delivered. 408, 429, 5xx, network errors, timeouts: retried with
 * backoff (spooled meanwhile). Other 4xx: the receiver refuses the data — the
 * batch is split to find the rows it refuses, which go to dead_letters.
 */

export interface WebhookSinkOptions {
  readonly name: string;
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
  readonly maxRows: number;
  readonly maxBytes: number;
  readonly flushMs: number;
  readonly spoolDir: string;
  readonly spoolMaxBytes: number;
  readonly tables: ReadonlySet<TableName>;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly deadLetter: (letters: readonly DeadLetter[]) => void;
  /** Deliver what a previous run spooled (durability: memory); with a write-ahead log it is replayed instead. */
  readonly keepSpool?: boolean;
}

class HttpStatusError extends Error {
  constructor(readonly status: number, body: string) {
    super(`webhook answered ${status}: ${body.slice(0, 300)}`);
  }
}

function classify(err: unknown): StoreFailure {
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof HttpStatusError) {
    const retryable = err.status === 408 || err.status === 429 || err.status >= 500;
    const error: FlowError = retryable
      ? createError('FLOW_ERR_STORE_UNAVAILABLE', { reason: message }, err)
      : createError('FLOW_ERR_STORE_REJECTED', { reason: message }, err);
    return { kind: retryable ? 'retry' : 'row', code: `http_${err.status}`, error };
  }
  return { kind: 'retry', code: 'network', error: createError('FLOW_ERR_STORE_UNAVAILABLE', { reason: message }, err) };
}

export function createWebhookSink(o: WebhookSinkOptions): Sink {
  const spool = new Spool<(AckTarget | null)[]>(o.spoolDir, o.spoolMaxBytes);
  if (o.keepSpool ?? true) spool.load();
  else spool.discard();
  return createBatchingSink({
    name: `webhook:${o.name}`,
    spool,
    clock: o.clock,
    logger: o.logger,
    maxRows: o.maxRows,
    maxBytes: o.maxBytes,
    flushMs: o.flushMs,
    tables: o.tables,
    deadLetter: o.deadLetter,
    delivery: {
      async deliver(table, rows) {
        let body = '';
        for (const row of rows) body += `${JSON.stringify({ table, ...row }, bigintAsString)}\n`;
        const res = await fetch(o.url, {
          method: 'POST',
          headers: { 'content-type': 'application/x-ndjson', ...o.headers },
          body,
          signal: AbortSignal.timeout(o.timeoutMs),
        });
        const text = await res.text();
        if (!res.ok) throw new HttpStatusError(res.status, text);
        return [];
      },
      classify,
    },
  });
}

function bigintAsString(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}
