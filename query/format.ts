import type { Cell, QueryResult, ResultTable } from './types.js';

/**
 * Rendering a report's result for people and spreadsheets: aligned text
 * tables (the CLI) and RFC 4180 CSV (segment export). A CSV cell that a
 * spreadsheet would run as a formula (=, +, -, @ first) is prefixed with '.
 */

export function renderText(result: QueryResult): string {
  const parts: string[] = [];
  if (result.range) parts.push(`${result.report}: ${result.range.from} .. ${result.range.to}`);
  for (const t of result.tables) parts.push(renderTable(t));
  const meta = Object.entries(result.meta).filter(([, v]) => v !== null).map(([k, v]) => `${k}: ${String(v)}`);
  if (meta.length > 0) parts.push(meta.join('  '));
  return `${parts.join('\n\n')}\n`;
}

export function renderTable(t: ResultTable): string {
  const head = t.columns;
  const body = t.rows.map((r) => head.map((c) => show(r[c] ?? null)));
  const widths = head.map((h, i) => Math.min(60, Math.max(h.length, ...body.map((row) => row[i]!.length))));
  const line = (cells: readonly string[]): string => cells.map((c, i) => {
    const cut = c.length > widths[i]! ? `${c.slice(0, widths[i]! - 1)}…` : c;
    return cut.padEnd(widths[i]!);
  }).join('  ').trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  return [t.title, line(head), rule, ...body.map(line), body.length === 0 ? '(no rows)' : ''].filter((l) => l !== '').join('\n');
}

export function renderCsv(t: ResultTable): string {
  const cell = (v: Cell): string => {
    let s = v === null ? '' : String(v);
    if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
    return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return `${[t.columns.join(','), ...t.rows.map((r) => t.columns.map((c) => cell(r[c] ?? null)).join(','))].join('\r\n')}\r\n`;
}

function show(v: Cell): string {
  if (v === null) return '-';
  return String(v).replace(/[\r\n\t]/g, ' ');
}
