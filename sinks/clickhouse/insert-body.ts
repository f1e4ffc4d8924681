import { createHash, type Hash } from 'node:crypto';
import { isMainThread } from 'node:worker_threads';

/**
 * An insert body built up chunk by chunk in pooled 1 MiB slabs, with the
 * deduplication token hashed as it grows. A 100k-row RowBinary batch is
 * ~90 MB; allocated afresh per batch, those Buffers are external memory that
 * keeps setting off major GCs, and fresh pages cost a page fault each. The
 * slabs go back to the pool once the store has taken the whole body (the
 * insert succeeded); the pool keeps as many as were ever out at once (up to
 * MAX_POOLED_BYTES), so a steady stream of batches reuses the same memory.
 */

export const SLAB_BYTES = 1024 * 1024;
/** The pool never keeps more than this, however large a batch was. */
export const MAX_POOLED_BYTES = 256 * 1024 * 1024;

export class SlabPool {
  private readonly free: Buffer[] = [];
  /** Slabs handed out and not given back: bodies filling, queued and in flight. */
  private out = 0;
  /** The most slabs out at once: the pool keeps that many, so a steady stream of batches allocates nothing. */
  private peak = 0;

  /**
   * `shared`: slabs in shared memory, so that a worker thread hands its body
   * to the main thread's store without a copy (engine/threads/remote-store.ts).
   * Only there: in the main thread, shared slabs cost the chDB sink ~10% more
   * CPU per row in an A/B of `npm run bench -- sinks` (20.7 vs 18.4 µs).
   */
  constructor(private readonly shared = !isMainThread) {}

  take(): Buffer {
    if (++this.out > this.peak) this.peak = this.out;
    // Fresh 1 MiB buffers are fresh pages from the kernel: filling one cost ~5 µs
    // per kB appended against ~0.4 µs for a reused slab (measured).
    return this.free.pop() ?? (this.shared ? Buffer.from(new SharedArrayBuffer(SLAB_BYTES)) : Buffer.allocUnsafeSlow(SLAB_BYTES));
  }

  give(slabs: readonly Buffer[]): void {
    this.out -= slabs.length;
    const keep = Math.min(MAX_POOLED_BYTES, this.peak * SLAB_BYTES);
    for (const slab of slabs) {
      if ((this.free.length + 1) * SLAB_BYTES > keep) break;
      this.free.push(slab);
    }
  }

  /** Slabs that will not come back (a failed insert may still hold them): no longer counted as out. */
  forget(count: number): void {
    this.out -= count;
  }

  /** Bytes held for reuse (for tests). */
  get pooledBytes(): number {
    return this.free.length * SLAB_BYTES;
  }
}

/** Bytes appended before they are hashed: one hash update per this much, not one per (~1 kB) row appended. */
const HASH_EVERY = 256 * 1024;

export class InsertBody {
  private readonly slabs: Buffer[] = [];
  /** Bytes used in the last slab; the ones before it are full. */
  private used = SLAB_BYTES;
  private readonly hash: Hash | null;
  /** The body's first `hashed` bytes are in the hash. */
  private hashed = 0;
  bytes = 0;
  /** The pool no longer counts these slabs: recycle() must not give them back. */
  private abandoned = false;

  /** `withToken`: hash the body for an insert deduplication token (only modern stores use one). */
  constructor(private readonly pool: SlabPool, withToken: boolean) {
    this.hash = withToken ? createHash('sha1') : null;
  }

  /** Copies `bytes` in (they may be a view the caller reuses next). */
  append(bytes: Uint8Array): void {
    let from = 0;
    while (from < bytes.length) {
      if (this.used === SLAB_BYTES) {
        this.slabs.push(this.pool.take());
        this.used = 0;
      }
      const n = Math.min(bytes.length - from, SLAB_BYTES - this.used);
      this.slabs[this.slabs.length - 1]!.set(from === 0 && n === bytes.length ? bytes : bytes.subarray(from, from + n), this.used);
      this.used += n;
      from += n;
    }
    this.bytes += bytes.length;
    if (this.hash !== null && this.bytes - this.hashed >= HASH_EVERY) this.hashUpTo(this.bytes);
  }

  /** Feeds body bytes [hashed, end) to the hash, from the slabs. */
  private hashUpTo(end: number): void {
    while (this.hashed < end) {
      const slab = Math.floor(this.hashed / SLAB_BYTES);
      const at = this.hashed - slab * SLAB_BYTES;
      const to = Math.min(SLAB_BYTES, end - slab * SLAB_BYTES);
      this.hash!.update(this.slabs[slab]!.subarray(at, to));
      this.hashed += to - at;
    }
  }

  /** The body, as consecutive views of the slabs. */
  parts(): Buffer[] {
    const last = this.slabs.length - 1;
    return this.slabs.map((slab, i) => (i === last ? slab.subarray(0, this.used) : slab));
  }

  /** SHA-1 of the body (the same bytes always give the same token), or undefined without one. Call once. */
  token(): string | undefined {
    if (this.hash === null) return undefined;
    this.hashUpTo(this.bytes);
    return this.hash.digest('hex');
  }

  /**
   * Hands the slabs back for reuse. Only after the store has read the whole
   * body: after a failed insert a socket may still hold on to them.
   */
  recycle(): void {
    if (this.abandoned) throw new Error('an abandoned insert body cannot be recycled');
    this.pool.give(this.slabs);
    this.slabs.length = 0;
    this.used = SLAB_BYTES;
    this.bytes = 0;
    this.hashed = 0;
  }

  /**
   * Body bytes [offset, offset + length), copied out when they span two
   * slabs. Readable until the body is recycled — after abandon() too.
   */
  read(offset: number, length: number): Uint8Array {
    if (offset < 0 || length < 0 || offset + length > this.bytes) throw new RangeError(`bytes ${offset}+${length} are not in a body of ${this.bytes}`);
    const slab = Math.floor(offset / SLAB_BYTES);
    const at = offset - slab * SLAB_BYTES;
    if (at + length <= SLAB_BYTES) return this.slabs[slab]!.subarray(at, at + length);
    const out = Buffer.allocUnsafe(length);
    for (let done = 0; done < length;) {
      const i = Math.floor((offset + done) / SLAB_BYTES);
      const from = offset + done - i * SLAB_BYTES;
      const n = Math.min(length - done, SLAB_BYTES - from);
      this.slabs[i]!.copy(out, done, from, from + n);
      done += n;
    }
    return out;
  }

  /**
   * After a failed insert: the slabs are left to the garbage collector, not
   * reused (a socket may still hold them). They stay readable (`read`) until
   * the body itself is dropped, for the rows kept only as bytes.
   */
  abandon(): void {
    this.pool.forget(this.slabs.length);
    this.abandoned = true;
  }
}
