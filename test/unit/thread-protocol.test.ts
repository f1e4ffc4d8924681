import { describe, expect, it } from 'vitest';
import { createEnvelope, createError } from '../../engine/index.js';
import { EVENT_STRIDE, REPLY_STRIDE, fromWireError, readEvent, readReply, toWireError, writeEvent, writeReply } from '../../engine/threads/protocol.js';
import { classifyStoreError } from '../../sinks/clickhouse/errors.js';
import { StoreCallError } from '../../sinks/clickhouse/server.js';

/** What crosses between the main thread and the worker threads (engine/threads/protocol.ts). */

describe('thread protocol', () => {
  const envelope = createEnvelope({
    key: 'in.gen.shop.add_to_cart', projectId: 3, uid: 'u-1', receivedAt: 1_764_000_000_000, ip: '203.0.113.9',
    userAgent: 'Mozilla/5.0', id: 'client-7', userId: 'user-9', ts: 1_763_999_999_000,
    pageUrl: 'https://shop.example/p/1', pageReferrer: 'https://www.google.com/', pageTitle: 'P1', data: { sku: 'a', qty: 2, nested: { x: [1, 2] } },
  });

  it('an envelope comes back equal, with its fields in the same order (the same hidden class in the worker)', () => {
    const out: unknown[] = [];
    writeEvent(out, 0, envelope);
    writeEvent(out, 42, { ...envelope, userId: null, idFromClient: false });
    expect(out).toHaveLength(2 * EVENT_STRIDE);
    // Through structured clone, as postMessage sends it.
    const b = structuredClone(out);
    expect(b[0]).toBe(0);
    expect(b[EVENT_STRIDE]).toBe(42);
    const back = readEvent(b, 0);
    expect(back).toEqual(envelope);
    expect(Object.keys(back)).toEqual(Object.keys(envelope));
    expect(readEvent(b, EVENT_STRIDE)).toEqual({ ...envelope, userId: null, idFromClient: false });
  });

  it('replies of every kind come back as the reply, errors with their status and JSON-RPC code', () => {
    const out: unknown[] = [];
    writeReply(out, 1, { kind: 'json' });
    writeReply(out, 2, { kind: 'json', data: { coupon: 'CART10' } });
    writeReply(out, 3, { kind: 'pixel' });
    writeReply(out, 4, { kind: 'redirect', location: 'https://partner.example/x' });
    writeReply(out, 5, { kind: 'error', error: createError('FLOW_ERR_OVERLOADED', { reason: 'event queue full', retryAfter: 1 }) });
    const b = structuredClone(out);
    expect(b).toHaveLength(5 * REPLY_STRIDE);
    expect(readReply(b, 0)).toEqual({ kind: 'json' });
    expect(readReply(b, 3)).toEqual({ kind: 'json', data: { coupon: 'CART10' } });
    expect(readReply(b, 6)).toEqual({ kind: 'pixel' });
    expect(readReply(b, 9)).toEqual({ kind: 'redirect', location: 'https://partner.example/x' });
    const err = readReply(b, 12);
    expect(err.kind).toBe('error');
    if (err.kind !== 'error') return;
    expect(err.error.code).toBe('FLOW_ERR_OVERLOADED');
    expect(err.error.status).toBe(503);
    expect(err.error.params).toEqual({ reason: 'event queue full', retryAfter: 1 });
  });

  it('a store failure keeps what its classification reads (retry, row, schema) across the thread boundary', () => {
    const cases: [Error, string][] = [
      [Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8123'), { code: 'ECONNREFUSED' }), 'retry'],
      [new StoreCallError('Cannot parse input', 27), 'row'],
      [new StoreCallError('Table flowstat.events does not exist', 60), 'schema'],
      [Object.assign(new Error('bad gateway'), { statusCode: 502 }), 'retry'],
    ];
    for (const [err, kind] of cases) {
      const back = fromWireError(structuredClone(toWireError(err)));
      expect(classifyStoreError(back).kind).toBe(kind);
      expect(classifyStoreError(back).kind).toBe(classifyStoreError(err).kind);
      expect(back.message).toBe(err.message);
    }
  });
});
