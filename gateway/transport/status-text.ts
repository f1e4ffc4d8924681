import { STATUS_CODES } from 'node:http';

/** "200 OK" style status lines for uWS, computed once. */
const LINES = new Map<number, string>();
for (const [code, text] of Object.entries(STATUS_CODES)) LINES.set(Number(code), `${code} ${text ?? ''}`);

export function statusLine(status: number): string {
  return LINES.get(status) ?? `${status} Unknown`;
}
