import type { Envelope } from '../../engine/index.js';
import { createError } from '../../engine/errors/index.js';
import type { Enricher, EnrichPatch } from './types.js';

/**
 * The fingerprint enricher: `fpid`, a coarse device id for events without a
 * cookie — FNV-1a 64 of the UTF-8 bytes of `ip`, a 0x00 separator, then
 * `userAgent`, as 16 lower-case hex digits. Not cryptographic and not a
 * secret: anyone with the ip and user agent can compute it. No seed, so the
 * same input gives the same fpid in every process, version and machine
 * (check: FNV-1a 64 of "a" is af63dc4c8601ec8c). Both fields empty → ''.
 *
 * Speed: hashed in place — no concatenation, no Buffer, no BigInt — with
 * the 64-bit state in four 16-bit limbs so every step is exact int32 math,
 * and UTF-8 encoded on the fly: ~0.45 µs for an 11-character ip and a
 * 129-character user agent (~3 ns per byte; Node 20, x64). Measured against
 * it: the same FNV on two uint32 lanes with a float carry, 1.8 µs; cyrb53-
 * style Math.imul lanes over `ip + '\0' + ua`, 0.6 µs (the concatenation
 * costs more than the hash saves). test/unit/enricher-fingerprint.test.ts
 * prints the figure.
 */

// FNV-1a 64 offset basis cbf29ce484222325, as 16-bit limbs, low first.
const BASIS0 = 0x2325;
const BASIS1 = 0x8422;
const BASIS2 = 0x9ce4;
const BASIS3 = 0xcbf2;
// The prime is 2^40 + 0x1b3: multiplying is "× 0x1b3" plus the low limbs shifted up 40 bits (2 limbs + 8 bits).
const PRIME_LOW = 0x1b3;

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/**
 * FNV-1a 64 over utf8(a), then a 0x00 byte when `separated`, then utf8(b);
 * lone surrogates are encoded as U+FFFD, as TextEncoder does.
 */
function fnv1a64Parts(a: string, b: string, separated: boolean): string {
  let v0 = BASIS0;
  let v1 = BASIS1;
  let v2 = BASIS2;
  let v3 = BASIS3;
  let s = a;
  for (let part = 0; part < 2; part++) {
    if (part === 1) {
      if (separated) {
        // Byte 0x00: the XOR is a no-op, only the multiply remains.
        const t0 = v0 * PRIME_LOW;
        const t1 = v1 * PRIME_LOW + (t0 >>> 16);
        const t2 = v2 * PRIME_LOW + (v0 << 8) + (t1 >>> 16);
        v3 = (v3 * PRIME_LOW + (v1 << 8) + (t2 >>> 16)) & 0xffff;
        v0 = t0 & 0xffff;
        v1 = t1 & 0xffff;
        v2 = t2 & 0xffff;
      }
      s = b;
    }
    for (let i = 0; i < s.length; i++) {
      let c = s.charCodeAt(i);
      // The UTF-8 bytes of this code point, first byte lowest.
      let bytes = c;
      let n = 1;
      if (c >= 0x80) {
        if (c < 0x800) {
          bytes = (0xc0 | (c >> 6)) | ((0x80 | (c & 0x3f)) << 8);
          n = 2;
        } else {
          if (c >= 0xd800 && c <= 0xdfff) {
            const next = s.charCodeAt(i + 1);
            if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
              c = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
              i++;
            } else {
              c = 0xfffd;
            }
          }
          if (c >= 0x10000) {
            bytes = (0xf0 | (c >> 18)) | ((0x80 | ((c >> 12) & 0x3f)) << 8) | ((0x80 | ((c >> 6) & 0x3f)) << 16) | ((0x80 | (c & 0x3f)) << 24);
            n = 4;
          } else {
            bytes = (0xe0 | (c >> 12)) | ((0x80 | ((c >> 6) & 0x3f)) << 8) | ((0x80 | (c & 0x3f)) << 16);
            n = 3;
          }
        }
      }
      for (;;) {
        v0 ^= bytes & 0xff;
        // Each partial sum stays below 2^31, so int32 arithmetic is exact.
        const t0 = v0 * PRIME_LOW;
        const t1 = v1 * PRIME_LOW + (t0 >>> 16);
        const t2 = v2 * PRIME_LOW + (v0 << 8) + (t1 >>> 16);
        v3 = (v3 * PRIME_LOW + (v1 << 8) + (t2 >>> 16)) & 0xffff;
        v0 = t0 & 0xffff;
        v1 = t1 & 0xffff;
        v2 = t2 & 0xffff;
        if (--n === 0) break;
        bytes >>>= 8;
      }
    }
  }
  return HEX[v3 >> 8]! + HEX[v3 & 0xff]! + HEX[v2 >> 8]! + HEX[v2 & 0xff]! + HEX[v1 >> 8]! + HEX[v1 & 0xff]! + HEX[v0 >> 8]! + HEX[v0 & 0xff]!;
}

/** FNV-1a 64 of utf8(ip) ‖ 0x00 ‖ utf8(userAgent), as 16 hex digits; '' when both are empty. */
export function fingerprint(ip: string, userAgent: string): string {
  return ip === '' && userAgent === '' ? '' : fnv1a64Parts(ip, userAgent, true);
}

/** FNV-1a 64 of the UTF-8 bytes of `s`, as 16 hex digits (the published test vectors check this). */
export function fnv1a64(s: string): string {
  return fnv1a64Parts(s, '', false);
}

export interface FingerprintEnricherOptions {
  name?: string;
}

export function createFingerprintEnricher(options: FingerprintEnricherOptions = {}): Enricher {
  const name = options.name ?? 'fingerprint';
  if (typeof name !== 'string' || name === '') {
    throw createError('FLOW_ERR_CONFIG_INVALID', { details: 'fingerprint enricher: name: must be a non-empty string' });
  }
  // One patch per distinct fpid would need a cache; one small object per event is cheaper than the lookup.
  return Object.freeze({
    name,
    namespace: 'fp',
    columns: Object.freeze(['fpid'] as const),
    reads: Object.freeze(['ip', 'userAgent'] as const),
    // Synchronous: never waited on.
    timeoutMs: 0,
    pure: true,
    enrich(envelope: Envelope): EnrichPatch {
      return { fpid: fingerprint(envelope.ip, envelope.userAgent) };
    },
  });
}
