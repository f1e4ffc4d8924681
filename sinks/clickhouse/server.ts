import { createClient, ClickHouseError, ClickHouseLogLevel, type ClickHouseClient } from '@clickhouse/client';
import { Readable } from 'node:stream';
import { capabilitiesOf, type Capabilities } from '../schema/types.js';
import { classifyStoreError } from './errors.js';
import { ident, MODERN_INSERT_SETTINGS, type ClickHouseStore, type InsertRequest, type QueryOptions } from './store.js';

/**
 * A ClickHouse server over HTTP (@clickhouse/client). Inserts send the
 * encoded body as is (RowBinary by default): no JSON round trip in the client.
 */

export interface ServerStoreOptions {
  readonly url: string;
  readonly user: string;
  readonly password: string;
  readonly database: string;
  readonly requestTimeoutMs?: number;
}

/** Thrown by store calls: carries the ClickHouse code for classification. */
export class StoreCallError extends Error {
  constructor(message: string, readonly clickhouseCode: number | undefined, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreCallError';
  }
}

function wrap(err: unknown): Error {
  if (err instanceof ClickHouseError) return new StoreCallError(err.message, Number(err.code), { cause: err });
  return err instanceof Error ? err : new Error(String(err));
}

export async function createServerStore(o: ServerStoreOptions): Promise<ClickHouseStore> {
  const client: ClickHouseClient = createClient({
    url: o.url,
    username: o.user,
    password: o.password,
    request_timeout: o.requestTimeoutMs ?? 30_000,
    compression: { request: false, response: false },
    log: { level: ClickHouseLogLevel.OFF },
    keep_alive: { enabled: true },
  });
  const db = ident(o.database);

  async function drain(stream: NodeJS.ReadableStream): Promise<void> {
    for await (const _ of stream) { /* the response body carries nothing we need */ }
  }

  async function command(sql: string): Promise<void> {
    try {
      const r = await client.exec({ query: sql });
      await drain(r.stream);
    } catch (err) {
      throw wrap(err);
    }
  }

  async function query<T>(sql: string, options: QueryOptions = {}): Promise<T[]> {
    try {
      const rs = await client.query({
        query: sql,
        format: 'JSONEachRow',
        ...(options.params !== undefined ? { query_params: { ...options.params } } : {}),
        ...(options.settings !== undefined ? { clickhouse_settings: { ...options.settings } } : {}),
      });
      return await rs.json<T>();
    } catch (err) {
      throw wrap(err);
    }
  }

  let version: string;
  try {
    version = (await query<{ v: string }>('SELECT version() AS v'))[0]?.v ?? '0';
  } catch (err) {
    await client.close();
    throw err;
  }
  const capabilities: Capabilities = capabilitiesOf(version);

  return {
    kind: 'server',
    database: o.database,
    capabilities,
    command,
    query,
    async insert(req: InsertRequest) {
      const cols = req.columns.map(ident).join(', ');
      try {
        const r = await client.exec({
          query: `INSERT INTO ${db}.${ident(req.table)} (${cols}) FORMAT ${req.format}`,
          values: Readable.from(Array.isArray(req.body) ? req.body : [req.body]),
          clickhouse_settings: !capabilities.modern ? {}
            : req.dedupToken !== undefined ? { ...MODERN_INSERT_SETTINGS, insert_deduplication_token: req.dedupToken }
            : MODERN_INSERT_SETTINGS,
        });
        await drain(r.stream);
      } catch (err) {
        throw wrap(err);
      }
    },
    async ping() {
      try {
        const r = await client.ping();
        return r.success;
      } catch {
        return false;
      }
    },
    close: () => client.close(),
  };
}

export { classifyStoreError };
