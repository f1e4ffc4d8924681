import type { Envelope } from '../../engine/index.js';

/**
 * The enricher contract (DESIGN.md, Roles): an enricher declares the key
 * patterns it serves (in config), the envelope fields it reads, its namespace
 * and a timeout, and returns a patch of `events` columns. Local enrichers
 * (user agent, geo, page/referrer/campaign, fingerprint) answer synchronously
 * from in-process data and caches, in microseconds; a remote enricher (an
 * HTTP service) answers with a promise and is bounded by its timeout. One
 * that throws or overruns is counted and skipped — the event goes on.
 */

/** Column name (of the `events` table) → value. */
export type EnrichPatch = Readonly<Record<string, string | number>>;

export interface Enricher {
  /** Instance name (from config). */
  readonly name: string;
  /** Where its patch lands: every column it writes starts with `${namespace}_` (or is listed in `columns`). */
  readonly namespace: string;
  /** Columns this enricher may write; anything else in its patch is dropped and counted. */
  readonly columns: readonly string[];
  /** Envelope fields it reads (documentation, and what a remote enricher is sent). */
  readonly reads: readonly (keyof Envelope)[];
  /** Milliseconds the event waits for it (async enrichers only; sync ones run to completion). */
  readonly timeoutMs: number;
  /**
   * True when its patch depends only on the `reads` fields (and data fixed
   * for the process's life): a session then reuses its last patch while
   * those fields are unchanged — a user's user agent and address rarely
   * change within a visit. Remote enrichers are not pure (a CRM answer may).
   */
  readonly pure?: boolean;
  enrich(envelope: Envelope): EnrichPatch | Promise<EnrichPatch>;
}

/** An empty patch, shared: nothing to add. */
export const NO_PATCH: EnrichPatch = Object.freeze({});
