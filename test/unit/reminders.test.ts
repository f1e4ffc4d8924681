import { afterEach, describe, expect, it } from 'vitest';
import { createReminders, type Reminders } from '../../engine/system/index.js';
import { tempDir } from '../support/engine-process.js';

/**
 * Reminders: one per user, delivered in due order at or after their time,
 * replaced and cleared; on disk they survive a reopen (a restart), including
 * one that was taken but whose actor never set its next; later ones wait on
 * disk until their window comes.
 */

const T0 = 1_700_000_000_000;
const MIN = 60_000;
const open: Reminders[] = [];
afterEach(async () => { for (const r of open.splice(0)) await r.close(); });

function make(path: string | undefined, clock: { now: number }, horizonMs?: number): Reminders {
  const r = createReminders({ path, now: () => clock.now, horizonMs });
  open.push(r);
  return r;
}

/** lmdb writes land asynchronously; a reopen after this sees them. */
async function settle(r: Reminders): Promise<void> {
  await r.close();
  open.splice(open.indexOf(r), 1);
}

for (const kind of ['memory', 'disk'] as const) {
  describe(`reminders - ${kind}`, () => {
    const path = (): string | undefined => (kind === 'disk' ? tempDir('flowstat-reminders-') : undefined);

    it('takeDue - due ones only, earliest first, at most `limit`', () => {
      const clock = { now: T0 };
      const r = make(path(), clock);
      r.set(1, 'c', T0 + 3_000);
      r.set(1, 'a', T0 + 1_000);
      r.set(2, 'b', T0 + 2_000);
      r.set(1, 'later', T0 + 5 * MIN);
      expect(r.takeDue(T0 + 500, 10)).toEqual([]);
      expect(r.takeDue(T0 + 2_500, 1)).toEqual([{ projectId: 1, uid: 'a', at: T0 + 1_000 }]);
      expect(r.takeDue(T0 + 2_500, 10)).toEqual([{ projectId: 2, uid: 'b', at: T0 + 2_000 }]);
      expect(r.takeDue(T0 + 60_000, 10)).toEqual([{ projectId: 1, uid: 'c', at: T0 + 3_000 }]);
      expect(r.pending()).toBe(1);
    });

    it('set - replaces the user\'s reminder (earlier or later); 0 clears it', () => {
      const clock = { now: T0 };
      const r = make(path(), clock);
      r.set(1, 'u', T0 + 1_000);
      r.set(1, 'u', T0 + 4_000);
      r.set(1, 'v', T0 + 1_000);
      r.set(1, 'v', 0);
      expect(r.takeDue(T0 + 2_000, 10)).toEqual([]);
      expect(r.takeDue(T0 + 4_000, 10)).toEqual([{ projectId: 1, uid: 'u', at: T0 + 4_000 }]);
      expect(r.pending()).toBe(0);
    });
  });
}

describe('reminders - disk', () => {
  it('restart - reminders set before a reopen are delivered after it; a taken one comes again until the next is set', async () => {
    const dir = tempDir('flowstat-reminders-');
    const clock = { now: T0 };
    const first = make(dir, clock);
    first.set(1, 'soon', T0 + 1_000);
    first.set(1, 'taken', T0 + 500);
    first.set(1, 'far', T0 + 3 * 86_400_000);
    expect(first.takeDue(T0 + 600, 10)).toEqual([{ projectId: 1, uid: 'taken', at: T0 + 500 }]);
    await settle(first);

    clock.now = T0 + 2_000;
    const second = make(dir, clock);
    expect(second.takeDue(clock.now, 10)).toEqual([
      { projectId: 1, uid: 'taken', at: T0 + 500 },
      { projectId: 1, uid: 'soon', at: T0 + 1_000 },
    ]);
    // The woken actors set their next reminders: the old disk entries go.
    second.set(1, 'taken', 0);
    second.set(1, 'soon', 0);
    await settle(second);

    clock.now = T0 + 3 * 86_400_000;
    const third = make(dir, clock);
    expect(third.takeDue(clock.now, 10)).toEqual([{ projectId: 1, uid: 'far', at: T0 + 3 * 86_400_000 }]);
  });

  it('horizon - reminders beyond it stay on disk, not in memory, until their window comes', async () => {
    const clock = { now: T0 };
    const r = make(tempDir('flowstat-reminders-'), clock, 10 * MIN);
    expect(r.takeDue(T0, 10)).toEqual([]); // loads the first window
    for (let i = 0; i < 100; i++) r.set(1, `far-${i}`, T0 + 60 * MIN + i);
    r.set(1, 'near', T0 + MIN);
    expect(r.pending()).toBe(1);
    // Let the disk writes land, then move on to the far ones' window.
    await new Promise((resolve) => setTimeout(resolve, 50));
    clock.now = T0 + 60 * MIN + 200;
    const due = r.takeDue(clock.now, 1_000);
    expect(due.map((x) => x.uid)).toEqual(['near', ...Array.from({ length: 100 }, (_, i) => `far-${i}`)]);
  });
});

describe('reminders - disk, writes in flight', () => {
  it('two sets before the first write lands leave one entry on disk: the last', async () => {
    const dir = tempDir('flowstat-reminders-');
    const clock = { now: T0 };
    const first = make(dir, clock);
    first.set(1, 'u', T0 + 1_000);
    first.set(1, 'u', T0 + 5_000);
    await settle(first);
    clock.now = T0 + 2_000;
    const second = make(dir, clock);
    expect(second.takeDue(clock.now, 10)).toEqual([]);
    expect(second.takeDue(T0 + 6_000, 10)).toEqual([{ projectId: 1, uid: 'u', at: T0 + 5_000 }]);
  });
});
