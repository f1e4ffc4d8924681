/**
 * engine/errors — the error registry (stable FLOW_ERR_* codes with HTTP, JSON-RPC
 * and WebSocket mappings and a retryable flag) and the FlowError type.
 */
export { ERROR_CODES, RPC_PARSE_ERROR, RPC_INVALID_REQUEST, RPC_METHOD_NOT_FOUND, RPC_INVALID_PARAMS, RPC_INTERNAL_ERROR } from './codes.js';
export type { ErrorCode, ErrorSpec } from './codes.js';
export { FlowError, createError, isFlowError, toFlowError } from './flow-error.js';
export type { ErrorParams } from './flow-error.js';
