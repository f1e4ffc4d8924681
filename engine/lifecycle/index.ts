/** engine/lifecycle — the ordered shutdown every component hooks into. */
export { createShutdown, SHUTDOWN_PHASES } from './shutdown.js';
export type { Shutdown, ShutdownPhase, ShutdownResult, ShutdownStep } from './shutdown.js';
