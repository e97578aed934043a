/**
 * What step workflows tell the worker that runs them, for its Prometheus metrics: through a
 * Temporal sink, so nothing enters the workflow history and replays stay silent (a sink is not
 * called while a workflow replays). Pool and team come from the workflow's search attributes.
 */
import type { Sinks } from '@temporalio/workflow';
import { proxySinks } from '@temporalio/workflow';
import type { StepState } from './step-types';

/** The metrics sink of the control worker. */
export interface AllotMetricsSinks extends Sinks {
  allotMetrics: {
    /** The step's state changed. */
    stepState(state: StepState): void;
    /** The step was granted its resources after waiting `waitMs` since it was submitted. */
    stepGranted(waitMs: number): void;
    /** An attempt was interrupted (preempted, node lost, lease expired) and the step queued again. */
    stepRequeued(reason: string): void;
  };
}

/** The sink, as workflows call it. */
export function metricsSink(): AllotMetricsSinks['allotMetrics'] {
  return proxySinks<AllotMetricsSinks>().allotMetrics;
}
