import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { freePort, startEngineProcess } from '../support/engine-process.js';
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
});
