import type { Capabilities, ClickHouseStore, StoreHandle } from '../../sinks/index.js';
import { lazyStoreHandle } from '../../sinks/clickhouse/connect.js';
import type { InsertRequest, QueryOptions } from '../../sinks/clickhouse/store.js';
import { fromWireError, type StoreOp, type WireError } from './protocol.js';

/**
 * The store seen from a worker thread: every call goes to the main thread,
 * which owns the one connection (chDB allows one instance per process, and
 * one migration run is enough). An insert body held in the sink's slabs
 * (shared memory) is read by the main thread in place; any other body is
 * copied once into a buffer of its own and transferred. The worker keeps
 * its body for retries and spooling, exactly as with a local store.
 * Failures come back with what classifyStoreError reads (ClickHouse code,
 * errno code, HTTP status), so retries, dead letters and the spool behave
 * as they do in one thread.
 */

export type StoreCall = (op: StoreOp, args: unknown[], transfer?: ArrayBuffer[]) => Promise<unknown>;

interface Connected {
  readonly database: string;
  readonly capabilities: Capabilities;
}

export function createRemoteStoreHandle(kind: 'chdb' | 'server', call: StoreCall): StoreHandle {
  function proxy(c: Connected): ClickHouseStore {
    return {
      kind,
      database: c.database,
      capabilities: c.capabilities,
      async command(sql: string) { await call('command', [sql]); },
      async query<T>(sql: string, options?: QueryOptions) { return await call('query', [sql, options]) as T[]; },
      async insert(req: InsertRequest) {
        const parts = Array.isArray(req.body) ? req.body as readonly Buffer[] : [req.body as Buffer];
        // Slab bodies live in shared memory: the main thread reads them in place. The sink does not
        // reuse a body's slabs before its insert has settled (nor after a failed one: they are abandoned).
        const shared = parts.every((p) => p.buffer instanceof SharedArrayBuffer);
        const body = shared ? parts.map((p) => new Uint8Array(p.buffer, p.byteOffset, p.byteLength)) : [ownBuffer(parts)];
        await call('insert', [{
          table: req.table, columns: req.columns, format: req.format, body,
          ...(req.dedupToken === undefined ? {} : { dedupToken: req.dedupToken }),
        }], shared ? [] : [body[0]!.buffer as ArrayBuffer]);
      },
      async ping() { return await call('ping', []) as boolean; },
      // The main thread's connection outlives the workers; it closes it.
      async close() {},
    };
  }

  // The main thread logs its own connect failures; the sinks retry.
  return lazyStoreHandle(kind, async () => proxy(await call('connect', []) as Connected));
}

/** The body in one buffer that owns its whole ArrayBuffer (a pooled Buffer's cannot be transferred). */
function ownBuffer(parts: readonly Buffer[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(new ArrayBuffer(n));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

/** The main thread's side: runs a worker's store call on the real store. */
export async function serveStoreCall(handle: StoreHandle, op: StoreOp, args: unknown[]): Promise<unknown> {
  const store = await handle.get();
  switch (op) {
    case 'connect': return { database: store.database, capabilities: store.capabilities } satisfies Connected;
    case 'ping': return await store.ping();
    case 'command': return await store.command(args[0] as string);
    case 'query': return await store.query(args[0] as string, args[1] as QueryOptions | undefined);
    case 'insert': {
      const req = args[0] as Omit<InsertRequest, 'body'> & { body: Uint8Array[] };
      return await store.insert({ ...req, body: req.body.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength)) });
    }
  }
}

/** Pending calls of one worker, by id. */
export class StoreCalls {
  private next = 1;
  private readonly waiting = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();

  constructor(private readonly send: (id: number, op: StoreOp, args: unknown[], transfer?: ArrayBuffer[]) => void) {}

  readonly call: StoreCall = (op, args, transfer) => new Promise((resolve, reject) => {
    const id = this.next++;
    this.waiting.set(id, { resolve, reject });
    this.send(id, op, args, transfer);
  });

  settle(id: number, ok: boolean, value: unknown, error: WireError | undefined): void {
    const w = this.waiting.get(id);
    if (w === undefined) return;
    this.waiting.delete(id);
    if (ok) w.resolve(value);
    else w.reject(fromWireError(error ?? { message: 'store call failed' }));
  }
}

