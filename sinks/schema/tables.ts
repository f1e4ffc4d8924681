import type { Column, TableDef, TableName } from './types.js';

/**
 * The tables of DESIGN.md, Storage. Adding a column: append it with the next
 * `since` version and add that version to MIGRATIONS in migrate.ts. Never
 * remove or retype a column — stored data and running writers depend on it.
 */

export const SCHEMA_VERSION = 4;

const c = (name: string, type: Column['type'], comment?: string, since = 1): Column => ({ name, type, since, ...(comment ? { comment } : {}) });

export const EVENTS: TableDef = {
  name: 'events',
  since: 1,
  engine: 'ReplacingMergeTree',
  version: 'received_at',
  // A retried event (same event_id) has the same sort key, so it is counted once after merges / FINAL.
  partitionBy: 'toYYYYMM(event_date)',
  orderBy: ['project_id', 'event_date', 'key', 'uid', 'event_id'],
  columns: [
    c('event_id', 'uuid', 'client id when sent (dedup), else UUIDv7'),
    c('project_id', 'uint32'),
    c('event_date', 'date', 'UTC day of ts'),
    c('key', 'lc_string', 'routing key direction.channel.service.name'),
    c('channel', 'lc_string'),
    c('service', 'lc_string'),
    c('name', 'lc_string'),
    c('uid', 'string'),
    c('user_id', 'string'),
    c('session_id', 'string'),
    c('seq', 'uint32', 'event number within the session'),
    c('ts', 'ts_ms', 'client time'),
    c('received_at', 'ts_ms', 'server receive time'),
    c('ip', 'string', 'anonymized per config'),
    c('ua', 'text', 'raw user agent'),
    c('ua_browser', 'lc_string'),
    c('ua_browser_version', 'lc_string'),
    c('ua_os', 'lc_string'),
    c('ua_os_version', 'lc_string'),
    c('ua_device_type', 'lc_string'),
    c('ua_device_vendor', 'lc_string'),
    c('ua_device_model', 'lc_string'),
    c('ua_engine', 'lc_string'),
    c('geo_country', 'lc_string'),
    c('geo_region', 'lc_string'),
    c('geo_city', 'lc_string'),
    c('geo_lat', 'float64'),
    c('geo_lon', 'float64'),
    c('geo_tz', 'lc_string'),
    c('page_url', 'text'),
    c('page_host', 'lc_string'),
    c('page_path', 'string'),
    c('page_referrer', 'text'),
    c('page_title', 'text'),
    c('utm_source', 'lc_string'),
    c('utm_medium', 'lc_string'),
    c('utm_campaign', 'lc_string'),
    c('utm_term', 'string'),
    c('utm_content', 'string'),
    c('click_id', 'string'),
    c('click_id_type', 'lc_string'),
    c('source_type', 'lc_string', 'direct / internal / search / social / email / paid / referral'),
    c('is_bot', 'uint8'),
    c('fpid', 'string', 'fingerprint: hash of ip and user agent'),
    c('props', 'props', 'everything else the client sent'),
    c('ua_browser_major', 'lc_string', undefined, 2),
    c('page_query', 'string', 'the page URL query string', 2),
    c('referrer_host', 'lc_string', undefined, 2),
    c('source_name', 'lc_string', 'search engine, social network or email provider; referrer host for referrals', 2),
    c('search_keyword', 'string', 'from the search engine referrer, where it still carries one', 2),
    c('page_seq', 'uint32', 'page views so far in the session, this one included', 3),
    c('arrival', 'uint64', 'the order the user\'s actor processed it: strictly increasing per user (0: stored before schema 4)', 4),
  ],
};

export const SESSIONS: TableDef = {
  name: 'sessions',
  since: 1,
  engine: 'ReplacingMergeTree',
  version: 'version',
  partitionBy: 'toYYYYMM(start_date)',
  orderBy: ['project_id', 'start_date', 'session_id'],
  columns: [
    c('session_id', 'string'),
    c('project_id', 'uint32'),
    c('start_date', 'date'),
    c('uid', 'string'),
    c('user_id', 'string'),
    c('started_at', 'ts_ms'),
    c('ended_at', 'ts_ms'),
    c('duration_ms', 'uint64'),
    c('events', 'uint32'),
    c('pages', 'uint32'),
    c('landing_page', 'text'),
    c('exit_page', 'text'),
    c('source_type', 'lc_string'),
    c('utm_source', 'lc_string'),
    c('utm_medium', 'lc_string'),
    c('utm_campaign', 'lc_string'),
    c('referrer', 'text'),
    c('device_type', 'lc_string'),
    c('browser', 'lc_string'),
    c('os', 'lc_string'),
    c('geo_country', 'lc_string'),
    c('geo_city', 'lc_string'),
    c('is_bot', 'uint8'),
    c('version', 'uint64', 'higher replaces lower'),
  ],
};

export const IDENTITIES: TableDef = {
  name: 'identities',
  since: 1,
  engine: 'ReplacingMergeTree',
  version: 'version',
  partitionBy: 'tuple()',
  orderBy: ['project_id', 'kind', 'uid', 'partner', 'external_id'],
  columns: [
    c('project_id', 'uint32'),
    c('kind', 'lc_string', 'identify / alias / partner'),
    c('uid', 'string'),
    c('partner', 'lc_string', 'cookie-sync partner, empty for identify/alias'),
    c('external_id', 'string', 'user id (identify), other id (alias) or partner uid'),
    c('traits', 'props'),
    c('ts', 'ts_ms'),
    c('version', 'uint64'),
  ],
};

export const DEAD_LETTERS: TableDef = {
  name: 'dead_letters',
  since: 1,
  engine: 'MergeTree',
  partitionBy: 'toYYYYMM(at_date)',
  orderBy: ['at_date', 'source', 'at'],
  columns: [
    c('at', 'ts_ms'),
    c('at_date', 'date'),
    c('project_id', 'uint32'),
    c('source', 'lc_string', 'where it was refused: gateway, actor, sink:<table>, …'),
    c('code', 'lc_string', 'FLOW_ERR_* or the store error code'),
    c('reason', 'text'),
    c('payload', 'text', 'the raw payload or row as JSON'),
  ],
};

export const TABLES: Readonly<Record<TableName, TableDef>> = {
  events: EVENTS,
  sessions: SESSIONS,
  identities: IDENTITIES,
  dead_letters: DEAD_LETTERS,
};
