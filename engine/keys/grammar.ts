import { createError } from '../errors/index.js';

/**
 * Routing key grammar: `direction.channel.service.name`, four segments of
 * `[a-z0-9_-]{1,64}`. Keys are checked with one pass over char codes so a
 * hostile 10 KB key costs a length comparison, not a regex backtrack.
 */

export const KEY_SEGMENTS = 4;
export const SEGMENT_MAX = 64;
export const KEY_MAX_LENGTH = KEY_SEGMENTS * SEGMENT_MAX + KEY_SEGMENTS - 1;

export const DIRECTION_IN = 'in';
export const CHANNEL_GENERIC = 'gen';
export const CHANNEL_SYSTEM = 'sys';

export interface KeyParts {
  readonly direction: string;
  readonly channel: string;
  readonly service: string;
  readonly name: string;
}

function isSegmentChar(c: number): boolean {
  return (c >= 97 && c <= 122) /* a-z */ || (c >= 48 && c <= 57) /* 0-9 */ || c === 95 /* _ */ || c === 45 /* - */;
}

/** Why a segment is invalid, or null when it is valid. */
export function segmentProblem(segment: string): string | null {
  if (segment.length === 0) return 'empty segment';
  if (segment.length > SEGMENT_MAX) return `segment longer than ${SEGMENT_MAX} characters`;
  for (let i = 0; i < segment.length; i++) {
    if (!isSegmentChar(segment.charCodeAt(i))) return `segment "${clip(segment)}" has a character outside [a-z0-9_-]`;
  }
  return null;
}

/** Why a key is invalid, or null when it is valid. */
export function keyProblem(key: string): string | null {
  if (key.length > KEY_MAX_LENGTH) return `longer than ${KEY_MAX_LENGTH} characters`;
  let segments = 1;
  let start = 0;
  for (let i = 0; i <= key.length; i++) {
    const c = i === key.length ? 46 : key.charCodeAt(i);
    if (c === 46 /* . */) {
      const len = i - start;
      if (len === 0) return 'empty segment';
      if (len > SEGMENT_MAX) return `segment longer than ${SEGMENT_MAX} characters`;
      if (i < key.length) segments++;
      start = i + 1;
    } else if (!isSegmentChar(c)) {
      return 'character outside [a-z0-9_-]';
    }
  }
  if (segments !== KEY_SEGMENTS) return `expected ${KEY_SEGMENTS} segments, got ${segments}`;
  return null;
}

export function isValidKey(key: string): boolean {
  return keyProblem(key) === null;
}

/** Throws FLOW_ERR_KEY_INVALID naming the problem. */
export function assertKey(key: string): string {
  const problem = keyProblem(key);
  if (problem !== null) throw createError('FLOW_ERR_KEY_INVALID', { key: clip(key), reason: problem });
  return key;
}

export function parseKey(key: string): KeyParts {
  assertKey(key);
  const [direction, channel, service, name] = key.split('.') as [string, string, string, string];
  return { direction, channel, service, name };
}

/** Keeps error messages and logs short when the input is hostile. */
export function clip(text: string, max = 80): string {
  return text.length <= max ? text : `${text.slice(0, max)}…(${text.length} chars)`;
}
