import { appendFileSync, closeSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Wal, type WalSegment } from '../../sinks/wal/index.js';

/**
 * The write-ahead log against real files in a temporary directory. A crash is
 * simulated by abandoning a Wal without close() (its descriptors closed, as
 * the kernel would) and starting a new one on the same directory.
 */

let dir: string;
let errors: Error[];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'flowstat-wal-'));
  errors = [];
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
  expect(errors).toEqual([]);
});

function openWal(segmentBytes?: number): Wal {
  const wal = new Wal({ dir, ...(segmentBytes !== undefined ? { segmentBytes } : {}), onError: (err) => errors.push(err) });
  wal.replay();
  return wal;
}

const durable = (wal: Wal): Promise<void> => new Promise((resolve) => wal.whenDurable({ durable: resolve }));

/** What a kill -9 leaves: the files, and descriptors the kernel closes. */
function crash(segments: Iterable<WalSegment>): void {
  for (const s of new Set(segments)) if (s.fd >= 0) { closeSync(s.fd); s.fd = -1; }
}

const rec = (i: number): Buffer => Buffer.from(`record-${String(i).padStart(3, '0')}`);
const texts = (records: readonly { payload: Buffer }[]): string[] => records.map((r) => r.payload.toString());
const segmentFiles = (): string[] => readdirSync(dir).filter((f) => f.endsWith('.wal')).sort();

function frame(payload: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt32LE(payload.length, 0);
  header.writeUInt32LE(crc32(payload), 4);
  return Buffer.concat([header, payload]);
}

describe('wal - group commit', () => {
  it('wal - whenDurable fires only once the record can be read back from the segment file', async () => {
    const wal = openWal();
    const segment = wal.append(rec(1));
    // Buffered, not yet written: nothing may be acknowledged yet.
    expect(readFileSync(segment.path).length).toBe(0);
    let onDisk: Buffer | null = null;
    await new Promise<void>((resolve) => wal.whenDurable({
      durable() { onDisk = readFileSync(segment.path); resolve(); },
    }));
    expect(onDisk).not.toBeNull();
    expect(onDisk!.equals(frame(rec(1)))).toBe(true);
    segment.release(1);
    await wal.close();
  });

  it('wal - appends made in one turn share one commit', async () => {
    const wal = openWal();
    const segments: WalSegment[] = [];
    for (let i = 0; i < 100; i++) segments.push(wal.append(rec(i)));
    await durable(wal);
    expect(wal.stats.commits).toBe(1);
    expect(wal.stats.appended).toBe(100);
    expect(readFileSync(segments[0]!.path).length).toBe(100 * frame(rec(0)).length);

    wal.append(rec(100));
    await durable(wal);
    expect(wal.stats.commits).toBe(2);
    for (const s of segments) s.release(1);
    await wal.close();
  });

  it('wal - a durability wait with nothing appended fires without a commit', async () => {
    const wal = openWal();
    await durable(wal);
    expect(wal.stats.commits).toBe(0);
    await wal.close();
  });
});

