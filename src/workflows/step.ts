/**
 * `allotStep`: one step as an acquire → launch → release saga. The release runs in a
 * non-cancellable scope, so a step that fails or is cancelled still gives its resources back.
 *
 * While it runs, the step renews its lease. When the pool takes the lease back (it expired, or
 * the node was lost), or the launch is lost with its node (heartbeat timeout), the step stops what
 * is left of the workload, releases, and queues again with its original submit time, as attempt
 * n + 1 with the same checkpoint directory.
 */
import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  TimeoutFailure,
  condition,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  proxyActivities,
  setHandler,
  sleep,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { AllotActivities } from '../activities';
import type { AcquireInput, Lease, Rejection } from '../core';
import { formatIssues } from '../core';
import {
  DEFAULT_POOL,
  acquireSignal,
  grantSignal,
  nodeTaskQueue,
  poolWorkflowId,
  preemptSignal,
  progressQuery,
  rejectSignal,
  releaseSignal,
  renewSignal,
  revokeSignal,
} from './messages';
import { INFRASTRUCTURE_FAILURES, LaunchFailure, NON_ZERO_EXIT, STOPPED_REASONS } from './failures';
import { launchLimits } from './limits';
import type { AccountedLease, AccountingRecord } from './accounting-types';
import { ACCOUNTING_MEMO } from './accounting-types';
import { SEARCH_ATTRIBUTES as SA } from './search-attributes';
import { metricsSink } from './sinks';
import type { LaunchResult, StepInput, StepProgress, StepResult, StepState } from './step-types';
import { validateStepInput } from './step-validation';

/** Default grace period between SIGTERM and SIGKILL, ms. */
export const DEFAULT_GRACE_PERIOD_MS = 30_000;

/** How often a step runs again after losing its node or lease before it gives up. */
export const MAX_INFRASTRUCTURE_RETRIES = 10;

/** How long a step turned away by a full queue (`QueueFull`) waits before it asks again, ms. */
export const QUEUE_FULL_RETRY_MS = 30_000;

/** Why an attempt ended without a result of the workload. */
interface Interrupted {
  reason: string;
  message: string;
}

