/**
 * CPU time spent by this process (control worker, agents, baseline workers and the bench's
 * client, all threads) and by the Temporal dev server it started: figures per step that a busy,
 * shared machine does not distort the way it distorts wall time.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of /proc's CPU times (USER_HZ, 100 on Linux). */
const TICKS_PER_SECOND = 100;

/** CPU time used so far, ms: by this process, and by the dev server (when this process started it). */
export interface CpuSample {
  self: number;
  server?: number;
}

/** The pid of the `temporal` dev server started by this process, if any. */
function serverPid(): number | undefined {
  if (process.platform !== 'linux') return undefined;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (name === 'temporal' && ppid === process.pid) return Number(entry);
    } catch {
      // The process ended while we looked.
    }
  }
  return undefined;
}

function processCpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name.
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

let pid: number | undefined | null = null;

/** CPU time used so far. */
export function cpuSample(): CpuSample {
  if (pid === null) pid = serverPid();
  const usage = process.cpuUsage();
  const server = pid === undefined ? undefined : processCpuMs(pid);
  return { self: (usage.user + usage.system) / 1000, ...(server !== undefined ? { server } : {}) };
}

/** CPU time per unit of work between two samples, ms. */
export function cpuPer(before: CpuSample, after: CpuSample, units: number): { worker: number; server?: number } {
  const per = (a: number, b: number): number => Math.round(((b - a) / Math.max(1, units)) * 10) / 10;
  return {
    worker: per(before.self, after.self),
    ...(before.server !== undefined && after.server !== undefined ? { server: per(before.server, after.server) } : {}),
  };
}
