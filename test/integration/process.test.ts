import { closeSync, openSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type * as Chdb from 'chdb';
import { describe, expect, it } from 'vitest';
import { BIN, freePort, startEngineProcess, tempDir } from '../support/engine-process.js';
import { waitFor } from '../support/storage.js';

describe('process - runtime contract', () => {
  it('serves health on PORT and exits 0 on SIGTERM after the ordered shutdown', async () => {
    const engine = await startEngineProcess();
    await engine.waitForLog((l) => l.msg === 'flowstat listening');
    const health = await fetch(`${engine.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    // Ready once the embedded store has opened and migrated.
    await waitFor('readiness', async () => (await fetch(`${engine.url}/readyz`)).status === 200, 30_000);

    engine.child.kill('SIGTERM');
    expect(await engine.exited).toBe(0);
    const steps = engine.logs.filter((l) => l.msg === 'shutdown step done').map((l) => `${String(l.phase)}: ${String(l.step)}`);
    expect(steps).toEqual([
      'stop-accepting: gateway',
      'drain: actor mailboxes',
      'passivate: actor state',
      'flush-sinks: webhooks',
      'flush-sinks: storage',
      'close: state store',
      'close: gateway sockets',
      'close: storage',
    ]);
    expect(engine.logs.at(-1)).toMatchObject({ msg: 'shutdown finished', ok: true });
    // The port is free again.
    await expect(fetch(`${engine.url}/healthz`)).rejects.toThrow();
  });

  it('still shuts down when nothing reads its log any more (broken stdout pipe)', async () => {
    const engine = await startEngineProcess({ FLOWSTAT_DURABILITY: 'memory' });
    await engine.waitForLog((l) => l.msg === 'flowstat listening');
    engine.child.stdout!.destroy(); // e.g. the log collector died: writes now fail with EPIPE
    await new Promise((r) => setTimeout(r, 200));
    engine.child.kill('SIGTERM');
    const code = await Promise.race([engine.exited, new Promise((r) => setTimeout(() => r('still running'), 15_000))]);
    expect(code).toBe(0);
  });

  it('exits 0 on SIGINT too', async () => {
    const engine = await startEngineProcess();
    await engine.waitForLog((l) => l.msg === 'flowstat listening');
    engine.child.kill('SIGINT');
    expect(await engine.exited).toBe(0);
    expect(engine.logs.some((l) => l.msg === 'shutdown started' && l.reason === 'SIGINT')).toBe(true);
  });

  it('refuses to start with a bad config, listing every problem, before opening the port', async () => {
    const port = await freePort();
    const engine = await startEngineProcess({
      PORT: String(port),
      CLICKHOUSE_URL: 'not a url',
      FLOWSTAT_ADMIN_TOKEN: 'short',
      FLOWSTAT_LOG_LEVEL: 'loud',
    });
    expect(await engine.exited).toBe(2);
    const stderr = engine.stderr();
    expect(stderr).toContain('refusing to start');
    expect(stderr).toContain('clickhouse.url (from CLICKHOUSE_URL)');
    expect(stderr).toContain('adminToken (from FLOWSTAT_ADMIN_TOKEN)');
    expect(stderr).toContain('log.level (from FLOWSTAT_LOG_LEVEL)');
    // Nothing ever listened: the port can still be bound.
    await new Promise<void>((resolve, reject) => {
      const srv = createServer().once('error', reject).listen(port, '127.0.0.1', () => srv.close(() => resolve()));
    });
  });

  it('answers unknown paths with a JSON error from the registry', async () => {
    const engine = await startEngineProcess();
    await engine.waitForLog((l) => l.msg === 'flowstat listening');
    const res = await fetch(`${engine.url}/nope`);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: { code: 'FLOW_ERR_NOT_FOUND', message: 'no route for GET /nope' } });
    engine.child.kill('SIGTERM');
    expect(await engine.exited).toBe(0);
  });

  it('stores into chDB when stdin is a file (`flowstat start < file`), as with no stdin', async () => {
    // chDB once read the migration's INSERT data from a non-terminal stdin and
    // never became ready; a supervisor may well hand the engine a file or a device.
    const dataDir = tempDir();
    const stdin = openSync(BIN, 'r');
    let engine: Awaited<ReturnType<typeof startEngineProcess>>;
    try {
      engine = await startEngineProcess({ FLOWSTAT_DATA_DIR: dataDir }, { stdin });
    } finally {
      closeSync(stdin);
    }
    await engine.waitForLog((l) => l.msg === 'flowstat listening');
    await waitFor('readiness', async () => (await fetch(`${engine.url}/readyz`)).status === 200, 30_000);
    const res = await fetch(`${engine.url}/track/page?uid=stdin-file-user&url=https://shop.example.com/`);
    expect(res.status).toBe(200);
    engine.child.kill('SIGTERM');
    expect(await engine.exited).toBe(0);
    expect(engine.logs.some((l) => l.msg === 'cannot connect to the store yet; events are kept on disk until it answers')).toBe(false);

    const { Session } = createRequire(import.meta.url)('chdb') as typeof Chdb;
    const session = new Session(join(dataDir, 'chdb'));
    try {
      const text = (await session.queryAsync("SELECT count() FROM flowstat.events WHERE uid = 'stdin-file-user' AND key = 'in.gen.track.page'", { format: 'CSV' })).text();
      expect(Number(text.trim())).toBe(1);
    } finally {
      session.close();
    }
  }, 60_000);
});
