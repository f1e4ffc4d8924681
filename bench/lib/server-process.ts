import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { processCpuSeconds, processPeakRss } from './cpu.js';

/**
 * A benchmark server in a child process of its own: started from a compiled
 * script that prints one JSON line with its port (and exits when its stdin
 * closes, so a crashed benchmark leaves no server behind), stopped by SIGTERM to its
 * pid (SIGKILL if it does not exit in time), its CPU time readable from
 * /proc while it runs. Every later JSON line it prints is kept as its report.
 */

export interface ServerProcess {
  readonly pid: number;
  readonly port: number;
  /** User + system CPU seconds used so far (Linux /proc; NaN elsewhere). */
  cpuSeconds(): number;
  /** Peak resident memory so far, bytes (Linux /proc; NaN elsewhere). */
  peakRss(): number;
  /**
   * Writes `line` to the server's stdin and resolves with the next JSON line
   * it prints (for servers that take commands, like flowstat-e2e's `count`).
   */
  command(line: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** SIGTERM, wait for exit (SIGKILL and an error after `timeoutMs`); returns the JSON lines printed after the port line. */
  stop(timeoutMs?: number): Promise<Record<string, unknown>[]>;
}

const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 15_000;

export interface ServerProcessOptions {
  /** Added to the environment the server inherits. */
  readonly env?: Readonly<Record<string, string>>;
  /** Node flags before the script (BENCH_SERVER_NODE_ARGS adds more, e.g. --cpu-prof). */
  readonly nodeArgs?: readonly string[];
}

export function startServerProcess(script: string, args: readonly string[], options: ServerProcessOptions = {}): Promise<ServerProcess> {
  const nodeArgs = [...(options.nodeArgs ?? []), ...(process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean)];
  const child = spawn(process.execPath, [...nodeArgs, script, ...args], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, ...options.env },
  });
  const lines: Record<string, unknown>[] = [];
  const waiting: ((line: Record<string, unknown>) => void)[] = [];
  // 'close', not 'exit': the last lines it printed have been read by then.
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  return new Promise((resolve, reject) => {
    let started = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${script} did not report a port within ${START_TIMEOUT_MS} ms`));
    }, START_TIMEOUT_MS);
    child.once('error', (err) => { clearTimeout(timer); reject(err); });
    void exited.then(() => {
      if (!started) { clearTimeout(timer); reject(new Error(`${script} exited before listening (${child.exitCode ?? child.signalCode})`)); }
    });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let value: unknown;
      try { value = JSON.parse(line); } catch { process.stderr.write(`${line}\n`); return; }
      if (started) {
        const waiter = waiting.shift();
        if (waiter !== undefined) waiter(value as Record<string, unknown>);
        else lines.push(value as Record<string, unknown>);
        return;
      }
      const port = (value as { port?: unknown }).port;
      if (typeof port !== 'number') return;
      started = true;
      clearTimeout(timer);
      resolve(handle(child, port, lines, waiting, exited));
    });
  });
}

function handle(
  child: ChildProcess, port: number, lines: Record<string, unknown>[],
  waiting: ((line: Record<string, unknown>) => void)[], exited: Promise<void>,
): ServerProcess {
  const pid = child.pid!;
  return {
    pid,
    port,
    cpuSeconds: () => processCpuSeconds(pid),
    peakRss: () => processPeakRss(pid),
    command(line, timeoutMs = 120_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          const i = waiting.indexOf(done);
          if (i >= 0) waiting.splice(i, 1);
          reject(new Error(`server pid ${pid} did not answer "${line}" within ${timeoutMs} ms`));
        }, timeoutMs);
        const done = (value: Record<string, unknown>): void => { clearTimeout(timer); resolve(value); };
        waiting.push(done);
        void exited.then(() => { clearTimeout(timer); reject(new Error(`server pid ${pid} exited before answering "${line}"`)); });
        child.stdin!.write(`${line}\n`);
      });
    },
    async stop(timeoutMs = STOP_TIMEOUT_MS) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        let timer: NodeJS.Timeout | undefined;
        const timedOut = await Promise.race([
          exited.then(() => false),
          new Promise<boolean>((r) => { timer = setTimeout(() => r(true), timeoutMs); }),
        ]);
        clearTimeout(timer);
        if (timedOut) {
          child.kill('SIGKILL');
          await exited;
          throw new Error(`server pid ${pid} ignored SIGTERM for ${timeoutMs} ms; killed`);
        }
      }
      return lines;
    },
  };
}
