/**
 * The one registry of flowstat error codes. Every failure a client, an operator
 * or a component can see has a stable code here, with the HTTP status, the
 * JSON-RPC error code and (where a WebSocket is closed for it) the close code.
 * `retryable` tells callers and sinks whether trying the same thing again can
 * succeed. docs/errors.md lists the same codes; a test keeps the two in sync.
 *
 * Message templates use {name} placeholders filled from the error's params.
 */

export interface ErrorSpec {
  readonly message: string;
  readonly status: number;
  readonly rpcCode: number;
  readonly wsClose?: number;
  readonly retryable: boolean;
}

/** JSON-RPC 2.0 reserved codes, and the -32000..-32099 server range we use. */
export const RPC_PARSE_ERROR = -32700;
export const RPC_INVALID_REQUEST = -32600;
export const RPC_METHOD_NOT_FOUND = -32601;
export const RPC_INVALID_PARAMS = -32602;
export const RPC_INTERNAL_ERROR = -32603;

export const ERROR_CODES = {
  FLOW_ERR_CONFIG_INVALID: {
    message: 'invalid configuration: {details}',
    status: 500, rpcCode: RPC_INTERNAL_ERROR, retryable: false,
  },
  FLOW_ERR_COMPONENT_UNKNOWN: {
    message: 'unknown {kind} component "{type}"',
    status: 500, rpcCode: RPC_INTERNAL_ERROR, retryable: false,
  },
  FLOW_ERR_TOPOLOGY: {
    message: 'invalid component topology: {details}',
    status: 500, rpcCode: RPC_INTERNAL_ERROR, retryable: false,
  },
  FLOW_ERR_KEY_INVALID: {
    message: 'invalid routing key "{key}": {reason}',
    status: 400, rpcCode: RPC_INVALID_PARAMS, retryable: false,
  },
  FLOW_ERR_PATTERN_INVALID: {
    message: 'invalid key pattern "{pattern}": {reason}',
    status: 400, rpcCode: RPC_INVALID_PARAMS, retryable: false,
  },
  FLOW_ERR_FIELD_INVALID: {
    message: 'invalid field "{field}": {reason}',
    status: 400, rpcCode: RPC_INVALID_PARAMS, retryable: false,
  },
  FLOW_ERR_PARSE: {
    message: 'malformed payload: {reason}',
    status: 400, rpcCode: RPC_PARSE_ERROR, retryable: false,
  },
  FLOW_ERR_INVALID_REQUEST: {
    message: 'invalid request: {reason}',
    status: 400, rpcCode: RPC_INVALID_REQUEST, retryable: false,
  },
  FLOW_ERR_METHOD_NOT_FOUND: {
    message: 'unknown method "{method}"',
    status: 404, rpcCode: RPC_METHOD_NOT_FOUND, retryable: false,
  },
  FLOW_ERR_NOT_FOUND: {
    message: 'no route for {method} {path}',
    status: 404, rpcCode: RPC_METHOD_NOT_FOUND, retryable: false,
  },
  FLOW_ERR_PAYLOAD_TOO_LARGE: {
    message: 'payload of {size} bytes exceeds the limit of {limit} bytes',
    status: 413, rpcCode: RPC_INVALID_REQUEST, wsClose: 1009, retryable: false,
  },
  FLOW_ERR_BATCH_TOO_LARGE: {
    message: 'batch of {size} items exceeds the limit of {limit}',
    status: 413, rpcCode: RPC_INVALID_REQUEST, retryable: false,
  },
  FLOW_ERR_TOO_DEEP: {
    message: 'payload nesting exceeds the limit of {limit} levels',
    status: 400, rpcCode: RPC_INVALID_REQUEST, retryable: false,
  },
  FLOW_ERR_RATE_LIMITED: {
    message: 'rate limit exceeded, retry after {retryAfter} s',
    status: 429, rpcCode: -32029, retryable: true,
  },
  FLOW_ERR_ABUSE: {
    message: 'too many invalid messages on this connection',
    status: 400, rpcCode: RPC_INVALID_REQUEST, wsClose: 1008, retryable: false,
  },
  FLOW_ERR_SLOW_READER: {
    message: 'connection closed: {buffered} bytes of replies not read',
    status: 503, rpcCode: -32013, wsClose: 1013, retryable: true,
  },
  FLOW_ERR_UNAUTHORIZED: {
    message: 'missing or invalid credentials',
    status: 401, rpcCode: -32001, wsClose: 1008, retryable: false,
  },
  FLOW_ERR_ORIGIN_FORBIDDEN: {
    message: 'origin "{origin}" is not allowed',
    status: 403, rpcCode: -32003, wsClose: 1008, retryable: false,
  },
  FLOW_ERR_REDIRECT_FORBIDDEN: {
    message: 'redirect target host "{host}" is not on the allowlist',
    status: 400, rpcCode: RPC_INVALID_PARAMS, retryable: false,
  },
  FLOW_ERR_PARTNER_UNKNOWN: {
    message: 'unknown cookie-sync partner "{partner}"',
    status: 404, rpcCode: RPC_METHOD_NOT_FOUND, retryable: false,
  },
  FLOW_ERR_OVERLOADED: {
    message: 'engine overloaded ({reason}), retry after {retryAfter} s',
    status: 503, rpcCode: -32050, wsClose: 1013, retryable: true,
  },
  FLOW_ERR_SHUTTING_DOWN: {
    message: 'engine is shutting down',
    status: 503, rpcCode: -32051, wsClose: 1001, retryable: true,
  },
  FLOW_ERR_ACTOR_FAILED: {
    message: 'processing failed for this event: {reason}',
    status: 500, rpcCode: -32060, retryable: false,
  },
  FLOW_ERR_TIMEOUT: {
    message: '{what} timed out after {ms} ms',
    status: 504, rpcCode: -32062, retryable: true,
  },
  FLOW_ERR_STORE_UNAVAILABLE: {
    message: 'store unavailable: {reason}',
    status: 503, rpcCode: -32070, retryable: true,
  },
  FLOW_ERR_STORE_REJECTED: {
    message: 'store rejected the data: {reason}',
    status: 500, rpcCode: -32071, retryable: false,
  },
  FLOW_ERR_WEBHOOK_FAILED: {
    message: 'webhook {url} not delivered: {reason}',
    status: 502, rpcCode: -32072, retryable: false,
  },
  FLOW_ERR_WAL_RECORD: {
    message: 'write-ahead log record could not be read back: {reason}',
    status: 500, rpcCode: -32073, retryable: false,
  },
  FLOW_ERR_QUERY_TOO_LARGE: {
    message: 'the query would read {size} {what}, over the limit of {limit}: narrow the range or the filters',
    status: 400, rpcCode: RPC_INVALID_PARAMS, retryable: false,
  },
  FLOW_ERR_INTERNAL: {
    message: 'internal error: {reason}',
    status: 500, rpcCode: RPC_INTERNAL_ERROR, retryable: false,
  },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_CODES;
