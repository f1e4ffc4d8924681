import { createHash, type Hash } from 'node:crypto';

/**
 * An insert body built up chunk by chunk in pooled 1 MiB slabs, with the
 * deduplication token hashed as it grows. A 100k-row RowBinary batch is
 * ~90 MB; allocated afresh per batch, those Buffers are external memory that
 * keeps setting off major GCs. The slabs go back to the pool once the store
 * has taken the whole body (the insert succeeded), so a steady stream of
 * batches reuses the same memory.
 */

export const SLAB_BYTES = 1024 * 1024;
/** The pool never keeps more than this, however large a batch was. */
export const MAX_POOLED_BYTES = 256 * 1024 * 1024;

export class SlabPool {
  private readonly free: Buffer[] = [];
  /** Two of the largest bodies seen: the one in flight and the one filling behind it. */
  private keep = 0;

  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafeSlow(SLAB_BYTES);
  }

  give(slabs: readonly Buffer[]): void {
    this.keep = Math.min(MAX_POOLED_BYTES, Math.max(this.keep, 2 * slabs.length * SLAB_BYTES));
    for (const slab of slabs) {
      if ((this.free.length + 1) * SLAB_BYTES > this.keep) break;
      this.free.push(slab);
    }
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
    this.pool.give(this.slabs);
    this.slabs.length = 0;
    this.used = SLAB_BYTES;
    this.bytes = 0;
    this.hashed = 0;
  }
}
