import { readFileSync } from 'node:fs';

/**
 * CPU time and memory from Linux /proc, to say where a benchmark's cores
 * went: to the server, to the load generator, or to something else on the
 * machine. NaN where /proc is missing.
 */

/** USER_HZ, the unit of /proc times; 100 on every mainstream Linux build. */
const CLOCK_TICKS = 100;

/** User + system CPU seconds a process has used so far. */
export function processCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the ")" closing the command name: state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return Number.NaN;
  }
}

/** Busy (not idle, not iowait) CPU seconds of the whole machine, summed over cores. */
export function machineBusySeconds(): number {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
    const [, ...values] = line.trim().split(/\s+/);
    const n = values.slice(0, 8).map(Number); // user nice system idle iowait irq softirq steal
    const total = n.reduce((a, b) => a + b, 0);
    return (total - n[3]! - n[4]!) / CLOCK_TICKS;
  } catch {
    return Number.NaN;
  }
}

/** Peak resident memory of a process so far (VmHWM), in bytes. */
export function processPeakRss(pid: number): number {
  try {
    const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? Number.NaN : Number(m[1]) * 1024;
  } catch {
    return Number.NaN;
  }
}
