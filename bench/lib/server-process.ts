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
  /** SIGTERM, wait for exit; returns the JSON lines printed after the port line. */
  stop(): Promise<Record<string, unknown>[]>;
}

const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 15_000;

export function startServerProcess(script: string, args: readonly string[]): Promise<ServerProcess> {
  const child = spawn(process.execPath, [...(process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean), script, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines: Record<string, unknown>[] = [];
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
      if (started) { lines.push(value as Record<string, unknown>); return; }
      const port = (value as { port?: unknown }).port;
      if (typeof port !== 'number') return;
      started = true;
      clearTimeout(timer);
      resolve(handle(child, port, lines, exited));
    });
  });
}

function handle(child: ChildProcess, port: number, lines: Record<string, unknown>[], exited: Promise<void>): ServerProcess {
  const pid = child.pid!;
  return {
    pid,
    port,
    cpuSeconds: () => processCpuSeconds(pid),
    peakRss: () => processPeakRss(pid),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        let timer: NodeJS.Timeout | undefined;
        const timedOut = await Promise.race([
          exited.then(() => false),
          new Promise<boolean>((r) => { timer = setTimeout(() => r(true), STOP_TIMEOUT_MS); }),
        ]);
        clearTimeout(timer);
        if (timedOut) {
          child.kill('SIGKILL');
          await exited;
          throw new Error(`server pid ${pid} ignored SIGTERM for ${STOP_TIMEOUT_MS} ms; killed`);
        }
      }
      return lines;
    },
  };
}
