import { WebSocket, type RawData } from 'ws';
import { Packr } from 'msgpackr';
import { startEngine, type Running, type StartOptions } from '../../engine/main.js';
import { createSilentLogger, parseConfig } from '../../engine/index.js';
import { inject } from 'vitest';
import { tempDir } from './engine-process.js';

let databases = 0;
/** A database of its own on the shared test ClickHouse server. */
export function uniqueDatabase(prefix = 'gw'): string {
  return `${prefix}_${process.pid}_${Date.now().toString(36)}_${databases++}`;
}

/** Both server implementations: every gateway suite runs against each. */
export const SERVERS = ['uws', 'ws'] as const;
export type ServerKind = (typeof SERVERS)[number];

export interface TestGateway extends Running {
  readonly url: string;
  readonly wsUrl: string;
}

/** Starts the engine + gateway in this process on a free port, with config overrides. */
export async function startGateway(server: ServerKind, overrides: Record<string, unknown> = {}, options: StartOptions = {}): Promise<TestGateway> {
  const raw = {
    server: { host: '127.0.0.1', port: 0 },
    dataDir: tempDir(),
    log: { level: 'silent' },
    // The real store: the shared ClickHouse server (chDB allows one data directory per process, and these suites start many engines).
    clickhouse: { url: inject('clickhouseUrl'), database: uniqueDatabase() },
    ...overrides,
    // `clickhouse: { database }` without a url selects the embedded chDB store.
    gateway: { server, ...(overrides.gateway as Record<string, unknown> | undefined) },
  };
  const running = await startEngine(parseConfig(raw), { logger: createSilentLogger(), ...options });
  return { ...running, url: `http://127.0.0.1:${running.port}`, wsUrl: `ws://127.0.0.1:${running.port}/ws` };
}

export const msgpack = new Packr({ useRecords: false, mapsAsObjects: true });

/** A `ws` client that queues every message it receives for `next()`. */
export class TestClient {
  readonly messages: unknown[] = [];
  private waiters: ((m: unknown) => void)[] = [];
  closed: Promise<{ code: number; reason: string }>;
  open: Promise<void>;

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data: RawData, isBinary: boolean) => {
      const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as Buffer);
      const msg = isBinary ? msgpack.unpack(buf) : JSON.parse(buf.toString('utf8'));
      const w = this.waiters.shift();
      if (w) w(msg); else this.messages.push(msg);
    });
    this.open = new Promise((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
      ws.once('error', reject);
    });
    this.closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  static async connect(url: string, headers: Record<string, string> = {}): Promise<TestClient> {
    const client = new TestClient(new WebSocket(url, { headers }));
    await client.open;
    return client;
  }

  next(timeoutMs = 5_000): Promise<unknown> {
    const queued = this.messages.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no message within timeout')), timeoutMs);
      this.waiters.push((m) => { clearTimeout(t); resolve(m); });
    });
  }

  sendJson(obj: unknown): void { this.ws.send(JSON.stringify(obj)); }
  sendPack(obj: unknown): void { this.ws.send(msgpack.pack(obj)); }
  async call(obj: unknown): Promise<unknown> { this.sendJson(obj); return this.next(); }
  close(): void { this.ws.close(); }
}

export function track(id: number | string | undefined, params: Record<string, unknown> = {}): Record<string, unknown> {
  const req: Record<string, unknown> = { jsonrpc: '2.0', method: 'track', params: { service: 'track', name: 'page', ...params } };
  if (id !== undefined) req.id = id;
  return req;
}
