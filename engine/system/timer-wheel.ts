/**
 * A hashed timer wheel over intrusive doubly-linked lists (Varghese & Lauck).
 * Scheduling, rescheduling and removal are O(1) pointer updates; advancing one
 * tick touches only the entries in that tick's slot. Entries due more than one
 * revolution ahead stay in their slot and are skipped until their tick comes.
 *
 * Entries carry their own links (no wrapper object per entry), which is what
 * keeps an idle actor small.
 */

export interface WheelEntry {
  wheelPrev: WheelEntry | null;
  wheelNext: WheelEntry | null;
  /** Tick the entry is due at; -1 when not scheduled. */
  wheelDue: number;
}

export interface TimerWheel<E extends WheelEntry> {
  /** The last tick that was advanced to. */
  readonly tick: number;
  readonly size: number;
  schedule(entry: E, dueTick: number): void;
  remove(entry: E): void;
  /** Advances to `toTick`, calling `onDue` for each entry whose tick has come (already unlinked). */
  advance(toTick: number, onDue: (entry: E, tick: number) => void): void;
  /**
   * Visits scheduled entries in due order starting at the nearest tick, until
   * `visit` returns true (stop). Used to find the least recently active actor.
   */
  scanFromNearest(visit: (entry: E) => boolean): void;
}

export function createTimerWheel<E extends WheelEntry>(span: number, startTick = 0): TimerWheel<E> {
  let slotCount = 1;
  while (slotCount < span + 1) slotCount <<= 1;
  const mask = slotCount - 1;
  const heads: (WheelEntry | null)[] = new Array<WheelEntry | null>(slotCount).fill(null);
  let tick = startTick;
  let size = 0;
  /** Every slot between the current tick and this one is known to be empty. */
  let scanHint = startTick + 1;

  function unlink(entry: WheelEntry): void {
    const { wheelPrev: prev, wheelNext: next } = entry;
    if (prev === null) heads[entry.wheelDue & mask] = next;
    else prev.wheelNext = next;
    if (next !== null) next.wheelPrev = prev;
    entry.wheelPrev = null;
    entry.wheelNext = null;
    entry.wheelDue = -1;
    size--;
  }

  function link(entry: WheelEntry, due: number): void {
    const slot = due & mask;
    const head = heads[slot] ?? null;
    entry.wheelDue = due;
    entry.wheelPrev = null;
    entry.wheelNext = head;
    if (head !== null) head.wheelPrev = entry;
    heads[slot] = entry;
    size++;
    if (due < scanHint) scanHint = due;
  }

  return {
    get tick() { return tick; },
    get size() { return size; },
    schedule(entry, dueTick) {
      if (entry.wheelDue !== -1) unlink(entry);
      link(entry, dueTick <= tick ? tick + 1 : dueTick);
    },
    remove(entry) {
      if (entry.wheelDue !== -1) unlink(entry);
    },
    advance(toTick, onDue) {
      while (tick < toTick) {
        tick++;
        const slot = tick & mask;
        let entry = heads[slot] ?? null;
        // Detach the slot first: onDue may reschedule into this same slot.
        heads[slot] = null;
        const due: WheelEntry[] = [];
        while (entry !== null) {
          const next: WheelEntry | null = entry.wheelNext;
          if (entry.wheelDue <= tick) {
            entry.wheelPrev = null;
            entry.wheelNext = null;
            entry.wheelDue = -1;
            size--;
            due.push(entry);
          } else {
            // Due in a later revolution: keep it here.
            size--;
            link(entry, entry.wheelDue);
          }
          entry = next;
        }
        for (const e of due) onDue(e as E, tick);
      }
      if (scanHint <= tick) scanHint = tick + 1;
    },
    scanFromNearest(visit) {
      if (size === 0) return;
      for (let t = Math.max(scanHint, tick + 1), seen = 0; seen <= mask; t++, seen++) {
        let entry = heads[t & mask] ?? null;
        if (entry === null) { if (t === scanHint) scanHint = t + 1; continue; }
        while (entry !== null) {
          const next: WheelEntry | null = entry.wheelNext;
          if (entry.wheelDue <= t && visit(entry as E)) return;
          entry = next;
        }
        if (size === 0) return;
      }
    },
  };
}
