/**
 * query/ — the analytics query API's logic: reports (events, users, funnel,
 * retention, sessions, timeline, segments) over whichever ClickHouse store
 * is configured, for the HTTP routes under /api/v1/query and the
 * `flowstat query` command.
 *
 * Promises: every parameter is validated before the store is touched, and a
 * bad one is FLOW_ERR_FIELD_INVALID naming it; every value reaches SQL as a
 * bound query parameter (modern stores) or through the one vetted literal
 * escaper (ClickHouse 18.16, which has no parameters), and identifiers only
 * from allowlists (sql.ts, columns.ts); time ranges, result sizes and query
 * time are bounded (QUERY_LIMITS); funnels follow the real-time funnel rules
 * exactly. User docs: docs/queries.md.
 */
export { createQueryService, type QueryService, type QueryServiceOptions } from './service.js';
export { QUERY_LIMITS, type RawParams } from './params.js';
export { REPORTS } from './reports/index.js';
export { renderCsv, renderTable, renderText } from './format.js';
export type { QueryResult, ResultTable, ResultRow, Cell } from './types.js';
