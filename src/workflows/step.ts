/**
 * `allotStep`: one step as an acquire → launch → release saga. The release runs in a
 * non-cancellable scope, so a step that fails or is cancelled still gives its resources back.
 */
import {
  ActivityCancellationType,
  ApplicationFailure,
  CancellationScope,
  condition,
  getExternalWorkflowHandle,
  isCancellation,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Lease, Rejection, ResourceRequest } from '../core';
import { formatIssues } from '../core';
import type { AllotActivities } from '../activities';
import {
  DEFAULT_POOL,
  acquireSignal,
  grantSignal,
  nodeTaskQueue,
  poolWorkflowId,
  progressQuery,
  rejectSignal,
  releaseSignal,
} from './messages';
import { SEARCH_ATTRIBUTES as SA } from './search-attributes';
import type { StepInput, StepProgress, StepResult, StepState } from './step-types';
import { validateStepInput } from './step-validation';

/** Default grace period between SIGTERM and SIGKILL, ms. */
export const DEFAULT_GRACE_PERIOD_MS = 30_000;

/** The step workflow. */
export async function allotStep(input: StepInput): Promise<StepResult> {
  const info = workflowInfo();
  const { request, issues } = validateStepInput(input);
  if (!request)
    throw ApplicationFailure.nonRetryable(`invalid step options:\n${formatIssues(issues)}`, 'InvalidInput', issues);
  const pool = input.pool ?? DEFAULT_POOL;
  const requestId = `${info.workflowId}#${info.runId}`;
  const progress: StepProgress = {
    stepId: info.workflowId,
    requestId,
    name: input.name,
    state: 'queued',
    pool,
    submittedAt: Date.now(),
    reason: 'Pending',
    message: 'asking the pool',
  };
  setHandler(progressQuery, () => progress);

  let lease: Lease | undefined;
  let rejection: Rejection | undefined;
  setHandler(grantSignal, (granted) => {
    if (granted.requestId === requestId) lease ??= granted;
  });
  setHandler(rejectSignal, (r) => {
    if (r.requestId === requestId) rejection = r;
  });

  upsertSearchAttributes([
    { key: SA.AllotPool, value: pool },
    { key: SA.AllotStep, value: input.name },
    { key: SA.AllotTeam, value: input.team ?? 'default' },
    { key: SA.AllotPriority, value: input.priority ?? 0 },
  ]);
  setState(progress, 'queued');

  const poolHandle = getExternalWorkflowHandle(poolWorkflowId(pool));
  const release = (): Promise<void> =>
    CancellationScope.nonCancellable(() => poolHandle.signal(releaseSignal, { requestId }));

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
      },
      pool,
    );
    await condition(() => lease !== undefined || rejection !== undefined);
  } catch (err) {
    if (isCancellation(err)) {
      await release();
      setState(progress, 'cancelled');
    }
    throw err;
  }
  if (rejection || !lease) {
    const r = rejection ?? { reason: 'Unschedulable', message: 'rejected by the pool' };
    progress.error = `${r.reason}: ${r.message}`;
    setState(progress, 'failed');
    throw ApplicationFailure.nonRetryable(`step ${input.name} cannot be scheduled: ${r.message}`, r.reason);
  }

  const granted = lease;
  const gpuIndices = granted.gpus.map((g) => g.index);
  const gpuFraction =
    granted.gpus.length === 1 && granted.gpus[0] && granted.gpus[0].milli < 1000
      ? granted.gpus[0].milli / 1000
      : undefined;
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

  const grace = input.gracePeriodMs ?? DEFAULT_GRACE_PERIOD_MS;
  const { launch } = proxyActivities<AllotActivities>({
    taskQueue: nodeTaskQueue(granted.nodeId),
    scheduleToStartTimeout: '5 minutes',
    startToCloseTimeout: input.timeLimitMs !== undefined ? input.timeLimitMs + grace + 10_000 : '30 days',
    heartbeatTimeout: '20 seconds',
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: { maximumAttempts: 1 },
  });
  try {
    const launched = await launch({
      stepId: info.workflowId,
      name: input.name,
      attempt: 1,
      leaseId: granted.leaseId,
      command: input.command,
      env: input.env ?? {},
      cwd: input.cwd,
      gpuIndices,
      gpuFraction,
      gracePeriodMs: grace,
    });
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
    };
    progress.result = result;
    progress.endedAt = Date.now();
    if (launched.exitCode !== 0) {
      const how = launched.signal
        ? `was killed by ${launched.signal}`
        : `exited with code ${String(launched.exitCode)}`;
      progress.error = `${input.name} ${how}`;
      setState(progress, 'failed');
      throw ApplicationFailure.nonRetryable(`step ${input.name} ${how}`, 'NonZeroExit', result);
    }
    setState(progress, 'succeeded');
    return result;
  } catch (err) {
    progress.endedAt ??= Date.now();
    if (isCancellation(err)) setState(progress, 'cancelled');
    else if (progress.state === 'running') {
      progress.error = err instanceof Error ? err.message : String(err);
      setState(progress, 'failed');
    }
    throw err;
  } finally {
    await release();
  }
}

/** Sends the acquire signal, turning a missing pool into a clear, non-retryable failure. */
async function askPool(
  handle: ReturnType<typeof getExternalWorkflowHandle>,
  request: {
    requestId: string;
    owner: { kind: 'workflow'; workflowId: string };
    resources: ResourceRequest;
    priority: number;
    team: string;
    label: string;
    submittedAt: number;
  },
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
}
