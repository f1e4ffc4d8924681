import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './net.js';

/**
 * A real ClickHouse server for the tests and the benchmarks: Debian's
 * clickhouse-server (18.16), installed with apt-get if it is missing, started
 * as a child process on free ports with its own config and data directory,
 * stopped (by PID) afterwards. (test/support/clickhouse-server.ts re-exports
 * this: bench/ is built without test/.)
 */

export const CLICKHOUSE_BINARY = '/usr/sbin/clickhouse-server';

export interface ClickHouseServer {
  readonly url: string;
  readonly httpPort: number;
  readonly pid: number;
  /** Stops the server (SIGTERM, then SIGKILL) — used by outage tests too. */
  stop(): Promise<void>;
  /** Starts it again on the same ports and data directory. */
  start(): Promise<void>;
  /** Removes the data directory (after stop). */
  remove(): void;
}

export function ensureClickHouseInstalled(): void {
  if (existsSync(CLICKHOUSE_BINARY)) return;
  process.stderr.write('clickhouse-server not found: installing Debian package clickhouse-server…\n');
  execFileSync('apt-get', ['install', '-y', '-q', 'clickhouse-server'], {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
}

function config(dir: string, httpPort: number, tcpPort: number): string {
  return `<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>${dir}/log/server.log</log><errorlog>${dir}/log/error.log</errorlog><size>10M</size><count>1</count></logger>
  <http_port>${httpPort}</http_port>
  <tcp_port>${tcpPort}</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <path>${dir}/data/</path>
  <tmp_path>${dir}/tmp/</tmp_path>
  <user_files_path>${dir}/user_files/</user_files_path>
  <format_schema_path>${dir}/format_schemas/</format_schema_path>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>268435456</mark_cache_size>
  <max_concurrent_queries>100</max_concurrent_queries>
</yandex>
`;
}

const USERS = `<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>4000000000</max_memory_usage></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks><profile>default</profile><quota>default</quota></default></users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
`;

async function waitForPing(url: string, child: ChildProcess, logDir: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      const err = existsSync(`${logDir}/error.log`) ? readFileSync(`${logDir}/error.log`, 'utf8').slice(-2000) : '';
      throw new Error(`clickhouse-server exited with ${child.exitCode}: ${err}`);
    }
    try {
      const res = await fetch(`${url}/ping`);
      if (res.ok && (await res.text()).startsWith('Ok')) return;
    } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`clickhouse-server did not answer /ping within ${timeoutMs} ms`);
}

export async function startClickHouseServer(): Promise<ClickHouseServer> {
  ensureClickHouseInstalled();
  const dir = mkdtempSync(join(tmpdir(), 'flowstat-clickhouse-'));
  for (const sub of ['data', 'tmp', 'log', 'user_files', 'format_schemas']) mkdirSync(join(dir, sub), { recursive: true });
  const httpPort = await freePort();
  const tcpPort = await freePort();
  writeFileSync(join(dir, 'config.xml'), config(dir, httpPort, tcpPort));
  writeFileSync(join(dir, 'users.xml'), USERS);
  const url = `http://127.0.0.1:${httpPort}`;
  let child: ChildProcess | null = null;

  async function start(): Promise<void> {
    child = spawn(CLICKHOUSE_BINARY, [`--config-file=${join(dir, 'config.xml')}`], { cwd: dir, stdio: 'ignore' });
    await waitForPing(url, child, join(dir, 'log'));
  }

  async function stop(): Promise<void> {
    const c = child;
    if (c === null || c.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
    c.kill('SIGTERM');
    const timer = setTimeout(() => c.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
    child = null;
  }

  await start();
  return {
    url,
    httpPort,
    get pid() { return child?.pid ?? -1; },
    start,
    stop,
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
