/**
 * The growable output buffer the row encoders write into. One per encoder,
 * reused across batches so a batch costs one allocation (the body it
 * returns), not one per value or per growth step.
 */

/** Node's undocumented but long-stable Buffer#utf8Write: no argument parsing, no encoding lookup. */
type Utf8Write = (this: Buffer, s: string, offset: number, length: number) => number;
const nativeUtf8Write = (Buffer.prototype as unknown as { utf8Write?: Utf8Write }).utf8Write;
const utf8Write: Utf8Write = nativeUtf8Write ?? function (this: Buffer, s, offset, length) { return this.write(s, offset, length, 'utf8'); };

export const INITIAL_BYTES = 64 * 1024;
/** A buffer grown past this by one huge batch is dropped after it, so one outlier does not pin memory. */
export const MAX_RETAINED_BYTES = 16 * 1024 * 1024;

export class ByteBuffer {
  buf: Buffer;
  /**
   * The same bytes through a DataView: TurboFan inlines its unaligned
   * multi-byte stores, so a 4-byte word costs about what one byte does
   * through the Buffer (JSON key prefixes copy in half the time).
   */
  view: DataView;
  pos = 0;

  constructor(private readonly initialBytes = INITIAL_BYTES) {
    this.buf = Buffer.allocUnsafe(initialBytes);
    this.view = viewOf(this.buf);
  }

  /** Makes room for `n` more bytes. */
  reserve(n: number): void {
    if (this.pos + n > this.buf.length) this.grow(n);
  }

  private grow(n: number): void {
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
    this.view = viewOf(next);
  }

  /**
   * UTF-8 of `s` at `offset` (room for s.length * 3 bytes must be reserved);
   * returns the bytes written. A lone surrogate becomes U+FFFD.
   */
  utf8(s: string, offset: number): number {
    return utf8Write.call(this.buf, s, offset, s.length * 3);
  }

  /**
   * The bytes written since the last take, as a fresh Buffer the caller owns:
   * the next encode reuses the scratch space, so the body must be a copy
   * (one memcpy, far cheaper than the encoding itself).
   */
  take(): Buffer {
    const body = Buffer.allocUnsafe(this.pos);
    this.buf.copy(body, 0, 0, this.pos);
    this.pos = 0;
    if (this.buf.length > MAX_RETAINED_BYTES) {
      this.buf = Buffer.allocUnsafe(this.initialBytes);
      this.view = viewOf(this.buf);
    }
    return body;
  }

  /**
   * The bytes written since the last take as a view of the scratch space,
   * without a copy: valid only until the next write into this buffer, so the
   * caller copies it out (into pooled memory) before encoding again.
   */
  lend(): Buffer {
    const body = this.buf.subarray(0, this.pos);
    this.pos = 0;
    // Replacing the scratch leaves the view on the old memory, so this is safe before the caller is done.
    if (this.buf.length > MAX_RETAINED_BYTES) {
      this.buf = Buffer.allocUnsafe(this.initialBytes);
      this.view = viewOf(this.buf);
    }
    return body;
  }
}

/** Scratch buffers that never `take` call this after a batch instead. */
export function trimScratch(b: ByteBuffer): void {
  b.pos = 0;
  if (b.buf.length > MAX_RETAINED_BYTES) {
    b.buf = Buffer.allocUnsafe(INITIAL_BYTES);
    b.view = viewOf(b.buf);
  }
}

function viewOf(buf: Buffer): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}