describe('wal - replay', () => {
  it('wal - after a crash, replay returns exactly the unreleased records in append order', async () => {
    const first = openWal(64); // a few records per segment: the order must hold across files
    const segments: WalSegment[] = [];
    for (let i = 0; i < 10; i++) segments.push(first.append(rec(i)));
    await durable(first);
    expect(new Set(segments).size).toBeGreaterThan(2);
    crash(segments);

    const second = new Wal({ dir, segmentBytes: 64, onError: (err) => errors.push(err) });
    const replayed = second.replay();
    expect(texts(replayed)).toEqual(Array.from({ length: 10 }, (_, i) => rec(i).toString()));
    expect(second.pendingRecords()).toBe(10);
    for (const r of replayed) r.segment.release(1);
    expect(segmentFiles()).toHaveLength(1); // only the new, empty active segment
    await second.close();
    expect(segmentFiles()).toEqual([]);
  });

  it('wal - records appended after a replay come after the replayed ones at the next start', async () => {
    const first = openWal();
    const a = first.append(rec(1));
    await durable(first);
    crash([a]);

    const second = new Wal({ dir, onError: (err) => errors.push(err) });
    expect(texts(second.replay())).toEqual([rec(1).toString()]);
    const b = second.append(rec(2));
    await durable(second);
    crash([b]);

    const third = new Wal({ dir, onError: (err) => errors.push(err) });
    const replayed = third.replay();
    expect(texts(replayed)).toEqual([rec(1).toString(), rec(2).toString()]);
    for (const r of replayed) r.segment.release(1);
    await third.close();
    expect(segmentFiles()).toEqual([]);
  });

  it('wal - fully released sealed segments are deleted and their records not replayed', async () => {
    const first = openWal(64);
    const segments: WalSegment[] = [];
    for (let i = 0; i < 10; i++) segments.push(first.append(rec(i)));
    await durable(first);
    const distinct = [...new Set(segments)];
    expect(distinct.length).toBeGreaterThanOrEqual(3);
    expect(segmentFiles()).toHaveLength(distinct.length);

    // Release every record of all segments but the last (the active one).
    const last = distinct[distinct.length - 1]!;
    let kept = 0;
    for (const s of segments) if (s !== last) s.release(1); else kept++;
    expect(segmentFiles()).toEqual([last.path.slice(dir.length + 1)]);
    expect(first.pendingRecords()).toBe(kept);
    crash(segments);

    const second = new Wal({ dir, onError: (err) => errors.push(err) });
    const replayed = second.replay();
    expect(texts(replayed)).toEqual(Array.from({ length: kept }, (_, i) => rec(10 - kept + i).toString()));
    for (const r of replayed) r.segment.release(1);
    await second.close();
  });

  it('wal - a partly released segment is replayed whole (at-least-once per segment)', async () => {
    const first = openWal();
    const segments = [first.append(rec(1)), first.append(rec(2)), first.append(rec(3))];
    await durable(first);
    segments[0]!.release(1); // one of three: the segment must stay
    crash(segments);

    const second = new Wal({ dir, onError: (err) => errors.push(err) });
    const replayed = second.replay();
    expect(texts(replayed)).toEqual([rec(1), rec(2), rec(3)].map(String));
    for (const r of replayed) r.segment.release(1);
    await second.close();
  });

  it('wal - a torn tail of garbage is cut and the records before it survive', async () => {
    const first = openWal();
    const segments = [first.append(rec(1)), first.append(rec(2))];
    await durable(first);
    crash(segments);
    const path = segments[0]!.path;
    const valid = readFileSync(path).length;
    appendFileSync(path, Buffer.from([0xff, 0xff, 0xff, 0x7f, 1, 2, 3])); // a huge length, cut off

    const second = new Wal({ dir, onError: (err) => errors.push(err) });
    const replayed = second.replay();
    expect(texts(replayed)).toEqual([rec(1), rec(2)].map(String));
    expect(readFileSync(path).length).toBe(valid);

    // The cut is permanent: the next start reads the same records, no error.
    const next = second.append(rec(3));
    await durable(second);
    crash([next]);
    const third = new Wal({ dir, onError: (err) => errors.push(err) });
    const again = third.replay();
    expect(texts(again)).toEqual([rec(1), rec(2), rec(3)].map(String));
    for (const r of again) r.segment.release(1);
    await third.close();
  });

  it('wal - a record cut short is cut and the records before it survive', async () => {
    const first = openWal();
    const segments = [first.append(rec(1)), first.append(rec(2))];
    await durable(first);
    crash(segments);
    const path = segments[0]!.path;
    const valid = readFileSync(path).length;
    appendFileSync(path, frame(Buffer.from('a record the crash cut in half')).subarray(0, 20));

    const second = new Wal({ dir, onError: (err) => errors.push(err) });
    const replayed = second.replay();
    expect(texts(replayed)).toEqual([rec(1), rec(2)].map(String));
    expect(readFileSync(path).length).toBe(valid);
    for (const r of replayed) r.segment.release(1);
    await second.close();
  });

  it('wal - a corrupted checksum stops replay of its segment at that record', async () => {
    const first = openWal(64);
    const segments: WalSegment[] = [];
    for (let i = 0; i < 6; i++) segments.push(first.append(rec(i)));
    await durable(first);
    crash(segments);
    const [head, tail] = [...new Set(segments)];
    expect(tail).toBeDefined();
    const inHead = segments.filter((s) => s === head).length;
    expect(inHead).toBeGreaterThanOrEqual(3);

    // Flip one payload byte of the second record of the first segment.
    const data = readFileSync(head!.path);
    const at = frame(rec(0)).length + 8 + 2;
    data[at] = data[at]! ^ 0xff;
    writeFileSync(head!.path, data);

    const second = new Wal({ dir, onError: (err) => errors.push(err) });
    const replayed = second.replay();
    // The first record, then nothing more of that segment; the next segment is intact.
    const later = segments.map((s, i) => (s === head ? -1 : i)).filter((i) => i >= 0);
    expect(texts(replayed)).toEqual([rec(0), ...later.map(rec)].map(String));
    // Corruption (unlike a torn tail) is reported, and the damaged file is kept for inspection.
    expect(errors.map((e) => e.message)).toEqual([expect.stringContaining('is corrupt at byte')]);
    expect(readFileSync(`${head!.path}.corrupt`)).toEqual(data);
    errors.length = 0;
    for (const r of replayed) r.segment.release(1);
    await second.close();
  });
});

