import { closeSync, copyFileSync, fdatasync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, ftruncateSync, unlinkSync, write, type PathLike } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { AckTarget } from '../contract.js';

/**
 * The write-ahead log. An event acknowledged to a client is first appended
 * here; appends made during one turn of the event loop are written and
 * fdatasync'd together (group commit), and only then are their replies sent.
 * Each record stays on disk until every sink has acknowledged it; a segment
 * whose records are all acknowledged is deleted. At start the segments left
 * by a previous run (crash, kill -9) are replayed, a torn tail record cut off.
 *
 * Record framing: u32 LE payload length | u32 LE crc32(payload) | payload.
 *
 * Appends are copied at once into one write buffer (the caller may reuse its
 * payload's memory); a commit writes that buffer while appends fill a second
 * one, and the two swap each commit. Allocating a header Buffer per record
 * and concatenating them per commit cost ~2 µs a record in the sink
 * benchmark, more than the fsync shared by the commit.
 */

const HEADER = 8;
const INITIAL_WRITE_BUFFER = 1024 * 1024;
/** A write buffer grown past this by a burst is not kept for the next commit. */
const MAX_RETAINED_WRITE_BUFFER = 64 * 1024 * 1024;
const SEGMENT_PATTERN = /^(\d{20})\.wal$/;

export interface Durable {
  /** Called once everything appended before it was registered is on disk. */
  durable(): void;
}

export class WalSegment implements AckTarget {
  pending = 0;
  sealed = false;
  /** Bytes written plus buffered. */
  size = 0;
  fd = -1;
  /** Bytes appended and not yet written: views of the log's write buffer (cut at commits and rolls)… */
  buffered: Buffer[] = [];
  /** …plus, for the active segment, the bytes in the write buffer since the last cut. */
  bufferedBytes = 0;
  /** A commit is writing this segment: its descriptor must stay open until it ends. */
  writing = false;
  constructor(readonly id: number, readonly path: string, private readonly onEmpty: (s: WalSegment) => void) {}
  release(count: number): void {
    this.pending -= count;
    if (this.pending <= 0 && this.sealed) this.onEmpty(this);
  }
}

export interface WalOptions {
  readonly dir: string;
  /** Roll to a new segment past this size. */
  readonly segmentBytes?: number;
  /** The disk refused a write: nothing more can be acknowledged. */
  readonly onError: (err: Error) => void;
  /** A segment found corrupt at start (reported; replay goes on). Defaults to onError. */
  readonly onCorruption?: (err: Error) => void;
}

export interface ReplayedRecord {
  readonly payload: Buffer;
  readonly segment: WalSegment;
}

export interface WalStats {
  segments: number;
  bytes: number;
  commits: number;
  appended: number;
}

export class Wal {
  private readonly segmentBytes: number;
  private readonly segments = new Map<number, WalSegment>();
  private active!: WalSegment;
  private nextId = 1;
  private waiters: Durable[] = [];
  private flushing = false;
  private scheduled = false;
  private closed = false;
  private failed: Error | null = null;
  private idleWaiters: (() => void)[] = [];
  /** Where appends go; `cut` is where the active segment's bytes not yet handed to `buffered` start. */
  private buf: Buffer = Buffer.allocUnsafeSlow(INITIAL_WRITE_BUFFER);
  private pos = 0;
  private cut = 0;
  /** The other write buffer: being written by a commit, or free for the next swap. */
  private spare: Buffer | null = null;
  readonly stats: WalStats = { segments: 0, bytes: 0, commits: 0, appended: 0 };

  constructor(private readonly o: WalOptions) {
    this.segmentBytes = o.segmentBytes ?? 64 * 1024 * 1024;
    mkdirSync(o.dir, { recursive: true });
  }

