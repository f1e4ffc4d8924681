import { createError } from '../../engine/index.js';
import type { BodyTooLarge } from '../transport/index.js';

/**
 * Request payload, Rockstat Front style: the body (JSON, or form-urlencoded)
 * and the query string merged into one object, the query winning. Bodies
 * must be valid UTF-8; navigator.sendBeacon's text/plain bodies are read as
 * JSON.
 */

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function queryObject(query: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (query === '') return out;
  for (const [k, v] of new URLSearchParams(query)) out[k] = v;
  return out;
}

export function bodyObject(body: Buffer | null | BodyTooLarge, contentType: string, limit: number): Record<string, unknown> {
  if (body === null) return {};
  if ('tooLarge' in body) {
    throw createError('FLOW_ERR_PAYLOAD_TOO_LARGE', { size: body.tooLarge, limit });
  }
  if (body.length === 0) return {};
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    throw createError('FLOW_ERR_PARSE', { reason: 'body is not valid UTF-8' });
  }
  // `curl -d '{…}'` labels JSON as a form; a form body never starts with "{".
  if (contentType.includes('application/x-www-form-urlencoded') && text.charCodeAt(0) !== 123 /* { */) return queryObject(text);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw createError('FLOW_ERR_PARSE', { reason: `body is not JSON: ${(err as Error).message}` });
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw createError('FLOW_ERR_INVALID_REQUEST', { reason: 'body must be a JSON object' });
  }
  return parsed as Record<string, unknown>;
}
