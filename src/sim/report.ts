/**
 * The readable summary of `allot simulate`, and the rounding used by its JSON.
 */
import type { SchedulingPolicy } from '../core';
import type { JobOutcome } from './engine';
import type { Metrics } from './metrics';
import type { PackingResult } from './packing';

/** One simulated policy: what ran and how it went. */
export interface PolicyRun {
  label: string;
  policy: SchedulingPolicy;
  jobs: JobOutcome[];
  metrics: Metrics;
}

const seconds = (x: number | null): string => (x === null ? '-' : `${Math.round(x * 10) / 10}s`);
const percent = (x: number | null): string => (x === null ? '-' : `${(x * 100).toFixed(1)}%`);

/** A table of metrics, one column per run. */
export function renderRuns(runs: readonly PolicyRun[]): string {
  const rows: [string, (m: Metrics) => string][] = [
    ['jobs', (m) => String(m.jobs)],
    ['completed', (m) => String(m.completed)],
    ['unschedulable', (m) => String(m.unschedulable)],
    ['never started', (m) => String(m.neverStarted)],
    ['mean wait', (m) => seconds(m.meanWait)],
    ['p95 wait', (m) => seconds(m.p95Wait)],
    ['mean JCT', (m) => seconds(m.meanJobCompletionTime)],
    ['makespan', (m) => seconds(m.makespan)],
    ['preemptions', (m) => String(m.preemptions)],
    ['mean GPU allocation', (m) => percent(m.meanGpuAllocation)],
  ];
  const header = ['', ...runs.map((r) => r.label)];
  const body = rows.map(([name, f]) => [name, ...runs.map((r) => f(r.metrics))]);
  const lines = [header, ...body];
  const widths = header.map((_, i) => Math.max(...lines.map((l) => (l[i] ?? '').length)));
  const out = lines.map((l) =>
    l.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  '),
  );
  const notes = runs.flatMap((r) =>
    r.jobs
      .filter((j) => j.start === null || (j.reason !== null && j.end === null))
      .slice(0, 5)
      .map((j) => `  ${r.label}: ${j.name}: ${j.reason ?? 'did not run'}`),
  );
  return [...out, ...(notes.length > 0 ? ['', 'jobs that did not complete (first 5 per run):', ...notes] : [])].join(
    '\n',
  );
}

/** Packing mode's table: unallocated GPU share per arrival level, one column per policy. */
export function renderPacking(results: readonly PackingResult[], capacityGpus: number): string {
  const header = ['arrived', ...results.map((r) => r.policy)];
  const arrived = results[0]?.arrived ?? [];
  const body = arrived.map((a, i) => [
    `${Math.round(a * 100)}%`,
    ...results.map((r) => {
      const share = r.unallocatedGpuShare[i];
      return share === undefined ? '-' : `${(share * 100).toFixed(2)}% (${Math.round(share * capacityGpus)} GPUs)`;
    }),
  ]);
  const lines = [header, ...body];
  const widths = header.map((_, i) => Math.max(...lines.map((l) => (l[i] ?? '').length)));
  const table = lines.map((l) =>
    l.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  '),
  );
  const out = ["unallocated GPU capacity as tasks arrive (FGD experiment: Weng et al., USENIX ATC '23):", ...table];
  const [chosen, base] = results;
  const last = arrived.length - 1;
  const a = chosen?.unallocatedGpuShare[last];
  const b = base?.unallocatedGpuShare[last];
  if (chosen && base && a !== undefined && b !== undefined && b > 0) {
    out.push(
      `at 100% arrival, ${chosen.policy} leaves ${((1 - a / b) * 100).toFixed(1)}% fewer GPUs unallocated than ${base.policy}`,
    );
  }
  return out.join('\n');
}
