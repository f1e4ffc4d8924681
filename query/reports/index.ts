import type { AnyReport } from '../types.js';
import { eventsReport } from './events.js';
import { funnelReport } from './funnel.js';
import { retentionReport } from './retention.js';
import { segmentsReport } from './segments.js';
import { sessionsReport } from './sessions.js';
import { timelineReport } from './timeline.js';
import { usersReport } from './users.js';

/** Every report by name: the API's /api/v1/query/{name} and the CLI's `flowstat query {name}`. */
export const REPORTS: Readonly<Record<string, AnyReport>> = Object.freeze({
  events: eventsReport as AnyReport,
  users: usersReport as AnyReport,
  funnel: funnelReport as AnyReport,
  retention: retentionReport as AnyReport,
  sessions: sessionsReport as AnyReport,
  timeline: timelineReport as AnyReport,
  segments: segmentsReport as AnyReport,
});
