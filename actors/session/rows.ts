import type { Row } from '../../sinks/index.js';
import type { Session } from './session.js';

/**
 * Rows for what a session derives: the `in.sys.session.start` and
 * `in.sys.session.end` events and the `sessions` table row.
 *
 * Derived event ids are stable (made from the session id), so writing
 * a session's end again — after the user came back within the idle window,
 * or on a retried batch — replaces the earlier row instead of adding one.
 * The `sessions` row is versioned by the session's event count, so the
 * latest write wins there too.
 */

/**
 * `arrival` stamps (the order a user's actor processed their rows; see
 * nextArrival in actors/ingest-behavior.ts) per server millisecond: room for
 * 1024 events of one user in one ms before the stamps run ahead of the clock.
 */
export const ARRIVAL_PER_MS = 1024;

const SESSION_START = { key: 'in.sys.session.start', channel: 'sys', service: 'session', name: 'start' } as const;
const SESSION_END = { key: 'in.sys.session.end', channel: 'sys', service: 'session', name: 'end' } as const;

/**
 * A session's start or end event id: its UUIDv7 id turned into a UUIDv8
 * (RFC 9562's version for derived ids) with the lowest variant bit marking
 * which — a few string slices, where a name-based UUIDv5 costs a SHA-1 per
 * derived event. Unique because session ids are (no other event id is
 * version 8), and stable across rewrites of the same session's end.
 */
export function derivedEventId(sessionId: string, what: 'start' | 'end'): string {
  const variant = parseInt(sessionId.charAt(19), 16);
  const marked = what === 'start' ? variant & 0xe : variant | 1;
  return `${sessionId.slice(0, 14)}8${sessionId.slice(15, 19)}${marked.toString(16)}${sessionId.slice(20)}`;
}

/** The start event: the first event's row (its enrichment, page, ip) under the derived key. */
export function sessionStartRow(first: Row, session: Session): Row {
  return {
    ...first,
    ...SESSION_START,
    event_id: derivedEventId(session.id, 'start'),
    session_id: session.id,
    seq: 0,
    ts: session.startedAt,
    event_date: session.startedAt,
    props: {},
  };
}

/** The end event, with the session's summary as its properties. */
export function sessionEndRow(session: Session, projectId: number, uid: string, userId: string, now: number): Row {
  // Written out, not `{ ...SESSION_END, … }`: a spread followed by two dozen
  // more properties measured 30 µs per row here (the copy's shape is
  // rebuilt property by property); a plain literal gets one fixed shape.
  return {
    key: SESSION_END.key,
    channel: SESSION_END.channel,
    service: SESSION_END.service,
    name: SESSION_END.name,
    event_id: derivedEventId(session.id, 'end'),
    project_id: projectId,
    uid,
    user_id: userId,
    session_id: session.id,
    seq: session.seq,
    ts: session.lastAt,
    event_date: session.lastAt,
    received_at: now,
    page_url: session.exit,
    ua_device_type: session.deviceType,
    ua_browser: session.browser,
    ua_os: session.os,
    geo_country: session.country,
    geo_city: session.city,
    source_type: session.sourceType,
    utm_source: session.utmSource,
    utm_medium: session.utmMedium,
    utm_campaign: session.utmCampaign,
    is_bot: session.isBot,
    // Stamped by the actor (nextArrival in actors/ingest-behavior.ts).
    arrival: 0,
    props: {
      duration_ms: session.lastAt - session.startedAt,
      events: session.seq,
      pages: session.pages,
      landing_page: session.landing,
      exit_page: session.exit,
    },
  };
}

export function sessionsRow(session: Session, projectId: number, uid: string, userId: string): Row {
  return {
    session_id: session.id,
    project_id: projectId,
    start_date: session.startedAt,
    uid,
    user_id: userId,
    started_at: session.startedAt,
    ended_at: session.lastAt,
    duration_ms: session.lastAt - session.startedAt,
    events: session.seq,
    pages: session.pages,
    landing_page: session.landing,
    exit_page: session.exit,
    source_type: session.sourceType,
    utm_source: session.utmSource,
    utm_medium: session.utmMedium,
    utm_campaign: session.utmCampaign,
    referrer: session.referrer,
    device_type: session.deviceType,
    browser: session.browser,
    os: session.os,
    geo_country: session.country,
    geo_city: session.city,
    is_bot: session.isBot,
    version: session.seq,
  };
}
