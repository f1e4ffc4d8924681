import { afterAll } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort } from '../../bench/lib/net.js';

/** Runs the built engine (`flowstat start`) as a child process, the way `npm start` does. */

export const REPO_ROOT = resolve(import.meta.dirname, '../..');
export const BIN = join(REPO_ROOT, 'dist/bin/flowstat.js');

// freePort moved to bench/lib so benchmarks can use it; re-exported for the tests.
export { freePort };

/** Temp directories made by this test file; removed when it ends, after its engines are stopped. */
const dirs: string[] = [];

export function tempDir(prefix = 'flowstat-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

export interface EngineProcess {
  readonly child: ChildProcess;
  readonly port: number;
  readonly url: string;
  /** Every stdout line parsed as JSON (pino), in order. */
  readonly logs: Record<string, unknown>[];
  stderr(): string;
  exited: Promise<number | null>;
  /** Resolves when a log line matches. */
  waitForLog(match: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
}

/** Engines started by this test file; any still running when the file ends are killed. */
const children = new Set<ChildProcess>();
// Registered when a test file first imports this module, so it runs after the file's own afterAll hooks (vitest runs them as a stack).
afterAll(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  children.clear();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
});

export interface EngineProcessOptions {
  /** What the engine's stdin is: nothing (the default), or an open file descriptor, as a shell's `< file` gives it. */
  readonly stdin?: 'ignore' | number;
}

export async function startEngineProcess(env: Record<string, string> = {}, options: EngineProcessOptions = {}): Promise<EngineProcess> {
  const port = Number(env.PORT ?? (await freePort()));
  const child = spawn(process.execPath, [BIN, 'start'], {
    cwd: REPO_ROOT,
    env: { ...process.env, FLOWSTAT_DATA_DIR: tempDir(), FLOWSTAT_LOG_LEVEL: 'info', ...env, PORT: String(port) },
    stdio: [options.stdin ?? 'ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  const logs: Record<string, unknown>[] = [];
  let err = '';
  const waiters: { match: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }[] = [];
  let buf = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      let parsed: Record<string, unknown>;
      try { parsed = JSON.parse(line) as Record<string, unknown>; } catch { parsed = { raw: line }; }
      logs.push(parsed);
      for (let i = waiters.length - 1; i >= 0; i--) {
        if (waiters[i]!.match(parsed)) { waiters[i]!.resolve(parsed); waiters.splice(i, 1); }
      }
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { err += chunk; });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));

  const proc: EngineProcess = {
    child, port, url: `http://127.0.0.1:${port}`, logs, exited,
    stderr: () => err,
    waitForLog(match, timeoutMs = 20_000) {
      const found = logs.find(match);
      if (found) return Promise.resolve(found);
      return new Promise((resolveLog, reject) => {
        const t = setTimeout(() => reject(new Error(`log line not seen in ${timeoutMs} ms; stderr: ${err}; logs: ${JSON.stringify(logs.slice(-5))}`)), timeoutMs);
        waiters.push({ match, resolve: (l) => { clearTimeout(t); resolveLog(l); } });
        void exited.then((code) => { clearTimeout(t); reject(new Error(`engine exited with ${code} before the log line; stderr: ${err}`)); });
      });
    },
  };
  return proc;
}
