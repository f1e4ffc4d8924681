import { createError, toFlowError, type FlowError } from '../../engine/index.js';
import { renderCsv, type QueryService, type RawParams } from '../../query/index.js';
import type { Header, HttpResponseSink, RequestHead } from '../transport/index.js';

/**
 * The query API: `GET /api/v1/query/{report}?…` answers the report as JSON
 * (`format=csv`: its first table as CSV, for segment export), and
 * `GET /api/v1/query` lists the reports. The caller checks the admin token
 * first; parameters are the query string, repeated names kept in order.
 * Reports run off the event path and never log the request's headers.
 */

export const QUERY_PREFIX = '/api/v1/query';

const JSON_HEADERS: readonly Header[] = [['content-type', 'application/json'], ['cache-control', 'no-store']];
const CSV_HEADERS: readonly Header[] = [['content-type', 'text/csv; charset=utf-8'], ['cache-control', 'no-store'], ['content-disposition', 'attachment; filename="report.csv"']];

export type Reject = (res: HttpResponseSink, err: FlowError, headers: readonly Header[]) => void;

export function createQueryRoutes(service: QueryService, reject: Reject) {
  return {
    request(head: RequestHead, res: HttpResponseSink): void {
      const rest = head.path.slice(QUERY_PREFIX.length);
      if (rest === '' || rest === '/') {
        res.send(200, JSON_HEADERS, JSON.stringify({ reports: service.reports }));
        return;
      }
      const report = rest.slice(1);
      let params: RawParams;
      try {
        params = paramsOf(head.query);
      } catch (err) {
        return reject(res, toFlowError(err, 'FLOW_ERR_INVALID_REQUEST'), []);
      }
      const csv = params.format?.[0] === 'csv';
      service.run(report, params).then(
        (result) => {
          if (csv) res.send(200, CSV_HEADERS, renderCsv(result.tables[0]!));
          else res.send(200, JSON_HEADERS, JSON.stringify(result));
        },
        (err: unknown) => reject(res, toFlowError(err), []),
      );
    },
  };
}

/** The query string as a multimap; a malformed escape is a 400. */
function paramsOf(query: string): RawParams {
  const out: Record<string, string[]> = Object.create(null) as Record<string, string[]>;
  if (query === '') return out;
  let parsed: URLSearchParams;
  try {
    // URLSearchParams replaces bad escapes silently; decodeURIComponent tells us.
    decodeURIComponent(query.replace(/\+/g, ' '));
    parsed = new URLSearchParams(query);
  } catch {
    throw createError('FLOW_ERR_INVALID_REQUEST', { reason: 'malformed query string' });
  }
  for (const [k, v] of parsed) (out[k] ??= []).push(v);
  const format = out.format?.[0];
  if (format !== undefined && format !== 'json' && format !== 'csv') throw createError('FLOW_ERR_FIELD_INVALID', { field: 'format', reason: 'must be json or csv' });
  return out;
}
