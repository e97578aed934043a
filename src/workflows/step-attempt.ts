/**
 * One attempt of a step on its grant: the `launch` activity on the granted node's task queue,
 * with the lease renewed while it runs. A failed launch is read as plain facts (see
 * `step-outcome.ts`): whether it says anything of the workload, or only of its node.
 */
import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  TimeoutFailure,
  isCancellation,
  proxyActivities,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { AllotActivities } from '../activities';
import type { Lease } from '../core';
import { INFRASTRUCTURE_FAILURES, LaunchFailure, NODE_UNRESPONSIVE } from './failures';
import { launchLimits } from './limits';
import { nodeTaskQueue } from './messages';
import { SEARCH_ATTRIBUTES as SA } from './search-attributes';
import type { Interrupted, LaunchFailureFacts } from './step-outcome';
import { LAUNCH_HEARTBEAT_TIMEOUT_MS } from './step-outcome';
import type { StepRun } from './step-run';
import type { GangLaunch, LaunchInput, LaunchResult } from './step-types';

/** How a launch ended: with the workload's result, or with a failure (and its facts). */
export type LaunchEnd = { launched: LaunchResult } | { failed: unknown; facts: LaunchFailureFacts };

/** Launches the workload on the grant and waits for it, renewing the lease meanwhile (until `stopRenewing`). */
export async function launchOnGrant(run: StepRun, lease: Lease, attempt: number): Promise<LaunchEnd> {
  const { progress } = run;
  const gpuIndices = lease.gpus.map((g) => g.index);
  progress.nodeId = lease.nodeId;
  progress.gpuIndices = gpuIndices;
  progress.startedAt = Date.now();
  progress.reason = undefined;
  progress.message = undefined;
  upsertSearchAttributes([
    { key: SA.AllotNode, value: lease.nodeId },
    { key: SA.AllotGpus, value: gpuIndices.join(',') },
  ]);
  run.setState('running');

  const { launch } = launchActivities(run, lease.nodeId);
  run.startRenewing(lease);
  const graceMs = launchGrace(run, lease);
  try {
    run.launchScope = new CancellationScope();
    const launched = await run.launchScope.run(() => launch(launchInput(run, lease, attempt, graceMs)));
    return { launched };
  } catch (err) {
    return { failed: err, facts: failureFacts(run, lease, err, graceMs) };
  } finally {
    run.launchScope = undefined;
  }
}

/** The `launch` activity on a node's task queue, with the timeouts a launch runs under. */
export function launchActivities(run: StepRun, nodeId: string): Pick<AllotActivities, 'launch'> {
  return proxyActivities<AllotActivities>({
    taskQueue: nodeTaskQueue(nodeId),
    // Nothing polls a node whose agent is gone: give up on it well before the node is declared lost.
    scheduleToStartTimeout: '1 minute',
    startToCloseTimeout: run.input.timeLimitMs !== undefined ? run.input.timeLimitMs + run.grace + 10_000 : '30 days',
    heartbeatTimeout: LAUNCH_HEARTBEAT_TIMEOUT_MS,
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: { maximumAttempts: 1 },
  });
}

/** The grace period a launch gets: a preemptible step stops within the pool's, which the pool enforces. */
export function launchGrace(run: StepRun, lease: Lease): number {
  return run.input.preemptible ? Math.min(run.grace, lease.gracePeriodMs ?? run.grace) : run.grace;
}

/** What the agent needs to run the workload of `lease` (one replica's, with `gang`). */
export function launchInput(
  run: StepRun,
  lease: Lease,
  attempt: number,
  graceMs: number,
  gang?: GangLaunch,
): LaunchInput {
  const { input, progress } = run;
  const first = lease.gpus[0];
  const gpuFraction = lease.gpus.length === 1 && first && first.milli < 1000 ? first.milli / 1000 : undefined;
  return {
    stepId: run.info.workflowId,
    name: input.name,
    // Retries by step() start a new run that keeps counting (ALLOT_ATTEMPT, the log per attempt).
    attempt: (input.firstAttempt ?? 1) + attempt - 1,
    leaseId: lease.leaseId,
    pool: run.pool,
    requestId: progress.requestId,
    command: input.command,
    env: input.env ?? {},
    cwd: input.cwd,
    ...(input.outputs ? { outputs: input.outputs } : {}),
    ...(input.inputs ? { inputs: input.inputs } : {}),
    ...(input.checkpointRetention ? { checkpointRetention: input.checkpointRetention } : {}),
    ...(input.keepWorkDir ? { keepWorkDir: true } : {}),
    gpuIndices: lease.gpus.map((g) => g.index),
    gpuFraction,
    ...(lease.custom ? { custom: { ...lease.custom } } : {}),
    gracePeriodMs: graceMs,
    ...(lease.fenceMs !== undefined ? { fenceMs: lease.fenceMs } : {}),
    ...launchLimits(input, run.resources),
    ...(gang ? { gang } : {}),
  };
}

/** A failed launch of `lease`, as plain facts. */
export function failureFacts(run: StepRun, lease: Lease, err: unknown, graceMs: number): LaunchFailureFacts {
  const limit = limitExceeded(err);
  return {
    interrupted: run.told.interrupted,
    infrastructure: infrastructureFailure(err),
    limit: limit && { reason: limit.type ?? '', message: limit.message },
    cancellation: isCancellation(err),
    mayStillRun: mayStillRun(err),
    message: err instanceof Error ? err.message : String(err),
    fenceMs: lease.fenceMs,
    graceMs,
  };
}

/**
 * True when a launch ended without word from its agent (its heartbeats stopped, or it ran past its
 * time), so that its workload may still run. A launch that never started cannot.
 */
function mayStillRun(err: unknown): boolean {
  if (!(err instanceof ActivityFailure)) return false;
  const cause = err.cause;
  return cause instanceof TimeoutFailure && cause.timeoutType !== 'SCHEDULE_TO_START';
}

/** A launch that failed because its node or agent went away, rather than because of the workload. */
function infrastructureFailure(err: unknown): Interrupted | undefined {
  if (!(err instanceof ActivityFailure)) return undefined;
  const cause = err.cause;
  if (cause instanceof TimeoutFailure) {
    return { reason: NODE_UNRESPONSIVE, message: `the agent stopped answering (${cause.timeoutType ?? 'timeout'})` };
  }
  if (
    cause instanceof ApplicationFailure &&
    cause.type !== null &&
    cause.type !== undefined &&
    INFRASTRUCTURE_FAILURES.has(cause.type)
  ) {
    return { reason: cause.type, message: cause.message };
  }
  // The agent's worker stopped without draining (allot dev stopped, say): the step runs again.
  if (
    (cause instanceof ApplicationFailure && cause.type === LaunchFailure.WorkerShutdown) ||
    (cause instanceof CancelledFailure && cause.message === 'WORKER_SHUTDOWN')
  ) {
    return { reason: LaunchFailure.WorkerShutdown, message: 'the agent stopped while the step ran' };
  }
  return undefined;
}

/** The failure of a launch whose workload broke its memory or time limit, as the step's own failure. */
export function limitExceeded(err: unknown): ApplicationFailure | undefined {
  const cause = err instanceof ActivityFailure ? err.cause : undefined;
  if (!(cause instanceof ApplicationFailure)) return undefined;
  if (cause.type !== LaunchFailure.MemoryLimitExceeded && cause.type !== LaunchFailure.TimeLimitExceeded)
    return undefined;
  return ApplicationFailure.create({
    message: cause.message,
    type: cause.type,
    nonRetryable: true,
    details: cause.details ? [...cause.details] : undefined,
  });
}
