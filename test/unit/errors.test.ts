import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  ERROR_CODES,
  FlowError,
  createError,
  isFlowError,
  toFlowError,
  type ErrorCode,
} from '../../engine/errors/index.js';

interface DocRow {
  code: string;
  status: number;
  rpcCode: number;
  wsClose: number | undefined;
  retryable: boolean;
  message: string;
}

const DOC_PATH = new URL('../../docs/errors.md', import.meta.url);

/** The code table of docs/errors.md, one entry per `| \`FLOW_ERR_…\` | …` row. */
function readDocRows(): DocRow[] {
  const rows: DocRow[] = [];
  for (const line of readFileSync(DOC_PATH, 'utf8').split('\n')) {
    if (!line.startsWith('| `FLOW_ERR_')) continue;
    const cells = line.slice(1, line.lastIndexOf('|')).split(' | ').map((c) => c.trim());
    expect(cells, line).toHaveLength(7);
    const [code, status, rpc, close, retryable, , message] = cells as [string, string, string, string, string, string, string];
    expect(retryable, line).toMatch(/^(yes|no)$/);
    rows.push({
      code: code.replace(/`/g, ''),
      status: Number(status),
      rpcCode: Number(rpc),
      wsClose: close === '—' ? undefined : Number(close),
      retryable: retryable === 'yes',
      message: message.replace(/^`|`$/g, ''),
    });
  }
  return rows;
}

const CODES = Object.keys(ERROR_CODES) as ErrorCode[];

describe('errors - docs/errors.md', () => {
  const rows = readDocRows();

  it('lists exactly the codes of the registry, each once', () => {
    const documented = rows.map((r) => r.code);
    expect(new Set(documented).size).toBe(documented.length);
    expect([...documented].sort()).toEqual([...CODES].sort());
  });

  it.each(CODES)('documents %s with the registry\'s status, RPC code, close code, retryable flag and message', (code) => {
    const spec = ERROR_CODES[code];
    const row = rows.find((r) => r.code === code);
    expect(row).toBeDefined();
    expect(row).toEqual({
      code,
      status: spec.status,
      rpcCode: spec.rpcCode,
      wsClose: 'wsClose' in spec ? spec.wsClose : undefined,
      retryable: spec.retryable,
      message: spec.message,
    });
  });
});

describe('errors - registry', () => {
  it.each(CODES)('%s has a sane code, HTTP status, JSON-RPC code and close code', (code) => {
    const spec = ERROR_CODES[code];
    expect(code).toMatch(/^FLOW_ERR_[A-Z_]+$/);
    expect(spec.status).toBeGreaterThanOrEqual(400);
    expect(spec.status).toBeLessThan(600);
    // JSON-RPC 2.0: reserved codes -32768..-32600 plus the -32000..-32099 server range.
    expect(spec.rpcCode <= -32600 || (spec.rpcCode >= -32099 && spec.rpcCode <= -32000)).toBe(true);
    if ('wsClose' in spec) {
      expect(spec.wsClose).toBeGreaterThanOrEqual(1000);
      expect(spec.wsClose).toBeLessThan(5000);
    }
  });

  it('only server-side and throttling failures are retryable', () => {
    for (const code of CODES) {
      const spec = ERROR_CODES[code];
      if (spec.retryable) expect([429, 503, 504], code).toContain(spec.status);
    }
  });
});

describe('errors - FlowError', () => {
  it('fills the message template from params', () => {
    const err = createError('FLOW_ERR_KEY_INVALID', { key: 'in.gen', reason: 'expected 4 segments, got 2' });
    expect(err.message).toBe('invalid routing key "in.gen": expected 4 segments, got 2');
    expect(createError('FLOW_ERR_TIMEOUT', { what: 'enricher geo', ms: 50 }).message).toBe('enricher geo timed out after 50 ms');
  });

  it('leaves a placeholder visible when its param is missing', () => {
    expect(createError('FLOW_ERR_TIMEOUT', { what: 'flush' }).message).toBe('flush timed out after {ms} ms');
  });

  it('does not expand placeholders that appear inside param values', () => {
    const err = createError('FLOW_ERR_FIELD_INVALID', { field: '{reason}', reason: 'x' });
    expect(err.message).toBe('invalid field "{reason}": x');
  });

  it('carries the registry entry, code and params', () => {
    const params = { retryAfter: 2, reason: 'queue full' };
    const err = createError('FLOW_ERR_OVERLOADED', params);
    expect(err).toBeInstanceOf(Error);
    expect(err).toBeInstanceOf(FlowError);
    expect(err.name).toBe('FlowError');
    expect(err).toMatchObject({ code: 'FLOW_ERR_OVERLOADED', status: 503, rpcCode: -32050, wsClose: 1013, retryable: true, params });
    expect(createError('FLOW_ERR_PARSE', { reason: 'x' }).wsClose).toBeUndefined();
  });

  it('serializes to {error:{code,message}} and nothing else', () => {
    const err = createError('FLOW_ERR_FIELD_INVALID', { field: 'uid', reason: 'empty' }, new Error('secret detail'));
    expect(err.toJSON()).toEqual({ error: { code: 'FLOW_ERR_FIELD_INVALID', message: 'invalid field "uid": empty' } });
    expect(JSON.parse(JSON.stringify(err))).toEqual({ error: { code: 'FLOW_ERR_FIELD_INVALID', message: 'invalid field "uid": empty' } });
    expect(JSON.stringify(err)).not.toContain('secret detail');
  });

  it('keeps the cause', () => {
    const cause = new Error('ECONNREFUSED');
    expect(createError('FLOW_ERR_STORE_UNAVAILABLE', { reason: 'connect' }, cause).cause).toBe(cause);
    expect(new FlowError('FLOW_ERR_INTERNAL', { reason: 'x' }, { cause: 'a string' }).cause).toBe('a string');
    expect(createError('FLOW_ERR_INTERNAL', { reason: 'x' }).cause).toBeUndefined();
  });

  it('isFlowError checks the type and, when given, the code', () => {
    const err = createError('FLOW_ERR_PARSE', { reason: 'x' });
    expect(isFlowError(err)).toBe(true);
    expect(isFlowError(err, 'FLOW_ERR_PARSE')).toBe(true);
    expect(isFlowError(err, 'FLOW_ERR_INTERNAL')).toBe(false);
    expect(isFlowError(new Error('x'))).toBe(false);
    expect(isFlowError({ code: 'FLOW_ERR_PARSE' })).toBe(false);
  });
});

describe('errors - toFlowError', () => {
  it('returns a FlowError unchanged', () => {
    const err = createError('FLOW_ERR_PARSE', { reason: 'x' });
    expect(toFlowError(err)).toBe(err);
    expect(toFlowError(err, 'FLOW_ERR_ACTOR_FAILED')).toBe(err);
  });

  it('wraps an Error as FLOW_ERR_INTERNAL with its message as reason and the original as cause', () => {
    const original = new TypeError('x is not a function');
    const err = toFlowError(original);
    expect(err.code).toBe('FLOW_ERR_INTERNAL');
    expect(err.message).toBe('internal error: x is not a function');
    expect(err.cause).toBe(original);
    expect(err.retryable).toBe(false);
  });

  it('wraps with the fallback code given', () => {
    const err = toFlowError(new Error('boom'), 'FLOW_ERR_ACTOR_FAILED');
    expect(err.code).toBe('FLOW_ERR_ACTOR_FAILED');
    expect(err.message).toBe('processing failed for this event: boom');
    expect(err.status).toBe(500);
  });

  it('wraps non-Error throws using their string form', () => {
    expect(toFlowError('plain string').message).toBe('internal error: plain string');
    expect(toFlowError(42).message).toBe('internal error: 42');
    expect(toFlowError(undefined).message).toBe('internal error: undefined');
    expect(toFlowError(null).cause).toBeNull();
  });
});
