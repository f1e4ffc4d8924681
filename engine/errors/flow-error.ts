import { ERROR_CODES, type ErrorCode, type ErrorSpec } from './codes.js';

export type ErrorParams = Readonly<Record<string, string | number>>;

/**
 * The error type every flowstat component throws or returns. It carries its
 * registry entry so the gateway can answer with the right status / RPC code
 * without a lookup table of its own, and it keeps the underlying `cause`.
 */
export class FlowError extends Error {
  readonly code: ErrorCode;
  readonly params: ErrorParams;
  readonly status: number;
  readonly rpcCode: number;
  readonly wsClose: number | undefined;
  readonly retryable: boolean;

  constructor(code: ErrorCode, params: ErrorParams = {}, options?: { cause?: unknown }) {
    const spec: ErrorSpec = ERROR_CODES[code];
    super(formatMessage(spec.message, params), options);
    this.name = 'FlowError';
    this.code = code;
    this.params = params;
    this.status = spec.status;
    this.rpcCode = spec.rpcCode;
    this.wsClose = spec.wsClose;
    this.retryable = spec.retryable;
  }

  /** The shape clients receive: `{ error: { code, message } }`. */
  toJSON(): { error: { code: ErrorCode; message: string } } {
    return { error: { code: this.code, message: this.message } };
  }
}

export function createError(code: ErrorCode, params?: ErrorParams, cause?: unknown): FlowError {
  return new FlowError(code, params, cause === undefined ? undefined : { cause });
}

export function isFlowError(err: unknown, code?: ErrorCode): err is FlowError {
  return err instanceof FlowError && (code === undefined || err.code === code);
}

/** Wraps anything thrown into a FlowError, keeping the original as `cause`. */
export function toFlowError(err: unknown, fallback: ErrorCode = 'FLOW_ERR_INTERNAL'): FlowError {
  if (err instanceof FlowError) return err;
  const reason = err instanceof Error ? err.message : String(err);
  return new FlowError(fallback, { reason }, { cause: err });
}

function formatMessage(template: string, params: ErrorParams): string {
  return template.replace(/\{(\w+)\}/g, (whole, name: string) => {
    const value = params[name];
    return value === undefined ? whole : String(value);
  });
}
