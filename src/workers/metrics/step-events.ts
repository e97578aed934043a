/**
 * The control worker's step metrics (`allot_step_*`): waits, preemptions, requeues and outcomes,
 * counted from what step workflows report through the `allotMetrics` sink.
 */
import type { InjectedSinks } from '@temporalio/worker';
import type { WorkflowInfo } from '@temporalio/workflow';
import { Counter, Histogram } from 'prom-client';
import type { Registry } from 'prom-client';
import type { AllotMetricsSinks } from '../../workflows/sinks';

/** Buckets of the wait-time histogram, seconds: from a fast grant to a day in the queue. */
export const WAIT_BUCKETS = [0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600, 7200, 21600, 86400];

/** How a step can end, as `allot_step_outcomes_total` labels it. */
const STEP_OUTCOMES = ['succeeded', 'failed', 'cancelled'] as const;

/** Adds the step metrics for `pools` to `registry`; returns the sinks that count into them. */
export function registerStepMetrics(registry: Registry, pools: readonly string[]): InjectedSinks<AllotMetricsSinks> {
  const wait = new Histogram({
    name: 'allot_step_wait_seconds',
    help: 'Time from submission to grant, per pool and team',
    labelNames: ['pool', 'team'],
    buckets: WAIT_BUCKETS,
    registers: [registry],
  });
  const preemptions = new Counter({
    name: 'allot_step_preemptions_total',
    help: 'Running steps preempted (they queue again and resume from their checkpoints)',
    labelNames: ['pool', 'team'],
    registers: [registry],
  });
  const requeues = new Counter({
    name: 'allot_step_requeues_total',
    help: 'Attempts interrupted and queued again, by reason (Preempted, NodeLost, LeaseExpired, NodeDraining, ...)',
    labelNames: ['pool', 'team', 'reason'],
    registers: [registry],
  });
  const outcomes = new Counter({
    name: 'allot_step_outcomes_total',
    help: 'Steps that ended, by outcome (succeeded, failed, cancelled)',
    labelNames: ['pool', 'team', 'outcome'],
    registers: [registry],
  });
  // Series that exist before the first event, so that a scrape shows them at 0.
  for (const pool of pools) {
    wait.zero({ pool, team: 'default' });
    preemptions.inc({ pool, team: 'default' }, 0);
    for (const outcome of STEP_OUTCOMES) outcomes.inc({ pool, team: 'default', outcome }, 0);
  }
  return {
    allotMetrics: {
      stepState: {
        fn(info, state) {
          const labels = poolAndTeam(info);
          if (state === 'preempted') preemptions.inc(labels);
          if (state === 'succeeded' || state === 'failed' || state === 'cancelled')
            outcomes.inc({ ...labels, outcome: state });
        },
      },
      stepGranted: {
        fn(info, waitMs) {
          wait.observe(poolAndTeam(info), Math.max(0, waitMs) / 1000);
        },
      },
      stepRequeued: {
        fn(info, reason) {
          requeues.inc({ ...poolAndTeam(info), reason });
        },
      },
    },
  };
}

/** Sinks that count nothing: for workers without a metrics endpoint. */
export function noMetricsSinks(): InjectedSinks<AllotMetricsSinks> {
  const none = { fn: () => undefined };
  return { allotMetrics: { stepState: none, stepGranted: none, stepRequeued: none } };
}

/** Pool and team of the step that called, from its search attributes (the sink gets them as plain data). */
function poolAndTeam(info: WorkflowInfo): { pool: string; team: string } {
  // typedSearchAttributes loses its methods on the way out of the sandbox: read the plain form.
  const attributes = info.searchAttributes as Record<string, unknown[] | undefined> | undefined;
  const first = (key: string): string | undefined => {
    const v = attributes?.[key]?.[0];
    return typeof v === 'string' ? v : undefined;
  };
  return { pool: first('AllotPool') ?? 'unknown', team: first('AllotTeam') ?? 'default' };
}