  /**
   * Reads the segments a previous run left, in order, cutting a torn tail.
   * Call once, before the first append. The returned records belong to their
   * old segments, which are deleted once every record is released.
   */
  replay(refs = 1): ReplayedRecord[] {
    const out: ReplayedRecord[] = [];
    const files = readdirSync(this.o.dir).filter((f) => SEGMENT_PATTERN.test(f)).sort();
    for (const file of files) {
      const id = Number(SEGMENT_PATTERN.exec(file)![1]);
      this.nextId = Math.max(this.nextId, id + 1);
      const path = join(this.o.dir, file);
      const data = readFileSync(path);
      const segment = new WalSegment(id, path, (s) => this.retire(s));
      segment.sealed = true;
      let offset = 0;
      while (offset + HEADER <= data.length) {
        const len = data.readUInt32LE(offset);
        const sum = data.readUInt32LE(offset + 4);
        if (offset + HEADER + len > data.length) break;
        const payload = data.subarray(offset + HEADER, offset + HEADER + len);
        if (crc32(payload) !== sum) break;
        out.push({ payload, segment });
        segment.pending += refs;
        offset += HEADER + len;
      }
      if (offset < data.length) {
        const len = data.length - offset >= HEADER ? data.readUInt32LE(offset) : 0;
        const torn = data.length - offset < HEADER || offset + HEADER + len >= data.length;
        if (torn) {
          // A record cut short by a crash was never acknowledged to anyone: drop it.
          const fd = openSync(path, 'r+');
          ftruncateSync(fd, offset);
          fsyncSync(fd);
          closeSync(fd);
        } else {
          // A bad checksum with more data after it is corruption, not a crash: keep the
          // file for inspection and replay what came before the damage.
          copyFileSync(path, `${path}.corrupt`);
          (this.o.onCorruption ?? this.o.onError)(new Error(`write-ahead log segment ${file} is corrupt at byte ${offset}; kept a copy as ${file}.corrupt`));
          const fd = openSync(path, 'r+');
          ftruncateSync(fd, offset);
          fsyncSync(fd);
          closeSync(fd);
        }
      }
      segment.size = offset;
      if (segment.pending === 0) unlinkSync(path);
      else { this.segments.set(id, segment); this.stats.segments++; this.stats.bytes += offset; }
    }
    this.openSegment();
    return out;
  }

  /**
   * Buffers one record for the next group commit; returns the segment to
   * release it against, `refs` times (once per sink that will take it).
   */
  append(payload: Uint8Array, refs = 1): WalSegment {
    if (this.closed) throw new Error('write-ahead log is closed');
    if (this.active.size >= this.segmentBytes) this.roll();
    const n = HEADER + payload.length;
    if (this.pos + n > this.buf.length) this.grow(n);
    const buf = this.buf;
    buf.writeUInt32LE(payload.length, this.pos);
    buf.writeUInt32LE(crc32(payload), this.pos + 4);
    // TypedArray#set: a native copy without Buffer#copy's per-call argument handling.
    buf.set(payload, this.pos + HEADER);
    this.pos += n;
    const segment = this.active;
    segment.bufferedBytes += n;
    segment.size += HEADER + payload.length;
    segment.pending += refs;
    this.stats.appended++;
    this.schedule();
    return segment;
  }

  /** Registers `w` to learn when everything appended so far is on disk. */
  whenDurable(w: Durable): void {
    if (this.failed !== null) return;
    this.waiters.push(w);
    this.schedule();
  }

  /** Room for `n` more bytes: a larger buffer; the bytes not yet cut move over (views already cut keep the old one). */
  private grow(n: number): void {
    const next = Buffer.allocUnsafeSlow(Math.max(this.buf.length * 2, this.pos - this.cut + n));
    next.set(this.buf.subarray(this.cut, this.pos), 0);
    this.pos -= this.cut;
    this.cut = 0;
    this.buf = next;
  }

  /** Hands the active segment's uncut bytes to its `buffered` list. */
  private cutActive(): void {
    if (this.pos > this.cut) this.active.buffered.push(this.buf.subarray(this.cut, this.pos));
    this.cut = this.pos;
  }

  private schedule(): void {
    if (this.scheduled || this.flushing) return;
    this.scheduled = true;
    setImmediate(() => { this.scheduled = false; this.flush(); });
  }

