import { eventIdFromClientId } from '../../engine/index.js';
import type { Row } from '../../sinks/index.js';
import type { Session } from './session.js';

/**
 * Rows for what a session derives: the `in.sys.session.start` and
 * `in.sys.session.end` events and the `sessions` table row.
 *
 * Derived event ids are stable (a UUID named by the session id), so writing
 * a session's end again — after the user came back within the idle window,
 * or on a retried batch — replaces the earlier row instead of adding one.
 * The `sessions` row is versioned by the session's event count, so the
 * latest write wins there too.
 */

const SESSION_START = { key: 'in.sys.session.start', channel: 'sys', service: 'session', name: 'start' } as const;
const SESSION_END = { key: 'in.sys.session.end', channel: 'sys', service: 'session', name: 'end' } as const;

export function derivedEventId(projectId: number, sessionId: string, what: string): string {
  return eventIdFromClientId(projectId, `${sessionId}:${what}`);
}

/** The start event: the first event's row (its enrichment, page, ip) under the derived key. */
export function sessionStartRow(first: Row, session: Session, projectId: number): Row {
  return {
    ...first,
    ...SESSION_START,
    event_id: derivedEventId(projectId, session.id, 'start'),
    session_id: session.id,
    seq: 0,
    ts: session.startedAt,
    event_date: session.startedAt,
    props: {},
  };
}

/** The end event, with the session's summary as its properties. */
export function sessionEndRow(session: Session, projectId: number, uid: string, userId: string, now: number): Row {
  return {
    ...SESSION_END,
    event_id: derivedEventId(projectId, session.id, 'end'),
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
