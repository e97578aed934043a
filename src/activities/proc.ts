/**
 * The processes of a workload, read from `/proc`: its process group and every descendant of its
 * first process (a child that starts a session of its own is still counted), with their resident
 * memory and CPU time. Linux only; elsewhere a workload has no processes to see and its usage is
 * reported as unknown.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of `/proc/<pid>/stat` times (`getconf CLK_TCK`, 100 on Linux). */
const CLOCK_TICKS = 100;
/** Page size of `/proc/<pid>/stat` RSS (4 KiB on Linux x86-64 and arm64 with 4K pages). */
const PAGE_BYTES = 4096;

/** One process of a workload. */
export interface ProcessStat {
  pid: number;
  ppid: number;
  pgrp: number;
  /** Resident set size, bytes. */
  rssBytes: number;
  /** User + system CPU time of the process itself, seconds. */
  cpuSeconds: number;
}

/** Reads `/proc/<pid>/stat`; undefined when the process is gone. */
export function readStat(pid: number): ProcessStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses: fields after it follow the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const n = (i: number): number => Number(fields[i - 3] ?? 0);
  return {
    pid,
    ppid: n(4),
    pgrp: n(5),
    cpuSeconds: (n(14) + n(15)) / CLOCK_TICKS,
    rssBytes: n(24) * PAGE_BYTES,
  };
}

/** Every process on the machine (those readable now). */
function allProcesses(): ProcessStat[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  const out: ProcessStat[] = [];
  for (const e of entries) {
    if (e.charCodeAt(0) < 48 || e.charCodeAt(0) > 57) continue;
    const s = readStat(Number(e));
    if (s) out.push(s);
  }
  return out;
}

/** The processes of the workload whose first process is `rootPid`, leader of process group `rootPid`. */
export function workloadProcesses(rootPid: number): ProcessStat[] {
  const all = allProcesses();
  const children = new Map<number, ProcessStat[]>();
  for (const p of all) {
    const list = children.get(p.ppid);
    if (list) list.push(p);
    else children.set(p.ppid, [p]);
  }
  const found = new Map<number, ProcessStat>();
  for (const p of all) if (p.pgrp === rootPid) found.set(p.pid, p);
  const root = all.find((p) => p.pid === rootPid);
  const stack = root ? [root] : [...found.values()];
  const visited = new Set<number>();
  while (stack.length > 0) {
    const p = stack.pop() as ProcessStat;
    if (visited.has(p.pid)) continue;
    visited.add(p.pid);
    found.set(p.pid, p);
    stack.push(...(children.get(p.pid) ?? []));
  }
  return [...found.values()];
}

/**
 * Turns successive snapshots of a workload's processes into a CPU rate: the CPU time its processes
 * used since the previous snapshot, over the wall time in between. A process seen for the first
 * time counts with all the CPU time it has.
 */
export class CpuMeter {
  private last = new Map<number, number>();
  private lastAt: number | undefined;

  /** Cores in use since the previous call (undefined on the first call), and CPU seconds used in between. */
  update(processes: ProcessStat[], now: number): { cores?: number; cpuSeconds: number } {
    let used = 0;
    const next = new Map<number, number>();
    for (const p of processes) {
      const before = this.last.get(p.pid) ?? 0;
      used += Math.max(0, p.cpuSeconds - before);
      next.set(p.pid, p.cpuSeconds);
    }
    const elapsed = this.lastAt === undefined ? undefined : (now - this.lastAt) / 1000;
    this.last = next;
    this.lastAt = now;
    return { cores: elapsed !== undefined && elapsed > 0 ? used / elapsed : undefined, cpuSeconds: used };
  }
}
