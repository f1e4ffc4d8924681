import { execFileSync } from 'node:child_process';
import type { TestProject } from 'vitest/node';
import { startClickHouseServer, type ClickHouseServer } from './clickhouse-server.js';

/**
 * Once per test run: compile dist/ (tests that run the engine as a child
 * process need it current), and start one real ClickHouse server that the
 * server-backed suites share (each suite uses its own database). Stopped, by
 * PID, when the run ends.
 */
let server: ClickHouseServer | null = null;

export async function setup(project: TestProject): Promise<void> {
  // FLOWSTAT_TEST_SKIP_BUILD=1 skips the compile while iterating on in-process suites; CI never sets it.
  if (process.env.FLOWSTAT_TEST_SKIP_BUILD !== '1') {
    execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
  }
  server = await startClickHouseServer();
  project.provide('clickhouseUrl', server.url);
}

export async function teardown(): Promise<void> {
  if (server !== null) {
    await server.stop();
    server.remove();
  }
}

declare module 'vitest' {
  export interface ProvidedContext {
    clickhouseUrl: string;
  }
}
