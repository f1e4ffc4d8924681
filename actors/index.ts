/** actors — the session actor and (later) the machines it runs. */
export { createIngestBehavior } from './ingest-behavior.js';
export type { IngestState, IngestOptions, IngestBehavior, IngestStats } from './ingest-behavior.js';
