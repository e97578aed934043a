/**
 * Figure 4, history cost: the pool's history events per step, and how often it continues as new,
 * in three regimes measured by the other figures — one step at a time (overhead), a queue served
 * as GPUs free up (handoff), and saturation (throughput) — beside the events of a step's own
 * workflow and of the baseline's workflow per workload.
 */
import type { Client } from '@temporalio/client';
import { eventKinds, fetchEvents, runsOf } from '../lib/history';
import { ratio, round } from '../lib/stats';
import { poolWorkflowId } from '../lib/world';

/** Temporal suggests continuing as new at this many events (server default). */
export const SUGGESTED_EVENTS = 4_096;

/** One regime. */
export interface HistoryRegime {
  regime: string;
  steps: number;
  poolEvents: number;
  poolRuns: number;
  /** Pool events per step. */
  perStep: number;
  /** Steps one pool run holds before Temporal suggests continuing as new. */
  stepsPerRun: number;
  /** Pool events per step by kind (see `eventKinds`), largest first. */
  perStepByKind: Record<string, number>;
}

/** The figure. */
export interface HistoryFigure {
  regimes: HistoryRegime[];
  /** The largest pool cost per step of the regimes. */
  worstPerStep: number;
  /** Events of one step's own workflow (median, at saturation). */
  stepEvents: number;
  /** Events of the baseline's workflow per workload. */
  nativeEvents: number;
  /** (pool events per step at saturation + step events) / native events. */
  ratioTotal: number | null;
}

/**
 * Pool events per step for one figure's pool: every event of its runs but the `before` ones
 * (start and registration, before the figure's first step); agent heartbeats and health timers
 * during the figure count.
 */
export async function regime(
  client: Client,
  name: string,
  pool: string,
  steps: number,
  before: number,
): Promise<HistoryRegime> {
  const runs = await runsOf(client, poolWorkflowId(pool));
  const poolEvents = runs.reduce((s, r) => s + r.events, 0) - before;
  const perStep = round(poolEvents / Math.max(1, steps), 2);
  const kinds = new Map<string, number>();
  for (const [i, run] of runs.entries()) {
    const events = await fetchEvents(client, poolWorkflowId(pool), run.runId);
    for (const [kind, n] of eventKinds(i === 0 ? events.slice(before) : events)) {
      kinds.set(kind, (kinds.get(kind) ?? 0) + n);
    }
  }
  const perStepByKind = Object.fromEntries(
    [...kinds.entries()].sort((a, b) => b[1] - a[1]).map(([k, n]) => [k, round(n / Math.max(1, steps), 2)]),
  );
  return {
    regime: name,
    steps,
    poolEvents,
    poolRuns: runs.length,
    perStep,
    stepsPerRun: Math.floor(SUGGESTED_EVENTS / Math.max(0.01, perStep)),
    perStepByKind,
  };
}

/** Assembles the figure. */
export function historyFigure(regimes: HistoryRegime[], stepEvents: number, nativeEvents: number): HistoryFigure {
  const saturated = regimes.find((r) => r.regime === 'saturation') ?? regimes[regimes.length - 1];
  return {
    regimes,
    worstPerStep: Math.max(...regimes.map((r) => r.perStep)),
    stepEvents,
    nativeEvents,
    ratioTotal: ratio((saturated?.perStep ?? 0) + stepEvents, nativeEvents),
  };
}