/** The step workflow. */
export async function allotStep(input: StepInput): Promise<StepResult> {
  const info = workflowInfo();
  const { request, issues } = validateStepInput(input);
  if (!request || issues.length > 0)
    throw ApplicationFailure.nonRetryable(`invalid step options:\n${formatIssues(issues)}`, 'InvalidInput', issues);
  const pool = input.pool ?? DEFAULT_POOL;
  const baseRequestId = `${info.workflowId}#${info.runId}`;
  const progress: StepProgress = {
    stepId: info.workflowId,
    requestId: baseRequestId,
    name: input.name,
    state: 'queued',
    pool,
    submittedAt: Date.now(),
    reason: 'Pending',
    message: 'asking the pool',
  };
  setHandler(progressQuery, () => progress);

  // What the pool told the current attempt (set by signal handlers). `stopped`: a revocation
  // proved that the attempt's workload no longer runs anywhere.
  const told: { lease?: Lease; rejection?: Rejection; interrupted?: Interrupted; stopped?: Interrupted } = {};
  let launchScope: CancellationScope | undefined;
  const interrupt = (why: Interrupted): void => {
    if (told.interrupted) return;
    told.interrupted = why;
    // Before the launch has begun there is nothing to cancel: the step sees `told.interrupted`
    // before it launches, and does not.
    launchScope?.cancel();
  };
  setHandler(grantSignal, (granted) => {
    if (granted.requestId === progress.requestId) told.lease ??= granted;
  });
  setHandler(rejectSignal, (r) => {
    if (r.requestId === progress.requestId) told.rejection = r;
  });
  setHandler(preemptSignal, (p) => {
    if (p.requestId === progress.requestId) interrupt({ reason: 'Preempted', message: p.message });
  });
  setHandler(revokeSignal, (r) => {
    if (r.requestId !== progress.requestId) return;
    if (STOPPED_REASONS.has(r.reason)) told.stopped ??= { reason: r.reason, message: r.message };
    interrupt({ reason: r.reason, message: r.message });
  });

  let workflowCancelled = false;
  CancellationScope.current().cancelRequested.catch(() => (workflowCancelled = true));

  upsertSearchAttributes([
    { key: SA.AllotPool, value: pool },
    { key: SA.AllotStep, value: input.name },
    { key: SA.AllotTeam, value: input.team ?? 'default' },
    { key: SA.AllotPriority, value: input.priority ?? 0 },
  ]);
  setState(progress, 'queued');

  const poolHandle = getExternalWorkflowHandle(poolWorkflowId(pool));
  const grace = input.gracePeriodMs ?? DEFAULT_GRACE_PERIOD_MS;

  // Accounting: every lease with its resources, start, end and usage, kept in the memo.
  const accounted: AccountedLease[] = [];
  let held: AccountedLease | undefined;
  const writeAccounting = (): void => {
    const record: AccountingRecord = {
      version: 1,
      pool,
      team: input.team ?? 'default',
      pipeline: info.root && info.root.workflowId !== info.workflowId ? info.root.workflowId : null,
      step: input.name,
      leases: accounted,
    };
    upsertMemo({ [ACCOUNTING_MEMO]: record });
  };

  let infrastructureRetries = 0;
  for (let attempt = 1; ; attempt++) {
    const requestId = attempt === 1 ? baseRequestId : `${baseRequestId}#${attempt}`;
    progress.requestId = requestId;
    told.lease = undefined;
    told.rejection = undefined;
    told.interrupted = undefined;
    told.stopped = undefined;
    /**
     * Gives the lease back; `byAgent` when the agent already did, as the workload ended. With
     * `requeue`, the step queues again and its waiting so far counts for its next attempt.
     */
    const release = (byAgent = false, requeue = false): Promise<void> => {
      if (held) {
        held.end = Date.now();
        held = undefined;
        writeAccounting();
      }
      if (byAgent) return Promise.resolve();
      return CancellationScope.nonCancellable(() =>
        poolHandle.signal(releaseSignal, requeue ? { requestId, requeue } : { requestId }),
      );
    };
    /** Gives the lease back and queues again, as attempt n + 1. */
    const queueAgain = async (lost: Interrupted): Promise<void> => {
      await release(false, true);
      metricsSink().stepRequeued(lost.reason);
      log.warn('step attempt interrupted; queueing again', {
        step: input.name,
        attempt,
        reason: lost.reason,
        message: lost.message,
      });
      progress.reason = lost.reason;
      progress.message = `${lost.message}; queued again as attempt ${attempt + 1}`;
      progress.nodeId = undefined;
      progress.gpuIndices = undefined;
      upsertSearchAttributes([
        { key: SA.AllotNode, value: null },
        { key: SA.AllotGpus, value: null },
      ]);
      setState(progress, 'queued');
    };

    try {
      await askPool(
        poolHandle,
        {
          requestId,
          owner: { kind: 'workflow', workflowId: info.workflowId },
          resources: request,
          priority: input.priority ?? 0,
          team: input.team ?? 'default',
          label: input.name,
          submittedAt: progress.submittedAt,
          gracePeriodMs: grace,
          ...(input.preemptible !== undefined ? { preemptible: input.preemptible } : {}),
          ...(input.timeLimitMs !== undefined ? { timeLimitMs: input.timeLimitMs } : {}),
        },
        pool,
      );
      await condition(() => told.lease !== undefined || told.rejection !== undefined || told.interrupted !== undefined);
    } catch (err) {
      if (isCancellation(err)) {
        await release();
        setState(progress, 'cancelled');
      }
      throw err;
    }
    const lease = told.lease as Lease | undefined; // set by the grant handler while we waited
    const rejection = told.rejection as Rejection | undefined;
    const withdrawn = told.interrupted as Interrupted | undefined;
    if (!lease && !rejection && withdrawn) {
      // The pool holds nothing for this request any more (withdrawn by someone else): ask again.
      await queueAgain(withdrawn);
      continue;
    }
    if (rejection?.reason === 'QueueFull') {
      // The pool's queue is at its limit: wait in this workflow and ask again, as a new request.
      progress.reason = rejection.reason;
      progress.message = `${rejection.message}; asking again in ${QUEUE_FULL_RETRY_MS / 1000} s`;
      log.info('pool queue full; asking again later', { pool, retryInMs: QUEUE_FULL_RETRY_MS });
      try {
        await sleep(QUEUE_FULL_RETRY_MS);
      } catch (err) {
        if (isCancellation(err)) setState(progress, 'cancelled');
        throw err;
      }
      continue;
    }
    if (rejection || !lease) {
      const r = rejection ?? { reason: 'Unschedulable', message: 'rejected by the pool' };
      progress.error = `${r.reason}: ${r.message}`;
      setState(progress, 'failed');
      throw ApplicationFailure.nonRetryable(`step ${input.name} cannot be scheduled: ${r.message}`, r.reason);
    }

    const granted = lease;
    const gpuIndices = granted.gpus.map((g) => g.index);
    const first = granted.gpus[0];
    const gpuFraction = granted.gpus.length === 1 && first && first.milli < 1000 ? first.milli / 1000 : undefined;
    held = {
      leaseId: granted.leaseId,
      nodeId: granted.nodeId,
      gpu: granted.gpus.reduce((sum, g) => sum + g.milli, 0) / 1000,
      cpu: granted.cpuMilli / 1000,
      memoryMiB: granted.memoryMiB,
      start: granted.grantedAt,
    };
    accounted.push(held);
    writeAccounting();
    metricsSink().stepGranted(granted.grantedAt - progress.submittedAt);
    // Set by the signal handlers while the step waited.
    const early = told.interrupted as Interrupted | undefined;
    if (early && !workflowCancelled) {
      // Preempted (or revoked) in the very task that granted it: never launch.
      const preempted = early.reason === 'Preempted';
      if (preempted || ++infrastructureRetries <= MAX_INFRASTRUCTURE_RETRIES) {
        if (preempted) setState(progress, 'preempted');
        await queueAgain(early);
        continue;
      }
      progress.error = `${early.reason}: ${early.message} (gave up after ${attempt} attempts)`;
      progress.endedAt = Date.now();
      setState(progress, 'failed');
      await release();
      throw ApplicationFailure.nonRetryable(
        `step ${input.name} gave up after ${attempt} attempts: ${early.message}`,
        early.reason,
      );
    }
    progress.nodeId = granted.nodeId;
    progress.gpuIndices = gpuIndices;
    progress.startedAt = Date.now();
    progress.reason = undefined;
    progress.message = undefined;
    upsertSearchAttributes([
      { key: SA.AllotNode, value: granted.nodeId },
      { key: SA.AllotGpus, value: gpuIndices.join(',') },
    ]);
    setState(progress, 'running');

    const { launch } = proxyActivities<AllotActivities>({
      taskQueue: nodeTaskQueue(granted.nodeId),
      // Nothing polls a node whose agent is gone: give up on it well before the node is declared lost.
      scheduleToStartTimeout: '1 minute',
      startToCloseTimeout: input.timeLimitMs !== undefined ? input.timeLimitMs + grace + 10_000 : '30 days',
      heartbeatTimeout: LAUNCH_HEARTBEAT_TIMEOUT_MS,
      cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
      retry: { maximumAttempts: 1 },
    });
    const renewing = renewWhileRunning(poolHandle, granted, requestId);
    let launched: LaunchResult;
    // A preemptible step stops within the pool's grace period, which the pool enforces.
    const launchGrace = input.preemptible ? Math.min(grace, granted.gracePeriodMs ?? grace) : grace;
    try {
      launchScope = new CancellationScope();
      launched = await launchScope.run(() =>
        launch({
          stepId: info.workflowId,
          name: input.name,
          // Retries by step() start a new run that keeps counting (ALLOT_ATTEMPT, the log per attempt).
          attempt: (input.firstAttempt ?? 1) + attempt - 1,
          leaseId: granted.leaseId,
          pool,
          requestId,
          command: input.command,
          env: input.env ?? {},
          cwd: input.cwd,
          gpuIndices,
          gpuFraction,
          gracePeriodMs: launchGrace,
          ...(granted.fenceMs !== undefined ? { fenceMs: granted.fenceMs } : {}),
          ...launchLimits(input, request),
        }),
      );
    } catch (err) {
      const lost = workflowCancelled
        ? undefined
        : ((told.interrupted as Interrupted | undefined) ?? infrastructureFailure(err));
      const preempted = lost?.reason === 'Preempted';
      if (lost && (preempted || ++infrastructureRetries <= MAX_INFRASTRUCTURE_RETRIES)) {
        if (preempted) setState(progress, 'preempted');
        if (mayStillRun(err)) {
          // The agent stopped answering: its workload may still run where it cannot reach
          // Temporal. Keep the lease (renewing it) until the workload is known to be gone, or
          // until it must be: a cut-off agent stops it within the fence time, and one that hears
          // of the timeout stops it within its grace period.
          const waitMs = (granted.fenceMs ?? DEFAULT_FENCE_MS) + launchGrace + LAUNCH_HEARTBEAT_TIMEOUT_MS;
          progress.message = `${lost.message}; waiting up to ${Math.round(waitMs / 1000)} s for node ${granted.nodeId} to stop it`;
          await CancellationScope.nonCancellable(() => condition(() => told.stopped !== undefined, waitMs));
        }
        renewing.cancel();
        await queueAgain(lost);
        continue;
      }
      renewing.cancel();
      progress.endedAt = Date.now();
      const limit = limitExceeded(err);
      if (isCancellation(err)) setState(progress, 'cancelled');
      else {
        progress.error = lost
          ? `${lost.reason}: ${lost.message} (gave up after ${attempt} attempts)`
          : limit
            ? `${limit.type}: ${limit.message}`
            : err instanceof Error
              ? err.message
              : String(err);
        setState(progress, 'failed');
      }
      await release();
      // A limit the workload broke fails the step with that type, not as an activity failure.
      if (limit && !lost && !isCancellation(err)) throw limit;
      if (lost && !isCancellation(err)) {
        throw ApplicationFailure.nonRetryable(
          `step ${input.name} gave up after ${attempt} attempts: ${lost.message}`,
          lost.reason,
        );
      }
      throw err;
    } finally {
      launchScope = undefined;
    }
    renewing.cancel();
    // The agent gave the lease back the moment the workload ended, so that the next step starts sooner.
    const releasedByAgent = launched.released === true;

    const result: StepResult = {
      stepId: info.workflowId,
      name: input.name,
      exitCode: launched.exitCode,
      signal: launched.signal,
      nodeId: granted.nodeId,
      gpuIndices,
      outputs: launched.outputs,
      queuedMs: granted.grantedAt - progress.submittedAt,
      runningMs: launched.runningMs,
      logFile: launched.logFile,
      logTail: launched.logTail,
      ...(launched.usage ? { usage: launched.usage } : {}),
    };
    progress.result = result;
    progress.endedAt = Date.now();
    if (held && launched.usage) held.usage = launched.usage;
    if (launched.exitCode !== 0) {
      const how = launched.signal
        ? `was killed by ${launched.signal}`
        : `exited with code ${String(launched.exitCode)}`;
      progress.error = `${input.name} ${how}`;
      setState(progress, 'failed');
      await release(releasedByAgent);
      throw ApplicationFailure.nonRetryable(`step ${input.name} ${how}`, NON_ZERO_EXIT, result);
    }
    setState(progress, 'succeeded');
    await release(releasedByAgent);
    return result;
  }
}

