import { createKeyMatcher, newEventId, type Envelope } from '../../engine/index.js';
import type { Row } from '../../sinks/index.js';
import { nextMidnight } from './time-zone.js';

/**
 * Sessionization: which session an event belongs to, and when a session
 * ends. Pure functions over plain objects, so the session is part of the
 * actor's snapshot as it is.
 *
 * Time is the event's client time (`ts`, validated by the envelope to lie
 * between 2000 and a day ahead of the server clock). A new session starts
 * when the user was idle for `idleMs`, when the session reached `maxMs`, at
 * midnight in the project's time zone (if configured), and when an event
 * arrives from a different campaign (utm source / medium / campaign or a
 * click id). An event older than the session's latest (out of order: a
 * batch sent late, a skewed clock) never starts a session: it is counted in
 * the current one and moves neither its end nor its exit page.
 */

export interface SessionOptions {
  readonly idleMs: number;
  readonly maxMs: number;
  readonly splitAtMidnight: boolean;
  readonly timeZone: string;
  readonly projectTimeZones: Readonly<Record<string, string>>;
  readonly splitOnCampaign: boolean;
  readonly pageKeys: readonly string[];
}

export interface Session {
  readonly id: string;
  /** Events so far (this one included); the `seq` of the latest. */
  seq: number;
  pages: number;
  readonly startedAt: number;
  lastAt: number;
  /** Server time of the latest event: how long the user has really been away. */
  lastReceivedAt: number;
  /** Next midnight in the project's zone (splitAtMidnight), else 0. */
  readonly splitAt: number;
  readonly campaign: string;
  readonly landing: string;
  exit: string;
  readonly referrer: string;
  readonly sourceType: string;
  readonly utmSource: string;
  readonly utmMedium: string;
  readonly utmCampaign: string;
  readonly deviceType: string;
  readonly browser: string;
  readonly os: string;
  readonly country: string;
  readonly city: string;
  readonly isBot: number;
  /** The `seq` at which this session's end was last written (0: never). */
  endedAtSeq: number;
}

export type SplitReason = 'first' | 'idle' | 'max_length' | 'midnight' | 'campaign';

export interface Step {
  readonly session: Session;
  /** The session that ended because this event started a new one. */
  readonly ended: Session | null;
  /** Why a session started with this event; null when it continued one. */
  readonly started: SplitReason | null;
  /** This event is a page view. */
  readonly page: boolean;
}

export interface Sessionizer {
  readonly options: SessionOptions;
  /** Places the event (its enriched row) in a session; mutates `current` when it continues. */
  advance(current: Session | null, envelope: Envelope, row: Row): Step;
  /** True when the user has been away long enough that the session is over. */
  expired(session: Session, now: number): boolean;
}

const str = (v: unknown): string => (typeof v === 'string' ? v : '');

/** The campaign an event came from: '' when it carries none. */
export function campaignOf(row: Row): string {
  const clickId = str(row.click_id);
  if (clickId !== '') return `${str(row.click_id_type)}:${clickId}`;
  const source = str(row.utm_source);
  const medium = str(row.utm_medium);
  const campaign = str(row.utm_campaign);
  if (source === '' && medium === '' && campaign === '') return '';
  return `${source}/${medium}/${campaign}`;
}

export function createSessionizer(options: SessionOptions): Sessionizer {
  const pages = createKeyMatcher(options.pageKeys.map((pattern) => ({ pattern, value: true })));
  const zoneOf = (projectId: number): string => options.projectTimeZones[String(projectId)] ?? options.timeZone;

  function start(envelope: Envelope, row: Row, page: boolean, campaign: string): Session {
    const t = envelope.ts;
    return {
      id: newEventId(t),
      seq: 1,
      pages: page ? 1 : 0,
      startedAt: t,
      lastAt: t,
      lastReceivedAt: envelope.receivedAt,
      splitAt: options.splitAtMidnight ? nextMidnight(t, zoneOf(envelope.projectId)) : 0,
      campaign,
      landing: envelope.pageUrl,
      exit: envelope.pageUrl,
      referrer: envelope.pageReferrer,
      sourceType: str(row.source_type),
      utmSource: str(row.utm_source),
      utmMedium: str(row.utm_medium),
      utmCampaign: str(row.utm_campaign),
      deviceType: str(row.ua_device_type),
      browser: str(row.ua_browser),
      os: str(row.ua_os),
      country: str(row.geo_country),
      city: str(row.geo_city),
      isBot: row.is_bot === 1 ? 1 : 0,
      endedAtSeq: 0,
    };
  }

  function splitReason(s: Session, t: number, campaign: string): SplitReason | null {
    if (t < s.lastAt) return null;
    if (t - s.lastAt >= options.idleMs) return 'idle';
    if (t - s.startedAt >= options.maxMs) return 'max_length';
    if (s.splitAt !== 0 && t >= s.splitAt) return 'midnight';
    if (options.splitOnCampaign && campaign !== '' && campaign !== s.campaign) return 'campaign';
    return null;
  }

  return {
    options,
    advance(current, envelope, row) {
      const page = pages.match(envelope.key).length > 0;
      const campaign = campaignOf(row);
      if (current === null) return { session: start(envelope, row, page, campaign), ended: null, started: 'first', page };
      const reason = splitReason(current, envelope.ts, campaign);
      if (reason !== null) return { session: start(envelope, row, page, campaign), ended: current, started: reason, page };
      current.seq++;
      if (page) current.pages++;
      if (envelope.ts >= current.lastAt) {
        current.lastAt = envelope.ts;
        if (envelope.pageUrl !== '') current.exit = envelope.pageUrl;
      }
      if (envelope.receivedAt > current.lastReceivedAt) current.lastReceivedAt = envelope.receivedAt;
      return { session: current, ended: null, started: null, page };
    },
    expired(session, now) {
      return now - session.lastReceivedAt >= options.idleMs;
    },
  };
}
