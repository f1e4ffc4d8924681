import { parseFunnels, type FunnelConfig } from '../actors/machines/funnel-config.js';
import { createError, isFlowError, toFlowError, type FlowError } from '../engine/errors/index.js';
import { classifyStoreError } from '../sinks/clickhouse/errors.js';
import type { ClickHouseStore } from '../sinks/clickhouse/store.js';
import { dialectOf } from './columns.js';
import { invalid, ParamReader, QUERY_LIMITS, type RawParams } from './params.js';
import { REPORTS } from './reports/index.js';
import type { BuiltQuery } from './sql.js';
import type { QueryResult, ReportEnv, ReportExec } from './types.js';

/**
 * createQueryService: runs a named report with raw parameters against the
 * configured store. Parameters are validated before the store is touched (a
 * bad request is a 400 naming the field, whatever the store's state); every
 * query runs with max_execution_time; store failures become FLOW_ERR_TIMEOUT,
 * FLOW_ERR_STORE_UNAVAILABLE or FLOW_ERR_INTERNAL.
 */

export interface QueryServiceOptions {
  /** The connected, migrated store (StoreHandle.get). */
  readonly store: () => Promise<ClickHouseStore>;
  readonly defaultProjectId: number;
  /** The config's `funnels` section (raw; validated here as the engine does). */
  readonly funnels?: readonly unknown[];
  readonly now?: () => number;
  /** Seconds; default QUERY_LIMITS.timeoutSec. */
  readonly timeoutSec?: number;
}

export interface QueryService {
  readonly reports: readonly string[];
  run(report: string, params: RawParams): Promise<QueryResult>;
}

/** ClickHouse's TIMEOUT_EXCEEDED. */
const CH_TIMEOUT = 159;

export function createQueryService(o: QueryServiceOptions): QueryService {
  const funnels: readonly FunnelConfig[] = parseFunnels(o.funnels ?? [], ['funnels']);
  const now = o.now ?? Date.now;
  const timeoutSec = o.timeoutSec ?? QUERY_LIMITS.timeoutSec;

  return {
    reports: Object.keys(REPORTS),
    async run(name, params) {
      const report = Object.hasOwn(REPORTS, name) ? REPORTS[name] : undefined;
      if (report === undefined) throw invalid('report', `unknown report; one of ${Object.keys(REPORTS).join(', ')}`);
      const env: ReportEnv = { now: now(), defaultProjectId: o.defaultProjectId, funnels };
      const reader = new ParamReader(params, env.now);
      reader.one('format'); // the HTTP layer's and CLI's, not the report's
      const plan = report.parse(reader, env);
      reader.done();
      let store: ClickHouseStore;
      try {
        store = await o.store();
      } catch (err) {
        throw createError('FLOW_ERR_STORE_UNAVAILABLE', { reason: err instanceof Error ? err.message.slice(0, 200) : String(err) }, err);
      }
      const exec: ReportExec = {
        store,
        dialect: dialectOf(store.capabilities.modern),
        async query<T>(q: BuiltQuery): Promise<T[]> {
          try {
            return await store.query<T>(q.sql, { ...(q.params !== undefined ? { params: q.params } : {}), settings: { max_execution_time: timeoutSec } });
          } catch (err) {
            throw storeFailure(err, timeoutSec);
          }
        },
      };
      return report.run(plan, exec);
    },
  };
}

function storeFailure(err: unknown, timeoutSec: number): FlowError {
  if (isFlowError(err)) return err;
  const classified = classifyStoreError(err);
  if (classified.code === String(CH_TIMEOUT)) return createError('FLOW_ERR_TIMEOUT', { what: 'query', ms: timeoutSec * 1000 }, err);
  // Unreachable: 503, retryable. Anything else the store refused is a fault of the query (ours), not the caller's.
  if (classified.kind === 'retry') return classified.error;
  return toFlowError(err);
}
