import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { Packr } from 'msgpackr';
import type { Row, TableName } from '../schema/types.js';

/**
 * The spool: batches a sink could not deliver, parked on disk in arrival
 * order until the destination is back. One file per batch, written to a
 * temporary name, fsync'd and renamed into place (a crash leaves a whole
 * batch or none). Bounded in bytes: when full, the sink reports itself
 * saturated and the gateway sheds load — nothing is dropped silently.
 *
 * File: u32 LE crc32(body) | msgpack({ table, rows }).
 */

const packr = new Packr({ useRecords: false, mapsAsObjects: true });
const FILE_PATTERN = /^(\d{20})\.spool$/;

/** A batch's file name: its sequence number, zero-padded so names sort in order. */
const fileName = (seq: number): string => `${String(seq).padStart(20, '0')}.spool`;

/** Makes renames and unlinks in `dir` durable. */
function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try { fsyncSync(fd); } finally { closeSync(fd); }
}

export interface SpoolEntry<T> {
  readonly seq: number;
  readonly table: TableName;
  readonly rows: number;
  readonly bytes: number;
  /** In-memory companion data (acknowledgement targets); null for entries found on disk at start. */
  readonly tag: T | null;
}

/**
 * Moves the batches spooled under `from` to the end of the spool under `to`
 * (both directories of spool files), keeping their order: how a run takes
 * over what another thread's spool holds. Each file is renamed, so after a
 * crash part-way a batch is in one spool or the other, never both and never
 * lost; the next start moves the rest. Returns the batches moved.
 */
export function adoptSpool(from: string, to: string): number {
  if (!existsSync(from)) return 0;
  const moving = readdirSync(from).filter((f) => FILE_PATTERN.test(f)).sort();
  if (moving.length === 0) return 0;
  mkdirSync(to, { recursive: true });
  let next = 1;
  for (const file of readdirSync(to)) {
    const m = FILE_PATTERN.exec(file);
    if (m !== null) next = Math.max(next, Number(m[1]) + 1);
  }
  for (const file of moving) renameSync(join(from, file), join(to, fileName(next++)));
  fsyncDir(to);
  fsyncDir(from);
  return moving.length;
}

export class Spool<T> {
  private readonly entries: SpoolEntry<T>[] = [];
  private nextSeq = 1;
  bytes = 0;
  rows = 0;

  constructor(private readonly dir: string, readonly maxBytes: number) {
    mkdirSync(dir, { recursive: true });
  }

  /** Finds batches a previous run left (durability: memory restarts drain them). */
  load(): number {
    const files = readdirSync(this.dir).sort();
    for (const file of files) {
      const m = FILE_PATTERN.exec(file);
      if (m === null) {
        if (file.endsWith('.tmp')) unlinkSync(join(this.dir, file)); // a write cut short
        continue;
      }
      const seq = Number(m[1]);
      this.nextSeq = Math.max(this.nextSeq, seq + 1);
      const path = join(this.dir, file);
      const data = readFileSync(path);
      const body = data.subarray(4);
      if (data.length < 4 || crc32(body) !== data.readUInt32LE(0)) { unlinkSync(path); continue; }
      const { table, rows } = packr.unpack(body) as { table: TableName; rows: Row[] };
      this.entries.push({ seq, table, rows: rows.length, bytes: data.length, tag: null });
      this.bytes += data.length;
      this.rows += rows.length;
    }
    return this.entries.length;
  }

  /** Removes everything (the write-ahead log replays the same records). */
  discard(): void {
    for (const file of readdirSync(this.dir)) unlinkSync(join(this.dir, file));
    this.entries.length = 0;
    this.bytes = 0;
    this.rows = 0;
  }

  get length(): number {
    return this.entries.length;
  }

  full(): boolean {
    return this.bytes >= this.maxBytes;
  }

  /** Appends a batch durably. Synchronous: spooling happens once per batch, off the per-event path. */
  push(table: TableName, rows: readonly Row[], tag: T | null): SpoolEntry<T> {
    const body = packr.pack({ table, rows });
    const head = Buffer.allocUnsafe(4);
    head.writeUInt32LE(crc32(body), 0);
    const seq = this.nextSeq++;
    const name = fileName(seq);
    const tmp = join(this.dir, `${name}.tmp`);
    writeFileSync(tmp, Buffer.concat([head, body]));
    const fd = openSync(tmp, 'r');
    try { fsyncSync(fd); } finally { closeSync(fd); }
    renameSync(tmp, join(this.dir, name));
    fsyncDir(this.dir);
    const entry: SpoolEntry<T> = { seq, table, rows: rows.length, bytes: 4 + body.length, tag };
    this.entries.push(entry);
    this.bytes += entry.bytes;
    this.rows += entry.rows;
    return entry;
  }

  head(): SpoolEntry<T> | undefined {
    return this.entries[0];
  }

  async read(entry: SpoolEntry<T>): Promise<Row[]> {
    const data = await readFile(this.path(entry));
    return (packr.unpack(data.subarray(4)) as { rows: Row[] }).rows;
  }

  /** Rewrites the head entry in place with what is left of it (after partial delivery). */
  replaceHead(rows: readonly Row[], tag: T | null): void {
    const head = this.entries[0];
    if (head === undefined) return;
    const body = packr.pack({ table: head.table, rows });
    const crc = Buffer.allocUnsafe(4);
    crc.writeUInt32LE(crc32(body), 0);
    const path = this.path(head);
    writeFileSync(`${path}.tmp`, Buffer.concat([crc, body]));
    const fd = openSync(`${path}.tmp`, 'r');
    try { fsyncSync(fd); } finally { closeSync(fd); }
    renameSync(`${path}.tmp`, path);
    const entry: SpoolEntry<T> = { seq: head.seq, table: head.table, rows: rows.length, bytes: 4 + body.length, tag };
    this.bytes += entry.bytes - head.bytes;
    this.rows += entry.rows - head.rows;
    this.entries[0] = entry;
  }

  /** Drops the head entry after it was delivered. */
  shift(): void {
    const entry = this.entries.shift();
    if (entry === undefined) return;
    this.bytes -= entry.bytes;
    this.rows -= entry.rows;
    try { unlinkSync(this.path(entry)); } catch { /* already gone */ }
  }

  private path(entry: SpoolEntry<T>): string {
    return join(this.dir, fileName(entry.seq));
  }

  /** Bytes on disk (for tests and metrics). */
  diskBytes(): number {
    let n = 0;
    for (const f of readdirSync(this.dir)) n += statSync(join(this.dir, f)).size;
    return n;
  }
}
