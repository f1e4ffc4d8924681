import type { Logger } from '../logger/index.js';

/**
 * The shutdown order, implemented once (STYLE habit 10, Broadway's ordered
 * drain): stop accepting → drain mailboxes → passivate actors (save state) →
 * flush sinks → close. Components hook into a phase; phases run in this order,
 * hooks within a phase in registration order. A deadline bounds the whole.
 */

export const SHUTDOWN_PHASES = ['stop-accepting', 'drain', 'passivate', 'flush-sinks', 'close'] as const;
export type ShutdownPhase = (typeof SHUTDOWN_PHASES)[number];

export interface ShutdownStep {
  readonly phase: ShutdownPhase;
  readonly name: string;
  readonly ms: number;
  readonly error?: string;
}

export interface ShutdownResult {
  /** False if a hook failed or the deadline passed. */
  readonly ok: boolean;
  readonly reason: string;
  readonly steps: readonly ShutdownStep[];
}

export interface Shutdown {
  on(phase: ShutdownPhase, name: string, hook: () => void | Promise<void>): void;
  /** Runs every phase once; later calls return the same promise. */
  run(reason: string): Promise<ShutdownResult>;
  readonly started: boolean;
}

export function createShutdown(options: { logger: Logger; timeoutMs: number }): Shutdown {
  const hooks = new Map<ShutdownPhase, { name: string; hook: () => void | Promise<void> }[]>(
    SHUTDOWN_PHASES.map((p) => [p, []]),
  );
  let running: Promise<ShutdownResult> | null = null;

  async function runPhases(reason: string): Promise<ShutdownResult> {
    const { logger } = options;
    const steps: ShutdownStep[] = [];
    let ok = true;
    let timedOut = false;
    const deadline = new Promise<'timeout'>((resolve) => {
      const t = setTimeout(() => resolve('timeout'), options.timeoutMs);
      t.unref();
    });
    logger.info({ reason }, 'shutdown started');
    for (const phase of SHUTDOWN_PHASES) {
      for (const { name, hook } of hooks.get(phase)!) {
        if (timedOut) break;
        const start = performance.now();
        try {
          const outcome = await Promise.race([Promise.resolve().then(hook), deadline]);
          if (outcome === 'timeout') {
            timedOut = true;
            ok = false;
            steps.push({ phase, name, ms: performance.now() - start, error: `deadline of ${options.timeoutMs} ms passed` });
            logger.error({ phase, step: name, timeoutMs: options.timeoutMs }, 'shutdown deadline passed');
            continue;
          }
          steps.push({ phase, name, ms: performance.now() - start });
          logger.info({ phase, step: name, ms: Math.round(performance.now() - start) }, 'shutdown step done');
        } catch (err) {
          ok = false;
          const message = err instanceof Error ? err.message : String(err);
          steps.push({ phase, name, ms: performance.now() - start, error: message });
          logger.error({ phase, step: name, err }, 'shutdown step failed');
        }
      }
    }
    logger.info({ ok }, 'shutdown finished');
    return { ok, reason, steps };
  }

  return {
    on(phase, name, hook) {
      if (running !== null) throw new Error('cannot add shutdown hooks after shutdown started');
      hooks.get(phase)!.push({ name, hook });
    },
    run(reason) {
      running ??= runPhases(reason);
      return running;
    },
    get started() { return running !== null; },
  };
}
