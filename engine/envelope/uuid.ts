import { randomFillSync } from 'node:crypto';

/**
 * UUIDv7 (RFC 9562), generated on the per-event path. The `uuid` package asks
 * crypto for 16 bytes per id (~1.6 µs here, 17% of the gateway's CPU in the
 * gateway benchmark); this draws random bytes from a 4 KB pool refilled once
 * per 256 ids and formats with a byte→hex table (~0.2 µs).
 *
 * Ids are monotonic within the process (RFC 9562 §6.2, method 1): within one
 * millisecond the 12-bit rand_a field counts up from a random start below
 * 2^11; if it overflows, the timestamp is advanced by one.
 */

const POOL_SIZE = 4096;
const pool = Buffer.allocUnsafe(POOL_SIZE);
let poolOffset = POOL_SIZE;

const HEX: string[] = [];
for (let i = 0; i < 256; i++) HEX.push(i.toString(16).padStart(2, '0'));

let lastMs = -1;
let counter = 0;

function randomBytes(n: number): number {
  if (poolOffset + n > POOL_SIZE) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const at = poolOffset;
  poolOffset += n;
  return at;
}

export function uuidv7(now: number = Date.now()): string {
  let ms = now;
  if (ms > lastMs) {
    lastMs = ms;
    const r = randomBytes(2);
    counter = ((pool[r]! << 8) | pool[r + 1]!) & 0x7ff;
  } else {
    ms = lastMs;
    if (++counter > 0xfff) {
      ms = ++lastMs;
      counter = 0;
    }
  }
  const r = randomBytes(8);
  // 48-bit big-endian milliseconds: split, because JS bit operators are 32-bit.
  const hi = Math.floor(ms / 0x1000000);
  const lo = ms % 0x1000000;
  return (
    HEX[(hi >>> 16) & 0xff]! + HEX[(hi >>> 8) & 0xff]! + HEX[hi & 0xff]! + HEX[(lo >>> 16) & 0xff]! +
    '-' + HEX[(lo >>> 8) & 0xff]! + HEX[lo & 0xff]! +
    '-' + HEX[0x70 | (counter >>> 8)]! + HEX[counter & 0xff]! +
    '-' + HEX[0x80 | (pool[r]! & 0x3f)]! + HEX[pool[r + 1]!]! +
    '-' + HEX[pool[r + 2]!]! + HEX[pool[r + 3]!]! + HEX[pool[r + 4]!]! + HEX[pool[r + 5]!]! + HEX[pool[r + 6]!]! + HEX[pool[r + 7]!]!
  );
}
