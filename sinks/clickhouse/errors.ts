import { createError, type FlowError } from '../../engine/index.js';

/**
 * Every store failure is classified (STYLE habit 3):
 * - `retry`: the store is unreachable or busy — network, timeouts, 5xx,
 *   too many parts, memory pressure, a stale keep-alive socket (EPIPE). The
 *   batch is kept (spooled) and retried with backoff; nothing is dropped.
 * - `row`: the data was refused (a value that does not parse as its column
 *   type). The batch is split to find the rows; they go to dead_letters.
 * - `schema`: the table or a column is missing / wrong. Splitting would
 *   dead-letter everything, so the batch is kept and retried like an outage
 *   while the error is logged loudly for an operator.
 */
export type FailureClass = 'retry' | 'row' | 'schema';

/** ClickHouse exception codes that pass if you wait. */
const RETRYABLE_CODES = new Set([
  159, // TIMEOUT_EXCEEDED
  160, // TOO_SLOW
  164, // READONLY
  202, // TOO_MANY_SIMULTANEOUS_QUERIES
  203, // NO_FREE_CONNECTION
  209, // SOCKET_TIMEOUT
  210, // NETWORK_ERROR
  236, // ABORTED
  241, // MEMORY_LIMIT_EXCEEDED
  242, // TABLE_IS_READ_ONLY
  252, // TOO_MANY_PARTS
  285, // TOO_FEW_LIVE_REPLICAS
  319, // UNKNOWN_STATUS_OF_INSERT
  394, // QUERY_WAS_CANCELLED
  425, // SYSTEM_ERROR
  999, // KEEPER_EXCEPTION
]);

/** Codes that say the table itself is wrong, not a row. */
const SCHEMA_CODES = new Set([
  16, // NO_SUCH_COLUMN_IN_TABLE
  44, // ILLEGAL_COLUMN
  47, // UNKNOWN_IDENTIFIER
  60, // UNKNOWN_TABLE
  62, // SYNTAX_ERROR
  81, // UNKNOWN_DATABASE
  115, // UNKNOWN_SETTING
  497, // ACCESS_DENIED
  516, // AUTHENTICATION_FAILED
]);

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND', 'UND_ERR_SOCKET', 'ECONNABORTED']);

export interface StoreFailure {
  readonly kind: FailureClass;
  readonly code: string;
  readonly error: FlowError;
}

/** Classifies anything a store call threw. */
export function classifyStoreError(err: unknown): StoreFailure {
  const carried = (err as { clickhouseCode?: unknown } | null)?.clickhouseCode;
  const clickhouseCode = typeof carried === 'number' && Number.isFinite(carried) ? carried : undefined;
  const message = err instanceof Error ? err.message : String(err);
  const nodeCode = (err as { code?: unknown } | null)?.code;
  if (typeof nodeCode === 'string' && NETWORK_CODES.has(nodeCode)) return retry(nodeCode, message, err);
  if (/timeout|socket hang up|ECONNREFUSED|ECONNRESET|EPIPE/i.test(message) && clickhouseCode === undefined) return retry('network', message, err);
  const status = (err as { statusCode?: unknown } | null)?.statusCode;
  if (typeof status === 'number' && status >= 500 && clickhouseCode === undefined) return retry(`http_${status}`, message, err);
  const code = clickhouseCode ?? codeFromMessage(message);
  if (code === undefined) return retry('unknown', message, err);
  if (RETRYABLE_CODES.has(code)) return retry(String(code), message, err);
  const reason = message.slice(0, 500);
  if (SCHEMA_CODES.has(code)) return { kind: 'schema', code: String(code), error: createError('FLOW_ERR_STORE_REJECTED', { reason }, err) };
  return { kind: 'row', code: String(code), error: createError('FLOW_ERR_STORE_REJECTED', { reason }, err) };
}

function retry(code: string, message: string, err: unknown): StoreFailure {
  return { kind: 'retry', code, error: createError('FLOW_ERR_STORE_UNAVAILABLE', { reason: message.slice(0, 500) }, err) };
}

/** "Code: 27, e.displayText() = …" (old servers) or "Code: 27. DB::Exception …" (new). */
export function codeFromMessage(message: string): number | undefined {
  const m = /Code:\s*(\d+)/.exec(message);
  return m ? Number(m[1]) : undefined;
}
