/**
 * The workload every benchmark runs, through allot and through the native baseline alike: a bash
 * process that appends its start and end times (bash's `EPOCHREALTIME`, no extra process) and its
 * GPUs to a shared file, sleeping in between. Appends of one short line are atomic, so many
 * workloads share one file.
 */
import { readFileSync } from 'node:fs';

const SCRIPT =
  'printf "%s %s start %s\\n" "$1" "${CUDA_VISIBLE_DEVICES:-none}" "$EPOCHREALTIME" >> "$2"; ' +
  '[ "$3" = 0 ] || sleep "$3"; ' +
  'printf "%s %s end %s\\n" "$1" "${CUDA_VISIBLE_DEVICES:-none}" "$EPOCHREALTIME" >> "$2"';

/** argv of a workload named `id` that sleeps `seconds` and records into `file`. */
export function workloadCommand(id: string, file: string, seconds: number): string[] {
  return ['bash', '-c', SCRIPT, 'workload', id, file, String(seconds)];
}

/** One workload as it ran: start and end in ms since the epoch, and its GPUs. */
export interface WorkloadRun {
  id: string;
  gpus: string;
  start: number;
  end: number;
}

/** Reads the runs recorded in `file` (a workload without both lines is left out). */
export function readRuns(file: string): WorkloadRun[] {
  const byId = new Map<string, Partial<WorkloadRun>>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const [id, gpus, what, at] = line.split(' ');
    if (id === undefined || gpus === undefined || at === undefined) continue;
    const run = byId.get(id) ?? { id, gpus };
    const ms = Number(at) * 1000;
    if (what === 'start') run.start = ms;
    else if (what === 'end') run.end = ms;
    byId.set(id, run);
  }
  return [...byId.values()].filter((r): r is WorkloadRun => r.start !== undefined && r.end !== undefined);
}

/**
 * Idle gaps between consecutive workloads on each GPU: the next one's start minus the previous
 * one's end, ms. Runs on several GPUs count on each of them.
 */
export function handoffGaps(runs: readonly WorkloadRun[]): number[] {
  const byGpu = new Map<string, WorkloadRun[]>();
  for (const r of runs) {
    for (const g of r.gpus.split(',')) {
      const list = byGpu.get(g) ?? [];
      list.push(r);
      byGpu.set(g, list);
    }
  }
  const gaps: number[] = [];
  for (const list of byGpu.values()) {
    list.sort((a, b) => a.start - b.start);
    for (let i = 1; i < list.length; i++) {
      const prev = list[i - 1];
      const next = list[i];
      if (prev && next) gaps.push(next.start - prev.end);
    }
  }
  return gaps;
}
