/**
 * Midnights in a time zone, for splitting sessions at the day boundary. A
 * session computes its next midnight once, when it starts; each event then
 * only compares numbers (Intl formatting costs microseconds).
 */

const DAY_MS = 86_400_000;
const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (f === undefined) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** The wall-clock fields of `ms` in `timeZone`, as if they were UTC (whole seconds). */
function wallClockAsUtc(ms: number, timeZone: string): number {
  const parts: Record<string, number> = {};
  for (const p of formatter(timeZone).formatToParts(ms)) if (p.type !== 'literal') parts[p.type] = Number(p.value);
  return Date.UTC(parts.year!, parts.month! - 1, parts.day!, parts.hour!, parts.minute!, parts.second!);
}

/** The zone's offset from UTC at `ms`, in ms (east positive). */
function offsetAt(ms: number, timeZone: string): number {
  const whole = Math.floor(ms / 1000) * 1000;
  return wallClockAsUtc(whole, timeZone) - whole;
}

/**
 * The first instant after `ms` at which the local date in `timeZone`
 * changes. Where a DST change skips midnight, it is the first local time
 * of the new day (01:00).
 */
export function nextMidnight(ms: number, timeZone: string): number {
  if (timeZone === 'UTC' || timeZone === 'Etc/UTC') return (Math.floor(ms / DAY_MS) + 1) * DAY_MS;
  const offsetNow = offsetAt(ms, timeZone);
  // The next local midnight, in "local wall clock as if UTC" terms.
  const localMidnight = (Math.floor((ms + offsetNow) / DAY_MS) + 1) * DAY_MS;
  const candidate = localMidnight - offsetNow;
  const offsetThen = offsetAt(candidate, timeZone);
  if (offsetThen === offsetNow) return candidate;
  // The offset changes before midnight (DST): midnight under the new offset,
  // if that instant really reads midnight; otherwise midnight was skipped and
  // the new day starts at `candidate`.
  const shifted = localMidnight - offsetThen;
  return offsetAt(shifted, timeZone) === offsetThen && shifted > ms ? shifted : candidate;
}
