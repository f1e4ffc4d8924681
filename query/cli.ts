import { loadConfig } from '../engine/config/index.js';
import { createSilentLogger, isFlowError } from '../engine/index.js';
import { createStoreHandle } from '../sinks/clickhouse/connect.js';
import { renderCsv, renderText } from './format.js';
import type { RawParams } from './params.js';
import { REPORTS } from './reports/index.js';
import { createQueryService } from './service.js';
import type { QueryResult } from './types.js';

/**
 * `flowstat query <report> [--name value …] [--json | --csv] [--url URL]`:
 * runs a report and prints a readable table (or JSON, or the first table as
 * CSV). Without --url it opens the configured store itself (config from
 * $FLOWSTAT_CONFIG and the environment, as `flowstat start`); with --url it
 * asks a running engine's /api/v1/query with $FLOWSTAT_ADMIN_TOKEN — the way
 * to query an embedded chDB store while the engine holds it.
 */

export const QUERY_USAGE = `usage: flowstat query <report> [--param value …] [--json | --csv] [--url http://host:port]

reports:
${Object.values(REPORTS).map((r) => `  ${r.name.padEnd(10)} ${r.summary}\n  ${''.padEnd(10)} params: ${r.params}`).join('\n')}

Repeatable params (filter, step, did) may be given more than once. Times are
ISO 8601 (2026-01-31, 2026-01-31T12:00:00Z) or ms; the range is [from, to).
Examples:
  flowstat query events --from 2026-01-01 --to 2026-02-01 --key 'in.gen.shop.*' --breakdown utm_source
  flowstat query funnel --step in.gen.shop.view --step in.gen.shop.buy --window 1h
  flowstat query segments --did in.gen.shop.buy:2 --csv > buyers.csv
`;

interface Parsed {
  readonly report: string;
  readonly params: Record<string, string[]>;
  readonly output: 'text' | 'json' | 'csv';
  readonly url: string | undefined;
}

function parseArgs(argv: readonly string[]): Parsed | string {
  const [report, ...rest] = argv;
  if (report === undefined || report.startsWith('-')) return 'missing <report>';
  const params: Record<string, string[]> = {};
  let output: Parsed['output'] = 'text';
  let url: string | undefined;
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i]!;
    if (arg === '--json') { output = 'json'; continue; }
    if (arg === '--csv') { output = 'csv'; continue; }
    if (!arg.startsWith('--') || arg.length < 3) return `unexpected argument "${arg}"`;
    const eq = arg.indexOf('=');
    const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
    const value = eq < 0 ? rest[++i] : arg.slice(eq + 1);
    if (value === undefined) return `--${name} needs a value`;
    if (name === 'url') url = value;
    else (params[name] ??= []).push(value);
  }
  return { report, params, output, url };
}

async function viaApi(url: string, report: string, params: RawParams): Promise<QueryResult> {
  const token = process.env.FLOWSTAT_ADMIN_TOKEN;
  if (token === undefined || token === '') throw new Error('--url needs FLOWSTAT_ADMIN_TOKEN in the environment');
  const qs = new URLSearchParams();
  for (const [k, vs] of Object.entries(params)) for (const v of vs) qs.append(k, v);
  const res = await fetch(`${url.replace(/\/+$/, '')}/api/v1/query/${encodeURIComponent(report)}?${qs.toString()}`, { headers: { authorization: `Bearer ${token}` } });
  const body = await res.json() as QueryResult | { error: { code: string; message: string } };
  if ('error' in body) throw new Error(`${body.error.code}: ${body.error.message}`);
  return body;
}

async function direct(report: string, params: RawParams): Promise<QueryResult> {
  const config = loadConfig();
  const handle = createStoreHandle(config, createSilentLogger());
  try {
    const service = createQueryService({ store: () => handle.get(), defaultProjectId: config.defaultProjectId, funnels: config.funnels });
    return await service.run(report, params);
  } finally {
    await handle.close();
  }
}

/** Runs the command; resolves with the exit code (2: usage or bad parameter, 1: failure). */
export async function runQueryCommand(argv: readonly string[], out: NodeJS.WritableStream = process.stdout, err: NodeJS.WritableStream = process.stderr): Promise<number> {
  if (argv[0] === undefined || argv[0] === '--help' || argv[0] === '-h') { out.write(QUERY_USAGE); return argv[0] === undefined ? 2 : 0; }
  const parsed = parseArgs(argv);
  if (typeof parsed === 'string') { err.write(`flowstat query: ${parsed}\n\n${QUERY_USAGE}`); return 2; }
  try {
    const result = parsed.url !== undefined ? await viaApi(parsed.url, parsed.report, parsed.params) : await direct(parsed.report, parsed.params);
    out.write(parsed.output === 'json' ? `${JSON.stringify(result, null, 2)}\n` : parsed.output === 'csv' ? renderCsv(result.tables[0]!) : renderText(result));
    return 0;
  } catch (e) {
    err.write(`flowstat query: ${e instanceof Error ? e.message : String(e)}\n`);
    return isFlowError(e) && e.status === 400 ? 2 : 1;
  }
}
