/**
 * Summary metrics of a simulation run, in seconds: GPU allocation over time, waits, job
 * completion time, makespan, preemptions and unschedulable jobs.
 */
import type { SimulationRun } from './engine';
import type { Scenario } from './scenario';

/** The metrics of `allot simulate`. */
export interface Metrics {
  jobs: number;
  completed: number;
  /** Jobs rejected as unschedulable. */
  unschedulable: number;
  /** Jobs that never started for another reason (still waiting when nothing else could happen). */
  neverStarted: number;
  /** Mean and 95th percentile of first start minus submit, over jobs that started. */
  meanWait: number | null;
  p95Wait: number | null;
  /** Mean of completion minus submit, over completed jobs. */
  meanJobCompletionTime: number | null;
  /** Last completion minus first submit. */
  makespan: number | null;
  preemptions: number;
  /** Time-weighted mean share of GPU capacity allocated, from first submit to last event. */
  meanGpuAllocation: number | null;
  /** Share of GPU capacity allocated after each event time. */
  gpuAllocation: [time: number, share: number][];
}

/** Computes the metrics of a run. */
export function computeMetrics(scenario: Scenario, run: SimulationRun): Metrics {
  const waits = run.jobs.flatMap((j) => (j.wait === null ? [] : [j.wait])).sort((a, b) => a - b);
  const submits = new Map(scenario.jobs.map((j) => [j.name, j.submitMs / 1000]));
  const jcts = run.jobs.flatMap((j) => (j.end === null ? [] : [j.end - (submits.get(j.name) ?? 0)]));
  const ends = run.jobs.flatMap((j) => (j.end === null ? [] : [j.end]));
  const firstSubmit = Math.min(...scenario.jobs.map((j) => j.submitMs / 1000));
  let area = 0;
  for (let i = 0; i + 1 < run.timeline.length; i++) {
    const a = run.timeline[i];
    const b = run.timeline[i + 1];
    if (a && b) area += a.gpuAllocated * (b.time - a.time);
  }
  const last = run.timeline[run.timeline.length - 1]?.time;
  const span = last === undefined ? 0 : last - firstSubmit;
  return {
    jobs: run.jobs.length,
    completed: ends.length,
    unschedulable: run.jobs.filter((j) => j.reason?.startsWith('Unschedulable') === true).length,
    neverStarted: run.jobs.filter((j) => j.start === null && j.reason?.startsWith('Unschedulable') !== true).length,
    meanWait: mean(waits),
    p95Wait: waits.length > 0 ? (waits[Math.min(waits.length - 1, Math.ceil(0.95 * waits.length) - 1)] ?? null) : null,
    meanJobCompletionTime: mean(jcts),
    makespan: ends.length > 0 ? Math.max(...ends) - firstSubmit : null,
    preemptions: run.jobs.reduce((s, j) => s + j.preemptions, 0),
    meanGpuAllocation: run.gpuCapacity > 0 && span > 0 ? area / span : null,
    gpuAllocation: run.timeline.map((t) => [t.time, round(t.gpuAllocated)]),
  };
}

function mean(xs: readonly number[]): number | null {
  return xs.length === 0 ? null : xs.reduce((s, x) => s + x, 0) / xs.length;
}

function round(x: number): number {
  return Math.round(x * 10_000) / 10_000;
}