/** How long a step waits for a silent node to stop its workload when the lease does not say, ms. */
export const DEFAULT_FENCE_MS = 60_000;

/**
 * A launch's heartbeat timeout, ms: an agent that hears nothing back learns of a timeout at its
 * next heartbeat, which the SDK sends within this.
 */
export const LAUNCH_HEARTBEAT_TIMEOUT_MS = 20_000;

/**
 * True when a launch ended without word from its agent (its heartbeats stopped, or it ran past its
 * time), so that its workload may still run. A launch that never started cannot.
 */
function mayStillRun(err: unknown): boolean {
  if (!(err instanceof ActivityFailure)) return false;
  const cause = err.cause;
  return cause instanceof TimeoutFailure && cause.timeoutType !== 'SCHEDULE_TO_START';
}

/**
 * Renews the lease at a third of its TTL until cancelled. The renewal names this workflow, so that
 * the pool can tell it when it no longer holds the lease.
 */
function renewWhileRunning(
  pool: ReturnType<typeof getExternalWorkflowHandle>,
  lease: Lease,
  requestId: string,
): CancellationScope {
  const ttl = lease.ttlMs ?? (lease.expiresAt !== undefined ? lease.expiresAt - lease.grantedAt : 60_000);
  const workflowId = workflowInfo().workflowId;
  const scope = new CancellationScope();
  scope
    .run(async () => {
      for (;;) {
        await sleep(Math.max(1000, Math.floor(ttl / 3)));
        await pool.signal(renewSignal, { requestId, workflowId });
      }
    })
    .catch(() => undefined);
  return scope;
}

