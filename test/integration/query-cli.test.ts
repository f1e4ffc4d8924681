import { execFile } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { BIN, REPO_ROOT, startEngineProcess, tempDir } from '../support/engine-process.js';
import { waitFor } from '../support/storage.js';

/**
 * `flowstat query` as a user runs it: the built binary, against a running
 * engine over /api/v1 (--url with FLOWSTAT_ADMIN_TOKEN), then, with the
 * engine stopped, against the same embedded chDB store directly.
 */

interface Run { readonly code: number | null; readonly stdout: string; readonly stderr: string }

function flowstat(args: readonly string[], env: Record<string, string>): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd: REPO_ROOT, env: { ...process.env, ...env }, timeout: 60_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
      resolve({ code, stdout, stderr });
    });
  });
}

const TOKEN = 'cli-test-token-5f2c';

describe('flowstat query - the CLI over a running engine and over the store', () => {
  it('counts the events an engine stored, via --url and then directly from chDB, as JSON, a text table and CSV', async () => {
    const dataDir = tempDir();
    const env = { FLOWSTAT_DATA_DIR: dataDir, FLOWSTAT_ADMIN_TOKEN: TOKEN };
    const engine = await startEngineProcess(env);
    await engine.waitForLog((l) => l.msg === 'flowstat listening');
    await waitFor('readiness', async () => (await fetch(`${engine.url}/readyz`)).status === 200, 30_000);

    // Three users view, two of them add to the cart, one buys.
    const sent: [uid: string, name: string][] = [
      ['cli-a', 'view'], ['cli-a', 'cart'], ['cli-a', 'buy'],
      ['cli-b', 'view'], ['cli-b', 'cart'],
      ['cli-c', 'view'],
    ];
    for (const [uid, name] of sent) {
      const res = await fetch(`${engine.url}/shop/${name}?uid=${uid}&url=https://shop.example.com/${name}`);
      expect(res.status).toBe(200);
    }

    const total = async (): Promise<number> => {
      const run = await flowstat(['query', 'events', '--key', 'in.gen.shop.*', '--url', engine.url, '--json'], env);
      expect(run.code, run.stderr).toBe(0);
      const result = JSON.parse(run.stdout) as { report: string; tables: { rows: { events: number }[] }[] };
      expect(result.report).toBe('events');
      return result.tables[0]!.rows.reduce((s, r) => s + r.events, 0);
    };
    // Stored once the sink's batch closes (1 s by default).
    await waitFor('six stored events', async () => (await total()) === 6, 30_000);

    const funnel = await flowstat(['query', 'funnel', '--step', 'in.gen.shop.view', '--step', 'in.gen.shop.cart', '--step', 'in.gen.shop.buy', '--window', '1h', '--url', engine.url, '--json'], env);
    expect(funnel.code, funnel.stderr).toBe(0);
    const steps = (JSON.parse(funnel.stdout) as { tables: { rows: { users: number }[] }[] }).tables[0]!.rows.map((r) => r.users);
    expect(steps).toEqual([3, 2, 1]);

    // Without the token the engine refuses, and the CLI says so.
    const refused = await flowstat(['query', 'events', '--url', engine.url], { FLOWSTAT_ADMIN_TOKEN: 'wrong' });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^flowstat query: FLOW_ERR_\w+: /);
    expect(engine.stderr() + JSON.stringify(engine.logs)).not.toContain(TOKEN);

    engine.child.kill('SIGTERM');
    expect(await engine.exited).toBe(0);

    // The engine is gone; the CLI opens its chDB store itself.
    const text = await flowstat(['query', 'segments', '--did', 'in.gen.shop.cart:1'], { FLOWSTAT_DATA_DIR: dataDir });
    expect(text.code, text.stderr).toBe(0);
    const lines = text.stdout.split('\n');
    const header = lines.findIndex((l) => /^uid\b/.test(l));
    expect(header, text.stdout).toBeGreaterThanOrEqual(0);
    expect(lines[header + 1]).toMatch(/^-+( +-+)*$/);
    expect(lines.slice(header + 2).filter((l) => l.startsWith('cli-')).map((l) => l.split(/\s+/)[0]).sort()).toEqual(['cli-a', 'cli-b']);

    const csv = await flowstat(['query', 'segments', '--did', 'in.gen.shop.buy:1', '--csv'], { FLOWSTAT_DATA_DIR: dataDir });
    expect(csv.code, csv.stderr).toBe(0);
    const rows = csv.stdout.trimEnd().split('\r\n');
    expect(rows[0]!.split(',')[0]).toBe('uid');
    expect(rows.slice(1).map((r) => r.split(',')[0])).toEqual(['cli-a']);

    // A bad parameter exits 2 naming the field, before touching the store.
    const bad = await flowstat(['query', 'events', '--interval', 'fortnight'], { FLOWSTAT_DATA_DIR: dataDir });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('interval');
  }, 120_000);
});
