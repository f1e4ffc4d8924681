import { Unpackr } from 'msgpackr';
import { createError } from '../../engine/index.js';

/**
 * A connection's binary frames read as one msgpackr sequential stream, the
 * opt-in of `/ws?msgpack=sequential`. A client packing with msgpackr's
 * `new Packr({ sequential: true })` defines each object shape (a "record
 * structure": its keys) the first time it sends it, and later frames carry
 * a one-byte structure id and the values only. The connection's own
 * Unpackr keeps the structures between frames. Decoding a `track` frame
 * then reads no keys at all: measured here 0.48 µs a frame, against 1.1 µs
 * for the same frame in plain msgpack and 1.2 µs for JSON.parse.
 *
 * Why an opt-in and not the default for binary frames: in msgpackr's record
 * encoding, bytes 0x40–0x7f are structure ids when a structure has that id
 * and plain integers 64–127 otherwise. A client packing with msgpackr's
 * default (records defined anew in each message) would see a later
 * message's small integers read as records of an earlier message, if
 * structures outlived their frame. Plain connections keep the shared,
 * per-frame decoder (gateway/ws/jsonrpc.ts).
 *
 * What the structures may hold is bounded per connection (RECORD_LIMITS,
 * checked after each frame that may define one): a client defining more
 * gets an error and its structures are forgotten, so a connection's memory
 * cannot grow by definitions. msgpackr's sequential Packr, as a client uses
 * it, keeps at most 64 structures.
 *
 * The stream assumes the server reads every frame the client sent. A frame
 * refused before it is decoded (over `maxFrameBytes`, during shutdown)
 * loses the definitions it carried; frames after it may then not decode.
 * A client should reconnect, with a new Packr, after such an error.
 */

export const RECORD_LIMITS = Object.freeze({
  /** Structures defined on one connection at a time. */
  structures: 64,
  /** Keys over all of them. */
  keys: 1_024,
  /** UTF-16 code units over all their keys. */
  keyChars: 64 * 1_024,
});

const ID = /^-?\d+$/;

/**
 * Record definitions one binary frame may carry, on any connection. msgpackr
 * compiles a reader (`new Function`) for each structure a frame uses more
 * than twice: measured here, a 33 KB frame of 2,000 tiny shapes took 10–57 ms
 * to decode, against 4–11 ms for the same data as plain maps, and a frame
 * costs one event of rate limit. 64 is the id space msgpackr's own encoder
 * uses in one message. Each definition also costs one rate-limit token.
 */
export const MAX_RECORD_DEFINITIONS_PER_FRAME = 64;

/** A record definition is msgpack ext type 0x72 ('r'): fixext 1 (one-byte id) or fixext 2 (two-byte id). */
const DEFINE_ONE_BYTE_ID = Buffer.from([0xd4, 0x72]);
const DEFINE_TWO_BYTE_ID = Buffer.from([0xd5, 0x72]);
const DEFINITION_MARKS = [DEFINE_ONE_BYTE_ID, DEFINE_TWO_BYTE_ID] as const;

/**
 * How many record definitions `frame` may hold, counted up to `limit + 1`:
 * occurrences of their two-byte headers. Other bytes can look the same (an
 * integer 0xd472), so this can count more than there are, never fewer.
 */
export function countRecordDefinitions(frame: Buffer, limit = MAX_RECORD_DEFINITIONS_PER_FRAME): number {
  let n = 0;
  for (const mark of DEFINITION_MARKS) {
    for (let at = frame.indexOf(mark); at >= 0 && n <= limit; at = frame.indexOf(mark, at + 2)) n++;
  }
  return n;
}

function freshUnpackr(): Unpackr {
  // copyBuffers: a frame's memory is reused after the message callback.
  return new Unpackr({ sequential: true, copyBuffers: true, mapsAsObjects: true });
}

export class MsgpackStream {
  private unpackr = freshUnpackr();

  /**
   * Decodes one frame. `definitions` is countRecordDefinitions(frame): only
   * a frame that may define structures is followed by measuring them. Throws
   * msgpackr's error on malformed bytes, and FLOW_ERR_INVALID_REQUEST when
   * the frame takes the connection's structures over RECORD_LIMITS; they
   * are then forgotten.
   */
  decode(frame: Buffer, definitions: number): unknown {
    const value: unknown = this.unpackr.unpack(frame);
    if (definitions > 0) this.check();
    return value;
  }

  private check(): void {
    const m = this.measure();
    if (m.structures <= RECORD_LIMITS.structures && m.keys <= RECORD_LIMITS.keys && m.keyChars <= RECORD_LIMITS.keyChars) return;
    this.unpackr = freshUnpackr();
    throw createError('FLOW_ERR_INVALID_REQUEST', {
      reason: `msgpack record structures on this connection exceed ${RECORD_LIMITS.structures} structures, `
        + `${RECORD_LIMITS.keys} keys or ${RECORD_LIMITS.keyChars} key characters (this frame made ${m.structures}, `
        + `${m.keys} and ${m.keyChars}); all of them are forgotten: reconnect with a new Packr`,
    });
  }

  private measure(): { structures: number; keys: number; keyChars: number } {
    // Ids may be negative (two-byte ids), so structures are properties of the array, not only its elements.
    const all = (this.unpackr as unknown as { structures: Record<string, unknown> }).structures;
    let structures = 0;
    let keys = 0;
    let keyChars = 0;
    for (const id in all) {
      const s = all[id];
      // msgpackr keeps bookkeeping on the same array (sharedLength, restoreStructures): ids only.
      if (!ID.test(id) || !Array.isArray(s)) continue;
      structures++;
      keys += s.length;
      for (const k of s as unknown[]) keyChars += typeof k === 'string' ? k.length : 0;
    }
    return { structures, keys, keyChars };
  }
}