/** A launch that failed because its node or agent went away, rather than because of the workload. */
function infrastructureFailure(err: unknown): Interrupted | undefined {
  if (!(err instanceof ActivityFailure)) return undefined;
  const cause = err.cause;
  if (cause instanceof TimeoutFailure) {
    return { reason: 'NodeUnresponsive', message: `the agent stopped answering (${cause.timeoutType ?? 'timeout'})` };
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

/** Sends the acquire signal, turning a missing pool into a clear, non-retryable failure. */
async function askPool(
  handle: ReturnType<typeof getExternalWorkflowHandle>,
  request: AcquireInput,
  pool: string,
): Promise<void> {
  try {
    await handle.signal(acquireSignal, request);
  } catch (err) {
    if (isCancellation(err)) throw err;
    throw ApplicationFailure.nonRetryable(
      `pool "${pool}" is not running (workflow ${poolWorkflowId(pool)}): start it with \`allot worker\` or \`allot dev\``,
      'PoolNotRunning',
    );
  }
}

function setState(progress: StepProgress, state: StepState): void {
  progress.state = state;
  upsertSearchAttributes([{ key: SA.AllotState, value: state }]);
  metricsSink().stepState(state);
}

/** The failure of a launch whose workload broke its memory or time limit, as the step's own failure. */
function limitExceeded(err: unknown): ApplicationFailure | undefined {
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
