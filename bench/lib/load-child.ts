import { fork } from 'node:child_process';

/**
 * A load generator runs in a process of its own, so it does not share an
 * event loop with the server it measures. The parent forks the generator's
 * own module with a flag, sends it the options, relays its phase messages
 * and returns its result; the child runs `generate` and exits. Shared by
 * ws-load and http-load.
 */

export type LoadPhase = 'measure-start' | 'measure-end';

export interface LoadHooks {
  /** Called when the measured window opens and closes (e.g. to sample the server's CPU). */
  onPhase?(phase: LoadPhase): void;
}

type ChildMessage<R> =
  | { readonly type: 'phase'; readonly phase: LoadPhase }
  | { readonly type: 'result'; readonly result: R }
  | { readonly type: 'error'; readonly message: string };

/** Forks `module` with `flag`, runs it with `options`, and returns its report. Kills it after `limitMs`. */
export function runLoadChild<O, R>(name: string, module: string, flag: string, options: O, limitMs: number, hooks: LoadHooks = {}): Promise<R> {
  const child = fork(module, [flag], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] });
  return new Promise<R>((resolve, reject) => {
    let settled = false;
    const settle = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn();
    };
    const timer = setTimeout(() => {
      settle(() => reject(new Error(`${name} did not finish within ${limitMs} ms`)));
      child.kill('SIGKILL');
    }, limitMs);
    child.on('message', (m: ChildMessage<R>) => {
      if (m.type === 'phase') hooks.onPhase?.(m.phase);
      else if (m.type === 'result') settle(() => resolve(m.result));
      else settle(() => reject(new Error(`${name}: ${m.message}`)));
    });
    child.on('error', (err) => settle(() => reject(err)));
    child.on('exit', (code, signal) => {
      settle(() => reject(new Error(`${name} exited (${signal ?? code}) without a result`)));
    });
    child.send(options as object);
  });
}

/** In the forked child (argv[2] === flag): runs `generate` on the options it is sent, reports, exits. */
export function serveLoadChild<O, R>(flag: string, generate: (options: O, phase: (p: LoadPhase) => void) => Promise<R>): void {
  if (process.argv[2] !== flag || process.send === undefined) return;
  const send = (m: ChildMessage<R>, then: () => void = () => {}): void => { process.send!(m, then); };
  // Orphaned (the benchmark died): stop now rather than at the end of the run.
  process.once('disconnect', () => process.exit(1));
  process.once('message', (o: O) => {
    generate(o, (p) => send({ type: 'phase', phase: p })).then(
      (result) => send({ type: 'result', result }, () => process.exit(0)),
      (err: unknown) => send({ type: 'error', message: err instanceof Error ? err.message : String(err) }, () => process.exit(1)),
    );
  });
}
