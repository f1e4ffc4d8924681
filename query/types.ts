import type { FunnelConfig } from '../actors/machines/funnel-config.js';
import type { ClickHouseStore } from '../sinks/clickhouse/store.js';
import type { Dialect } from './columns.js';
import type { ParamReader, TimeRange } from './params.js';
import type { BuiltQuery } from './sql.js';

/**
 * The shapes shared by the report builders, the service, the HTTP routes
 * and the CLI: a report parses its parameters first (all validation, no
 * I/O), then runs its queries and returns tables.
 */

export type Cell = string | number | null;
export type ResultRow = Readonly<Record<string, Cell>>;

export interface ResultTable {
  readonly title: string;
  readonly columns: readonly string[];
  readonly rows: readonly ResultRow[];
}

export interface QueryResult {
  readonly report: string;
  readonly range?: { readonly from: string; readonly to: string };
  readonly tables: readonly ResultTable[];
  /** Report-specific notes: totals, truncation, the next page's cursor. */
  readonly meta: Readonly<Record<string, Cell | boolean>>;
}

/** What parsing may consult: the clock, the defaults, the configured funnels. */
export interface ReportEnv {
  readonly now: number;
  readonly defaultProjectId: number;
  readonly funnels: readonly FunnelConfig[];
}

/** What running may use: the store's database and rendering, and a bounded query call. */
export interface ReportExec {
  readonly store: ClickHouseStore;
  readonly dialect: Dialect;
  /** Runs a built query with the report timeout and result-size settings. */
  query<T>(q: BuiltQuery): Promise<T[]>;
}

export interface Report<P> {
  readonly name: string;
  /** One line for usage text. */
  readonly summary: string;
  /** The parameters it takes, for usage text. */
  readonly params: string;
  parse(r: ParamReader, env: ReportEnv): P;
  run(plan: P, x: ReportExec): Promise<QueryResult>;
}

export type AnyReport = Report<unknown>;

export function rangeOf(range: TimeRange): { from: string; to: string } {
  return { from: new Date(range.from).toISOString(), to: new Date(range.to).toISOString() };
}

/** Project id from `project` (default: the config's default project). */
export function projectOf(r: ParamReader, env: ReportEnv): number {
  return r.int('project', env.defaultProjectId, 0, 2 ** 31 - 1);
}

/** ClickHouse prints 64-bit integers as strings in JSON: numbers here. */
export function num(v: unknown): number {
  return typeof v === 'number' ? v : Number(v);
}
