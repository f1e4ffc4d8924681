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

/**
 * What a derived event carries of the event it comes from: who (project,
 * uid, user id), which session and where in it (session id, seq, page seq,
 * arrival), when, the page, and the session's dimensions — device type,
 * browser, OS, country, city, source type, UTM source / medium / campaign,
 * the bot flag.
 * The same columns as a session's end event (sessionEndRow), so every
 * `in.sys.*` row has one layout whatever derived it.
 *
 * Not repeated: the raw request (IP, user agent string, title, referrer,
 * query string) and the finer enrichment (versions, vendor and model,
 * region, coordinates, UTM term / content, click ids, fingerprint). They are
 * on the source event's own row, which `session_id` + `seq` find, and on the
 * session's `sessions` row. Copying the whole ~55-column row into each derived
 * event cost the actor stage about 0.5 µs per event and doubled the bytes
 * the store ingests per derived row (docs/performance.md, round 9).
 */
export function derivedRow(from: Row, key: string, service: string, name: string, eventId: string, props: Record<string, unknown>): Row {
  return {
    key,
    channel: 'sys',
    service,
    name,
    event_id: eventId,
    project_id: from.project_id,
    uid: from.uid,
    user_id: from.user_id,
    session_id: from.session_id,
    seq: from.seq,
    page_seq: from.page_seq,
    ts: from.ts,
    event_date: from.event_date,
    received_at: from.received_at,
    page_url: from.page_url,
    ua_device_type: from.ua_device_type,
    ua_browser: from.ua_browser,
    ua_os: from.ua_os,
    geo_country: from.geo_country,
    geo_city: from.geo_city,
    source_type: from.source_type,
    utm_source: from.utm_source,
    utm_medium: from.utm_medium,
    utm_campaign: from.utm_campaign,
    is_bot: from.is_bot,
    arrival: from.arrival,
    props,
  };
}

/** The start event: the first event's context (derivedRow) under the derived key, at seq 0. */
export function sessionStartRow(first: Row, session: Session): Row {
  const row = derivedRow(first, SESSION_START.key, SESSION_START.service, SESSION_START.name, derivedEventId(session.id, 'start'), {});
  row.session_id = session.id;
  row.seq = 0;
  row.ts = session.startedAt;
  row.event_date = session.startedAt;
  return row;
}

/** The end event, with the session's summary as its properties. */
export function sessionEndRow(session: Session, projectId: number, uid: string, userId: string, now: number): Row {
  // Written out, not `{ ...SESSION_END, … }`: a spread followed by two dozen
  // more properties measured 30 µs per row here (the copy's shape is
  // rebuilt property by property); a plain literal gets one fixed shape,
  // the same as derivedRow's (keep the two in one column order).
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
    page_seq: session.pages,
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
