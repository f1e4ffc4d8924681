import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createLmdbStateStore } from '../../engine/index.js';
import { startEngineProcess, tempDir, type EngineProcess } from '../support/engine-process.js';

/**
 * The real engine process (dist/bin/flowstat.js): a user's session state is
 * on disk when SIGTERM's shutdown exits 0, and the next process on the same
 * FLOWSTAT_DATA_DIR restores it instead of starting the user afresh.
 *
 * What the process shows of a user's state is the shutdown's
 * "actor state saved" line (created / restored counts) and the snapshot file
 * itself, read here between runs. The snapshot's content belongs to the
 * session actor (actors/), so this test checks that it is there and that it
 * changes with more events; that a restored count continues exactly is
 * checked in actor-state.test.ts.
 */

const UID = 'state-process-user';
const PROJECT = 1; // defaultProjectId: events without a project go here

async function sendEvents(engine: EngineProcess, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const res = await fetch(`${engine.url}/track/page?uid=${UID}`);
    expect(res.status).toBe(200);
    expect((await res.json() as { uid: string }).uid).toBe(UID);
  }
}

async function runOnce(dataDir: string, events: number): Promise<Record<string, unknown>> {
  const engine = await startEngineProcess({ FLOWSTAT_DATA_DIR: dataDir });
  await engine.waitForLog((l) => l.msg === 'flowstat listening');
  await sendEvents(engine, events);
  engine.child.kill('SIGTERM');
  expect(await engine.exited).toBe(0);
  const saved = engine.logs.find((l) => l.msg === 'actor state saved');
  expect(saved).toBeDefined();
  return saved!;
}

/** The user's snapshot as the stopped process left it on disk. */
async function snapshotOnDisk(dataDir: string): Promise<unknown> {
  const store = createLmdbStateStore({ path: join(dataDir, 'state') });
  try {
    return store.get(PROJECT, UID);
  } finally {
    await store.close();
  }
}

describe('process - state survives a restart', () => {
  it('SIGTERM leaves the user\'s snapshot on disk; the next process restores it', async () => {
    const dataDir = tempDir();

    const first = await runOnce(dataDir, 3);
    expect(first).toMatchObject({ stateStore: 'disk', created: 1, restored: 0, passivated: 1 });
    const afterFirst = await snapshotOnDisk(dataDir);
    expect(afterFirst).toBeDefined();

    const second = await runOnce(dataDir, 2);
    // Not created afresh: the second process found the user on disk.
    expect(second).toMatchObject({ stateStore: 'disk', created: 0, restored: 1, passivated: 1 });
    const afterSecond = await snapshotOnDisk(dataDir);
    expect(afterSecond).toBeDefined();
    expect(afterSecond).not.toEqual(afterFirst);
  });

  it('with FLOWSTAT_STATE_STORE=memory the next process starts the user afresh', async () => {
    const dataDir = tempDir();
    const first = await startEngineProcess({ FLOWSTAT_DATA_DIR: dataDir, FLOWSTAT_STATE_STORE: 'memory' });
    await first.waitForLog((l) => l.msg === 'flowstat listening');
    await sendEvents(first, 1);
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);

    const second = await startEngineProcess({ FLOWSTAT_DATA_DIR: dataDir, FLOWSTAT_STATE_STORE: 'memory' });
    await second.waitForLog((l) => l.msg === 'flowstat listening');
    await sendEvents(second, 1);
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
    expect(second.logs.find((l) => l.msg === 'actor state saved')).toMatchObject({ stateStore: 'memory', created: 1, restored: 0 });
  });
});