describe('wal - references and shutdown', () => {
  it('wal - a record appended with refs=2 needs two releases before its segment goes away', async () => {
    const wal = openWal(16); // every record fills a segment
    const a = wal.append(rec(1), 2);
    const b = wal.append(rec(2), 2); // rolls: `a` is sealed
    expect(b).not.toBe(a);
    await durable(wal);
    a.release(1);
    expect(readdirSync(dir)).toContain(a.path.slice(dir.length + 1));
    a.release(1);
    expect(readdirSync(dir)).not.toContain(a.path.slice(dir.length + 1));
    b.release(2);
    await wal.close();
    expect(segmentFiles()).toEqual([]);
  });

  it('wal - replay(refs) counts every replayed record that many times', async () => {
    const first = openWal();
    const s = first.append(rec(1));
    await durable(first);
    crash([s]);

    const second = new Wal({ dir, onError: (err) => errors.push(err) });
    const [only] = second.replay(3);
    expect(second.pendingRecords()).toBe(3);
    only!.segment.release(2);
    expect(readdirSync(dir)).toContain(s.path.slice(dir.length + 1));
    only!.segment.release(1);
    expect(readdirSync(dir)).not.toContain(s.path.slice(dir.length + 1));
    await second.close();
  });

  it('wal - close() keeps segments with unreleased records for the next start and deletes the rest', async () => {
    const first = openWal(64);
    const segments: WalSegment[] = [];
    for (let i = 0; i < 6; i++) segments.push(first.append(rec(i)));
    const [head] = segments;
    // Release the first segment before close; the rest stays unreleased.
    for (const s of segments) if (s === head) s.release(1);
    await first.close();
    expect(segmentFiles()).not.toContain(head!.path.slice(dir.length + 1));
    expect(() => first.append(rec(99))).toThrow(/closed/);

    const second = new Wal({ dir, onError: (err) => errors.push(err) });
    const replayed = second.replay();
    const unreleased = segments.map((s, i) => (s === head ? -1 : i)).filter((i) => i >= 0);
    expect(texts(replayed)).toEqual(unreleased.map(rec).map(String));
    for (const r of replayed) r.segment.release(1);
    await second.close();
    expect(segmentFiles()).toEqual([]);
  });

  it('wal - releasing a sealed segment while its commit is being written waits for the commit', async () => {
    const wal = openWal(16);
    const a = wal.append(rec(1));
    const b = wal.append(rec(2)); // seals `a` with its record still buffered
    const done = durable(wal);
    // The commit starts in the log's setImmediate; this one runs right after it,
    // while the write and fdatasync of `a` are in flight.
    await new Promise<void>((resolve) => setImmediate(resolve));
    a.release(1);
    await done;
    expect(errors).toEqual([]);
    expect(segmentFiles()).toEqual([b.path.slice(dir.length + 1)]);
    // The log still works.
    const c = wal.append(rec(3));
    await durable(wal);
    b.release(1);
    c.release(1);
    await wal.close();
    expect(segmentFiles()).toEqual([]);
  }, 5_000);

  it('wal - a record is copied at append: the caller may reuse its buffer at once', async () => {
    const wal = openWal();
    const scratch = Buffer.alloc(16);
    const segments = [];
    for (let i = 0; i < 3; i++) {
      scratch.fill(0x61 + i);
      segments.push(wal.append(scratch));
    }
    scratch.fill(0x7a);
    await durable(wal);
    crash(segments);
    const replayed = new Wal({ dir, onError: (err) => errors.push(err) }).replay();
    expect(texts(replayed)).toEqual(['a'.repeat(16), 'b'.repeat(16), 'c'.repeat(16)]);
  });

  it('wal - records larger than the write buffer, across commits, replay intact and in order', async () => {
    const wal = openWal();
    const big = (i: number): Buffer => Buffer.alloc(700_000 + i, 0x30 + i);
    const segments = [];
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 3; i++) segments.push(wal.append(big(round * 3 + i)));
      await durable(wal);
    }
    crash(segments);
    const replayed = new Wal({ dir, onError: (err) => errors.push(err) }).replay();
    expect(replayed.map((r) => r.payload.length)).toEqual(Array.from({ length: 9 }, (_, i) => 700_000 + i));
    expect(replayed.every((r, i) => r.payload.every((b) => b === 0x30 + i))).toBe(true);
  });
});