  private flush(): void {
    if (this.flushing) return;
    this.cutActive();
    const dirty = [...this.segments.values()].filter((s) => s.bufferedBytes > 0);
    const waiters = this.waiters;
    this.waiters = [];
    if (dirty.length === 0) { this.release(waiters); this.notifyIdle(); return; }
    this.flushing = true;
    const writes = dirty.map((s) => {
      // One view per segment unless a roll or a grow cut it in between.
      const data = s.buffered.length === 1 ? s.buffered[0]! : Buffer.concat(s.buffered, s.bufferedBytes);
      s.buffered = [];
      s.bufferedBytes = 0;
      s.writing = true;
      return { s, data };
    });
    // Appends from now on go to the other buffer; this one is free again once written.
    const written = this.buf;
    this.buf = this.spare !== null && this.spare.length >= INITIAL_WRITE_BUFFER ? this.spare : Buffer.allocUnsafeSlow(INITIAL_WRITE_BUFFER);
    this.spare = null;
    this.pos = 0;
    this.cut = 0;
    let i = 0;
    const next = (err: NodeJS.ErrnoException | null): void => {
      if (err) {
        // The disk refused: nothing more can be acknowledged safely.
        this.flushing = false;
        this.failed = err;
        this.o.onError(err);
        this.notifyIdle(); // shutdown must not hang on a dead disk
        return;
      }
      const w = writes[i++];
      if (w === undefined) return finished();
      this.stats.bytes += w.data.length;
      writeAll(w.s.fd, w.data, 0, (e) => (e ? next(e) : fdatasync(w.s.fd, next)));
    };
    const finished = (): void => {
      this.flushing = false;
      if (written.length <= MAX_RETAINED_WRITE_BUFFER) this.spare = written;
      this.stats.commits++;
      for (const { s } of writes) {
        s.writing = false;
        if (s.sealed && s.bufferedBytes === 0 && s.fd >= 0) { closeSync(s.fd); s.fd = -1; }
        if (s.sealed && s.pending <= 0) this.retire(s);
      }
      this.release(waiters);
      if (this.waiters.length > 0 || [...this.segments.values()].some((s) => s.bufferedBytes > 0)) this.schedule();
      else this.notifyIdle();
    };
    next(null);
  }

  private release(waiters: Durable[]): void {
    for (const w of waiters) {
      try { w.durable(); } catch (err) { this.o.onError(err as Error); }
    }
  }

  private openSegment(): void {
    const id = this.nextId++;
    const path = join(this.o.dir, `${String(id).padStart(20, '0')}.wal`);
    const segment = new WalSegment(id, path, (s) => this.retire(s));
    segment.fd = openSync(path, 'a');
    syncDir(this.o.dir);
    this.active = segment;
    this.segments.set(id, segment);
    this.stats.segments++;
  }

  /** Seals the active segment (its buffered bytes still get written to it) and opens the next. */
  private roll(): void {
    this.cutActive();
    const old = this.active;
    old.sealed = true;
    this.openSegment();
    if (old.bufferedBytes === 0 && !this.flushing) {
      if (old.fd >= 0) { closeSync(old.fd); old.fd = -1; }
      if (old.pending <= 0) this.retire(old);
    }
  }

  private retire(segment: WalSegment): void {
    if (segment.bufferedBytes > 0 || segment.writing) return; // retired after its last write
    if (!this.segments.delete(segment.id)) return;
    this.stats.segments--;
    if (segment.fd >= 0) { closeSync(segment.fd); segment.fd = -1; }
    try { unlinkSync(segment.path); } catch (err) { this.o.onError(err as Error); }
  }

  /** Records appended and not yet released by every sink. */
  pendingRecords(): number {
    let n = 0;
    for (const s of this.segments.values()) n += Math.max(0, s.pending);
    return n;
  }

  /** Resolves when nothing is buffered or being written. */
  idle(): Promise<void> {
    if (!this.flushing && !this.scheduled && ![...this.segments.values()].some((s) => s.bufferedBytes > 0)) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  private notifyIdle(): void {
    const w = this.idleWaiters.splice(0);
    for (const r of w) r();
  }

  /** Writes what is buffered and closes. Segments with unreleased records stay for the next start. */
  async close(): Promise<void> {
    await this.idle();
    this.closed = true;
    for (const s of [...this.segments.values()]) {
      if (s.fd >= 0) { closeSync(s.fd); s.fd = -1; }
      s.sealed = true;
      if (s.pending <= 0) this.retire(s);
    }
  }
}

function writeAll(fd: number, data: Buffer, offset: number, cb: (err: NodeJS.ErrnoException | null) => void): void {
  write(fd, data, offset, data.length - offset, null, (err, written) => {
    if (err) return cb(err);
    if (offset + written < data.length) return writeAll(fd, data, offset + written, cb);
    cb(null);
  });
}

function syncDir(dir: PathLike): void {
  const fd = openSync(dir, 'r');
  try { fsyncSync(fd); } finally { closeSync(fd); }
}
