import { describe, expect, it } from 'vitest';
import { InsertBody, SLAB_BYTES, SlabPool } from '../../sinks/clickhouse/insert-body.js';

/** A body of `sizes` appended chunks, each filled with its own byte value, and the same bytes in one Buffer. */
function build(sizes: readonly number[]): { body: InsertBody; whole: Buffer } {
  const body = new InsertBody(new SlabPool(), false);
  const chunks = sizes.map((n, i) => Buffer.alloc(n, (i * 37 + 1) & 0xff));
  for (const c of chunks) body.append(c);
  return { body, whole: Buffer.concat(chunks) };
}

describe('insert body', () => {
  it('reads back any range, within a slab and across slab boundaries', () => {
    const { body, whole } = build([100, SLAB_BYTES - 150, 300, SLAB_BYTES, 7]);
    expect(body.bytes).toBe(whole.length);
    const ranges: [number, number][] = [
      [0, 100], [100, SLAB_BYTES - 150], [SLAB_BYTES - 50, 300], [SLAB_BYTES - 1, 2], [SLAB_BYTES + 250, SLAB_BYTES], [whole.length - 7, 7], [0, whole.length],
    ];
    for (const [offset, length] of ranges) {
      expect(Buffer.from(body.read(offset, length)).equals(whole.subarray(offset, offset + length)), `${offset}+${length}`).toBe(true);
    }
  });

  it('refuses a range outside the body', () => {
    const { body } = build([10]);
    expect(() => body.read(5, 6)).toThrow(RangeError);
    expect(() => body.read(-1, 2)).toThrow(RangeError);
  });

  it('stays readable after a failed insert abandons it, and is then never recycled', () => {
    const { body, whole } = build([SLAB_BYTES + 10]);
    body.abandon();
    expect(Buffer.from(body.read(SLAB_BYTES - 5, 15)).equals(whole.subarray(SLAB_BYTES - 5, SLAB_BYTES + 10))).toBe(true);
    expect(() => body.recycle()).toThrow(/abandoned/);
  });

  it('slabs are in shared memory only where asked (worker threads): plain memory by default on the main thread', () => {
    expect(new SlabPool().take().buffer).not.toBeInstanceOf(SharedArrayBuffer);
    const shared = new SlabPool(true).take();
    expect(shared.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(shared.length).toBe(SLAB_BYTES);
  });
});
