import { createHash } from 'node:crypto';

/**
 * Just enough of RFC 6455 for a load generator: build masked client frames
 * ahead of time, and count the server's (unmasked) frames as they stream in
 * without copying or decoding them.
 */

export const OP_TEXT = 0x1;
export const OP_BINARY = 0x2;
export const OP_CLOSE = 0x8;
export const OP_PING = 0x9;
export const OP_PONG = 0xa;

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export function acceptKey(key: string): string {
  return createHash('sha1').update(key + WS_GUID).digest('base64');
}

/** One complete client frame (FIN set), masked with `mask` (4 bytes) as clients must. */
export function encodeClientFrame(opcode: number, payload: Uint8Array, mask: Uint8Array): Buffer {
  const len = payload.length;
  const head = len < 126 ? 2 : len < 65_536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(head + 4 + len);
  frame[0] = 0x80 | opcode;
  if (len < 126) {
    frame[1] = 0x80 | len;
  } else if (len < 65_536) {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(len, 2);
  } else {
    frame[1] = 0x80 | 127;
    frame.writeBigUInt64BE(BigInt(len), 2);
  }
  frame.set(mask.subarray(0, 4), head);
  const body = head + 4;
  for (let i = 0; i < len; i++) frame[body + i] = payload[i]! ^ mask[i & 3]!;
  return frame;
}

/** Called for each complete server message; `payload` is a view valid only during the call. */
export type OnServerFrame = (opcode: number, payload: Buffer) => void;

/**
 * Streams server frames: counts complete data messages and hands control
 * frames and (when asked) sampled data payloads to `onFrame`. A frame split
 * across reads is counted when its last byte arrives; its payload is not
 * offered (sampling only looks at frames that arrive whole).
 */
export class ServerFrameCounter {
  /** Complete data messages (text or binary, FIN set). */
  messages = 0;
  /** Bytes of the current frame's payload still to come. */
  private remaining = 0;
  private currentOpcode = 0;
  private currentFin = false;
  /** A header cut off at the end of the previous read. */
  private partial: Buffer | null = null;

  constructor(
    private readonly onFrame: OnServerFrame,
    private readonly wantPayload: () => boolean,
    /** Called once per complete data message, payload or not (e.g. to time its reply). */
    private readonly onMessage?: () => void,
  ) {}

  push(chunk: Buffer): void {
    let buf = chunk;
    let pos = 0;
    if (this.remaining > 0) {
      const take = Math.min(this.remaining, buf.length);
      this.remaining -= take;
      pos = take;
      if (this.remaining === 0) this.complete(this.currentOpcode, this.currentFin, null);
    }
    if (this.partial !== null) {
      buf = Buffer.concat([this.partial, buf.subarray(pos)]);
      pos = 0;
      this.partial = null;
    }
    const len = buf.length;
    while (pos < len) {
      if (len - pos < 2) { this.partial = Buffer.from(buf.subarray(pos)); return; }
      const b0 = buf[pos]!;
      const b1 = buf[pos + 1]!;
      let size = b1 & 0x7f;
      let head = 2;
      if (size === 126) {
        if (len - pos < 4) { this.partial = Buffer.from(buf.subarray(pos)); return; }
        size = buf.readUInt16BE(pos + 2);
        head = 4;
      } else if (size === 127) {
        if (len - pos < 10) { this.partial = Buffer.from(buf.subarray(pos)); return; }
        size = Number(buf.readBigUInt64BE(pos + 2));
        head = 10;
      }
      if ((b1 & 0x80) !== 0) head += 4; // servers must not mask; tolerate it anyway
      if (len - pos < head) { this.partial = Buffer.from(buf.subarray(pos)); return; }
      const start = pos + head;
      const end = start + size;
      const opcode = b0 & 0x0f;
      const fin = (b0 & 0x80) !== 0;
      if (end <= len) {
        this.complete(opcode, fin, buf.subarray(start, end));
        pos = end;
      } else {
        this.currentOpcode = opcode;
        this.currentFin = fin;
        this.remaining = end - len;
        return;
      }
    }
  }

  private complete(opcode: number, fin: boolean, payload: Buffer | null): void {
    if (opcode >= 0x8) {
      this.onFrame(opcode, payload ?? Buffer.alloc(0));
      return;
    }
    if (!fin) return; // uWS and ws do not fragment replies; a fragment counts with its last piece
    this.messages++;
    this.onMessage?.();
    if (payload !== null && this.wantPayload()) this.onFrame(opcode, payload);
  }
}
