/**
 * Small statistics for the benchmarks: percentiles (nearest rank) and the machine's load while a
 * figure was measured.
 */
import { cpus, loadavg } from 'node:os';

/** The `p`-th percentile (0-100) of `values` by nearest rank; `NaN` when there are none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] ?? Number.NaN;
}

/** Median, p99, mean and count of a sample. */
export interface Summary {
  n: number;
  p50: number;
  p99: number;
  mean: number;
  min: number;
  max: number;
}

/** Summarises a sample (values in whatever unit they came in). */
export function summarize(values: readonly number[]): Summary {
  const n = values.length;
  return {
    n,
    p50: round(percentile(values, 50)),
    p99: round(percentile(values, 99)),
    mean: round(n === 0 ? Number.NaN : values.reduce((s, v) => s + v, 0) / n),
    min: round(n === 0 ? Number.NaN : Math.min(...values)),
    max: round(n === 0 ? Number.NaN : Math.max(...values)),
  };
}

/** Rounds to `digits` decimals (for JSON that reads well). */
export function round(v: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

/** `a / b`, rounded; `null` when either is missing or `b` is 0. */
export function ratio(a: number | undefined, b: number | undefined, digits = 2): number | null {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return null;
  return round(a / b, digits);
}

/** The 1-minute load average over a figure: at its start, its end, and the mean of samples every second. */
export interface Load {
  start: number;
  end: number;
  mean: number;
  max: number;
  cpus: number;
}

/** Samples the 1-minute load average every second until stopped. */
export class LoadSampler {
  private readonly samples: number[] = [];
  private readonly timer: NodeJS.Timeout;
  private readonly start = loadavg()[0] ?? 0;

  constructor() {
    this.samples.push(this.start);
    this.timer = setInterval(() => this.samples.push(loadavg()[0] ?? 0), 1000);
    this.timer.unref();
  }

  /** Stops sampling and returns what was seen. */
  stop(): Load {
    clearInterval(this.timer);
    const end = loadavg()[0] ?? 0;
    this.samples.push(end);
    return {
      start: round(this.start, 2),
      end: round(end, 2),
      mean: round(this.samples.reduce((s, v) => s + v, 0) / this.samples.length, 2),
      max: round(Math.max(...this.samples), 2),
      cpus: cpus().length,
    };
  }
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
