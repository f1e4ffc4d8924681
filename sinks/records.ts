import type { Envelope } from '../engine/index.js';
import type { Row } from './schema/types.js';

/**
 * Rows for the ClickHouse tables, from what the engine knows. Columns not set
 * here get their type's default in the encoders. Enrichment (#5) and the
 * session actor (#6) add their columns to the same row.
 */

export function eventRow(e: Envelope): Row {
  return {
    event_id: e.id,
    project_id: e.projectId,
    event_date: e.ts,
    key: e.key,
    channel: e.channel,
    service: e.service,
    name: e.name,
    uid: e.uid,
    user_id: e.userId ?? '',
    ts: e.ts,
    received_at: e.receivedAt,
    ip: e.ip,
    ua: e.userAgent,
    page_url: e.pageUrl,
    page_referrer: e.pageReferrer,
    page_title: e.pageTitle,
    props: e.data,
    // Stamped by the user's session actor (actors/ingest-behavior.ts); here for one fixed row shape.
    arrival: 0,
  };
}

export interface DeadLetterInput {
  readonly at: number;
  readonly projectId: number;
  readonly source: string;
  readonly code: string;
  readonly reason: string;
  readonly payload: unknown;
}

/** Payloads are kept up to this size in dead_letters (the reason says when clipped). */
export const DEAD_LETTER_PAYLOAD_MAX = 64 * 1024;

export function deadLetterRow(d: DeadLetterInput): Row {
  let payload = typeof d.payload === 'string' ? d.payload : safeJson(d.payload);
  let reason = d.reason;
  if (payload.length > DEAD_LETTER_PAYLOAD_MAX) {
    reason = `${reason} (payload clipped from ${payload.length} characters)`;
    payload = payload.slice(0, DEAD_LETTER_PAYLOAD_MAX);
  }
  return { at: d.at, at_date: d.at, project_id: d.projectId, source: d.source, code: d.code, reason: reason.slice(0, 4096), payload };
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)) ?? String(value);
  } catch {
    return String(value);
  }
}
