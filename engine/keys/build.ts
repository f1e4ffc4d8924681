import { createError } from '../errors/index.js';
import { CHANNEL_GENERIC, DIRECTION_IN, clip, segmentProblem } from './grammar.js';

/**
 * Key builders. Client input (a URL path, a payload's service/name) is
 * lower-cased once and validated segment by segment, so an error names the
 * part that is wrong instead of "bad key".
 */

const UPPER_ASCII = /[A-Z]/g;

export function normalizeSegment(field: string, value: unknown): string {
  if (typeof value !== 'string') {
    throw createError('FLOW_ERR_KEY_INVALID', { key: `${field}=${typeof value}`, reason: `${field} must be a string` });
  }
  // ASCII-only lower-casing: toLowerCase() maps some non-ASCII letters to ASCII
  // (the Kelvin sign U+212A becomes "k"), which would let a look-alike through.
  const segment = value.replace(UPPER_ASCII, (c) => String.fromCharCode(c.charCodeAt(0) + 32));
  const problem = segmentProblem(segment);
  if (problem !== null) throw createError('FLOW_ERR_KEY_INVALID', { key: clip(value), reason: `${field}: ${problem}` });
  return segment;
}

export interface KeyOptions {
  readonly direction?: string;
  readonly channel?: string;
  /** Service aliases, e.g. `{ t4k: 'track' }` (Rockstat's ad-blocker-proof paths). */
  readonly aliases?: Readonly<Record<string, string>>;
}

/** `in.gen.{service}.{name}` from a payload's `service` and `name`. */
export function keyFromServiceName(service: unknown, name: unknown, options: KeyOptions = {}): string {
  let svc = normalizeSegment('service', service);
  const alias = options.aliases?.[svc];
  if (alias !== undefined) svc = alias;
  const nm = normalizeSegment('name', name);
  return `${options.direction ?? DIRECTION_IN}.${options.channel ?? CHANNEL_GENERIC}.${svc}.${nm}`;
}

export interface PathKey {
  readonly key: string;
  readonly service: string;
  readonly name: string;
  /** From `/{service}/{name}/{projectId}`, when present. */
  readonly projectId: number | undefined;
  /** `json` or `gif` from a `.json` / `.gif` suffix, when present. */
  readonly format: 'json' | 'gif' | undefined;
}

const MAX_PROJECT_ID = 2 ** 31 - 1;

/**
 * `/{service}/{name}[/{projectId}][.json|.gif]` → key and parts. Returns null
 * when the path does not have that shape (so the caller can try other routes);
 * throws FLOW_ERR_KEY_INVALID when it has the shape but a bad segment.
 */
export function keyFromPath(path: string, options: KeyOptions = {}): PathKey | null {
  let p = path;
  let format: PathKey['format'];
  if (p.endsWith('.json')) { format = 'json'; p = p.slice(0, -5); }
  else if (p.endsWith('.gif')) { format = 'gif'; p = p.slice(0, -4); }
  if (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
  if (p.charCodeAt(0) !== 47 /* / */) return null;
  const parts = p.slice(1).split('/');
  if (parts.length < 2 || parts.length > 3) return null;
  const [service, name, project] = parts as [string, string, string | undefined];
  let projectId: number | undefined;
  if (project !== undefined) {
    if (!/^\d{1,10}$/.test(project) || Number(project) > MAX_PROJECT_ID) {
      throw createError('FLOW_ERR_FIELD_INVALID', { field: 'projectId', reason: `must be an integer from 0 to ${MAX_PROJECT_ID}` });
    }
    projectId = Number(project);
  }
  const key = keyFromServiceName(service, name, options);
  const dot = key.lastIndexOf('.');
  const svcDot = key.lastIndexOf('.', dot - 1);
  return { key, service: key.slice(svcDot + 1, dot), name: key.slice(dot + 1), projectId, format };
}
