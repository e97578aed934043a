/**
 * Checks over recorded run intervals: how many ran at once, and whether two shared a GPU.
 */

/** One workload run as it recorded itself. */
export interface Run {
  start: number;
  end: number;
  gpus: string[];
}

/** The largest number of runs active at the same instant. */
export function maxConcurrent(runs: readonly Run[]): number {
  return Math.max(0, ...runs.map((a) => runs.filter((b) => b.start <= a.start && a.start < b.end).length));
}

/** Pairs of runs that overlapped in time and shared a GPU index. */
export function sharedGpus(runs: readonly Run[]): [Run, Run][] {
  const bad: [Run, Run][] = [];
  runs.forEach((a, i) =>
    runs.slice(i + 1).forEach((b) => {
      if (a.start < b.end && b.start < a.end && a.gpus.some((g) => b.gpus.includes(g))) bad.push([a, b]);
    }),
  );
  return bad;
}
