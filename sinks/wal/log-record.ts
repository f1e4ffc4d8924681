import { Packr } from 'msgpackr';
import type { RowBinaryEncoder } from '../rows/row-binary.js';
import { createRowBinaryDecoder, type RowBinaryDecoder } from '../rows/row-binary-decoder.js';
import { TABLES } from '../schema/tables.js';
import type { Row, TableName } from '../schema/types.js';

/**
 * What one write-ahead-log record holds: a row for a table, and whether it
 * goes to the store only (a dead letter) or to every sink that takes it.
 *
 * Two layouts, told apart by the first byte:
 *
 * - RowBinary (first byte 0x01), for rows only the ClickHouse store takes:
 *   `0x01 | flags (bit 0: store only, bit 1: modern store) | table index |
 *   u32 LE schema id | the row's RowBinary bytes`. These are the very bytes
 *   the ClickHouse sink puts in its insert body, so a row is encoded once for
 *   both. Packing ~1.3 kB event rows with msgpack for the log cost more than
 *   the RowBinary encode itself (17% against 10% of the engine's CPU end to
 *   end, on chDB).
 * - msgpack `[table, row, storeOnly]` (first byte 0x93, a 3-element array):
 *   rows bound for other sinks as well (webhooks must get the row as it was;
 *   a RowBinary row reads back with defaults filled in and props as
 *   strings), rows written before the store was connected (the layout
 *   depends on its version), rows the encoder refuses, and every log written
 *   before this layout existed.
 */

const ROW_BINARY = 0x01;
const HEADER = 7;
const STORE_ONLY = 1;
const MODERN = 2;
/** Table indexes in the RowBinary layout: append only, never reorder. */
const LOG_TABLES: readonly TableName[] = ['events', 'sessions', 'identities', 'dead_letters'];
const TABLE_INDEX = new Map(LOG_TABLES.map((t, i) => [t, i]));

export interface DecodedLogRecord {
  readonly table: TableName;
  readonly row: Row;
  readonly storeOnly: boolean;
  /** The row's RowBinary bytes and the layout they follow, when the record holds them (a view into the payload). */
  readonly rowBinary: { readonly bytes: Buffer; readonly schemaId: number } | null;
}

export class LogRecordCodec {
  private readonly packr = new Packr({ useRecords: false, mapsAsObjects: true });
  /**
   * msgpackr packs into 8 kB buffers of its own and starts a new one
   * whenever less than 2 kB is left: with ~1.3 kB event rows that is an
   * allocation every few records. The log copies each record as it is
   * appended, so every record can be packed into the same scratch space.
   */
  private readonly packScratch = Buffer.allocUnsafeSlow(1024 * 1024);
  private scratch = Buffer.allocUnsafeSlow(64 * 1024);
  private readonly decoders = new Map<string, RowBinaryDecoder>();
  /** Set by the last `encode`: the record's row bytes, for the store's sink (null in the msgpack layout). */
  rowBytes: Buffer | null = null;

  /**
   * The payload for one record, valid until the next encode (the log copies
   * it at once). `encoder`: the store's RowBinary encoder for the table when
   * only the store takes this row, else null.
   */
  encode(table: TableName, row: Row, storeOnly: boolean, encoder: RowBinaryEncoder | null): Buffer {
    const bytes = encoder === null ? null : encoder.encodeOne(row);
    if (bytes === null) {
      this.rowBytes = null;
      this.packr.useBuffer(this.packScratch);
      return this.packr.pack([table, row, storeOnly ? 1 : 0]);
    }
    const n = HEADER + bytes.length;
    if (n > this.scratch.length) this.scratch = Buffer.allocUnsafeSlow(Math.max(n, this.scratch.length * 2));
    const out = this.scratch;
    out[0] = ROW_BINARY;
    out[1] = (storeOnly ? STORE_ONLY : 0) | (encoder!.modern ? MODERN : 0);
    out[2] = TABLE_INDEX.get(table)!;
    out.writeUInt32LE(encoder!.schemaId, 3);
    out.set(bytes, HEADER);
    this.rowBytes = out.subarray(HEADER, n);
    return out.subarray(0, n);
  }

  /** Throws when the payload is neither layout, or its row cannot be read with this build's tables. */
  decode(payload: Buffer): DecodedLogRecord {
    if (payload[0] !== ROW_BINARY) {
      const [table, row, storeOnly] = this.packr.unpack(payload) as [TableName, Row, number];
      return { table, row, storeOnly: storeOnly === 1, rowBinary: null };
    }
    if (payload.length < HEADER) throw new RangeError(`log record of ${payload.length} bytes is shorter than its header`);
    const flags = payload[1]!;
    const table = LOG_TABLES[payload[2]!];
    if (table === undefined) throw new RangeError(`log record names table #${payload[2]!}, which this version does not have`);
    const modern = (flags & MODERN) !== 0;
    const decoder = this.decoder(table, modern);
    const schemaId = payload.readUInt32LE(3);
    if (schemaId !== decoder.schemaId) {
      throw new RangeError(`log record for ${table} was written with another column layout (schema ${schemaId.toString(16)}, this version has ${decoder.schemaId.toString(16)})`);
    }
    const bytes = payload.subarray(HEADER);
    return { table, row: decoder.decode(bytes), storeOnly: (flags & STORE_ONLY) !== 0, rowBinary: { bytes, schemaId } };
  }

  private decoder(table: TableName, modern: boolean): RowBinaryDecoder {
    const k = `${table}:${modern ? 1 : 0}`;
    let d = this.decoders.get(k);
    if (d === undefined) {
      d = createRowBinaryDecoder(TABLES[table], { version: '', modern });
      this.decoders.set(k, d);
    }
    return d;
  }
}
