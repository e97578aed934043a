/**
 * A step's usage beside its request, for people: one line for `allot logs` (Slurm's `seff` is the
 * model) and short cells for the running table of `allot status`.
 */
import { formatMemory } from '../core';
import type { StepUsage, UsageStat } from '../workflows/usage-types';

function cores(n: number): string {
  return n >= 10 ? n.toFixed(0) : n.toFixed(2).replace(/\.?0+$/, '') || '0';
}

function mem(mib: number): string {
  return formatMemory(Math.round(mib));
}

/** `cpu 0.93 mean, 1 peak of 2 asked · memory 612Mi peak, 301Mi mean of 512Mi asked (limit 512Mi) · ...`. */
export function describeUsage(u: StepUsage): string {
  const parts: string[] = [];
  const asked = u.requested;
  if (u.cpuCores) {
    parts.push(
      `cpu ${cores(u.cpuCores.mean)} mean, ${cores(u.cpuCores.peak)} peak` +
        (asked ? ` of ${cores(asked.cpu)} asked (${percent(u.cpuCores.mean, asked.cpu)} used)` : ''),
    );
  }
  if (u.memoryMiB) {
    parts.push(
      `memory ${mem(u.memoryMiB.peak)} peak, ${mem(u.memoryMiB.mean)} mean` +
        (asked ? ` of ${mem(asked.memoryMiB)} asked (${percent(u.memoryMiB.peak, asked.memoryMiB)} at peak)` : '') +
        (asked?.memoryLimitMiB !== undefined && asked.memoryLimitMiB !== asked.memoryMiB
          ? `, limit ${mem(asked.memoryLimitMiB)}`
          : ''),
    );
  }
  if (u.gpuUtilPercent) parts.push(`gpu util ${stat(u.gpuUtilPercent, (v) => `${Math.round(v)}%`)}`);
  if (u.gpuMemoryMiB) parts.push(`gpu memory ${stat(u.gpuMemoryMiB, mem)}`);
  if (parts.length === 0) return `no samples (the workload ended before the first one)`;
  return `${parts.join(' · ')} (${u.samples} sample${u.samples === 1 ? '' : 's'}${u.memoryEnforcement ? `, memory limit by ${u.memoryEnforcement}` : ''})`;
}

function stat(s: UsageStat, f: (v: number) => string): string {
  return `${f(s.mean)} mean, ${f(s.peak)} peak`;
}

function percent(used: number, asked: number): string {
  return asked > 0 ? `${Math.round((used / asked) * 100)}%` : '-';
}

/** Short cells for a table: `0.93/2`, `612Mi/512Mi`, `80%`, `2Gi`. */
export function usageCells(
  u: StepUsage | undefined,
  current?: { cpuCores?: number; memoryMiB?: number; gpuUtilPercent?: number; gpuMemoryMiB?: number },
): { cpu: string; memory: string; gpuUtil: string; gpuMemory: string } {
  const asked = u?.requested;
  const cpuNow = current?.cpuCores ?? u?.cpuCores?.mean;
  const memNow = current?.memoryMiB ?? u?.memoryMiB?.mean;
  return {
    cpu: cpuNow !== undefined ? `${cores(cpuNow)}${asked ? `/${cores(asked.cpu)}` : ''}` : '-',
    memory:
      memNow !== undefined
        ? `${mem(memNow)}${asked ? `/${mem(asked.memoryMiB)}` : ''}${u?.memoryMiB ? ` (peak ${mem(u.memoryMiB.peak)})` : ''}`
        : '-',
    gpuUtil: current?.gpuUtilPercent !== undefined ? `${Math.round(current.gpuUtilPercent)}%` : '-',
    gpuMemory: current?.gpuMemoryMiB !== undefined ? mem(current.gpuMemoryMiB) : '-',
  };
}
