/**
 * `allotStep`: one step as an acquire → launch → release saga. The release runs in a
 * non-cancellable scope, so a step that fails or is cancelled still gives its resources back.
 *
 * While it runs, the step renews its lease. When the pool takes the lease back (it expired, or
 * the node was lost), or the launch is lost with its node (heartbeat timeout), the step stops what
 * is left of the workload, releases, and queues again with its original submit time, as attempt
 * n + 1 with the same checkpoint directory. What each attempt comes to is decided in
 * `step-outcome.ts`; this file acts on it.
 */
import { ApplicationFailure, CancellationScope, condition } from '@temporalio/workflow';
import { formatIssues } from '../core';
import { acquire, waitToAskAgain } from './step-acquire';
import { launchOnGrant, limitExceeded } from './step-attempt';
import type { AttemptEnd, Outcome } from './step-outcome';
import { decideOutcome } from './step-outcome';
import { StepRun } from './step-run';
import type { StepInput, StepResult } from './step-types';
import { validateStepInput } from './step-validation';

export { DEFAULT_GRACE_PERIOD_MS } from './step-run';
export {
  DEFAULT_FENCE_MS,
  LAUNCH_HEARTBEAT_TIMEOUT_MS,
  MAX_INFRASTRUCTURE_RETRIES,
  QUEUE_FULL_RETRY_MS,
} from './step-outcome';

/** The step workflow. */
export async function allotStep(input: StepInput): Promise<StepResult> {
  const { request, issues } = validateStepInput(input);
  if (!request || issues.length > 0)
    throw ApplicationFailure.nonRetryable(`invalid step options:\n${formatIssues(issues)}`, 'InvalidInput', issues);
  const run = new StepRun(input, request);
  const decide = (end: AttemptEnd, attempt: number): Outcome =>
    decideOutcome(end, {
      name: input.name,
      attempt,
      infrastructureRetries: run.infrastructureRetries,
      cancelled: run.cancelled,
    });

  for (let attempt = 1; ; attempt++) {
    run.beginAttempt(attempt);
    const answer = await acquire(run);
    if (answer.lease) run.hold(answer.lease);
    const granted = decide(answer.end, attempt);
    if (granted.kind === 'askAgainLater') {
      await waitToAskAgain(run, granted.why, granted.afterMs);
      continue;
    }
    if (granted.kind === 'requeue') {
      await requeue(run, granted, attempt);
      continue;
    }
    if (granted.kind !== 'launch' || !answer.lease) return fail(run, granted, { held: answer.lease !== undefined });

    const ended = await launchOnGrant(run, answer.lease, attempt);
    if ('failed' in ended) {
      const outcome = decide({ kind: 'launchFailed', ...ended.facts }, attempt);
      if (outcome.kind === 'requeue') {
        await requeue(run, outcome, attempt);
        continue;
      }
      run.stopRenewing();
      return fail(run, outcome, { held: true, err: ended.failed });
    }
    run.stopRenewing();
    const { launched } = ended;
    // The agent gave the lease back the moment the workload ended, so that the next step starts sooner.
    const releasedByAgent = launched.released === true;
    const result: StepResult = {
      stepId: run.info.workflowId,
      name: input.name,
      exitCode: launched.exitCode,
      signal: launched.signal,
      nodeId: answer.lease.nodeId,
      gpuIndices: answer.lease.gpus.map((g) => g.index),
      outputs: launched.outputs,
      ...(launched.artifacts ? { artifacts: launched.artifacts } : {}),
      ...(launched.checkpoint ? { checkpoint: launched.checkpoint } : {}),
      queuedMs: answer.lease.grantedAt - run.progress.submittedAt,
      runningMs: launched.runningMs,
      logFile: launched.logFile,
      logTail: launched.logTail,
      ...(launched.usage ? { usage: launched.usage } : {}),
    };
    run.progress.result = result;
    run.progress.endedAt = Date.now();
    run.noteUsage(launched.usage);
    const outcome = decide({ kind: 'exited', exitCode: launched.exitCode, signal: launched.signal }, attempt);
    if (outcome.kind !== 'succeed') return fail(run, outcome, { held: true, releasedByAgent, result });
    run.setState('succeeded');
    await run.release(releasedByAgent);
    return result;
  }
}

/**
 * Queues the step again as the next attempt. A launch whose workload may still run keeps its
 * lease (renewing it) until the workload is known to be gone, or until it must be.
 */
async function requeue(run: StepRun, outcome: Outcome & { kind: 'requeue' }, attempt: number): Promise<void> {
  run.infrastructureRetries = outcome.infrastructureRetries;
  if (outcome.preempted) run.setState('preempted');
  if (outcome.waitForStopMs !== undefined) {
    const waitMs = outcome.waitForStopMs;
    run.progress.message = `${outcome.why.message}; waiting up to ${Math.round(waitMs / 1000)} s for node ${run.progress.nodeId} to stop it`;
    await CancellationScope.nonCancellable(() => condition(() => run.told.stopped !== undefined, waitMs));
  }
  run.stopRenewing();
  await run.queueAgain(outcome.why, attempt);
}

/**
 * Ends the step with a failure, or with its cancellation: records it, gives back the lease it
 * holds (`held`), and throws. `err`: the launch's failure; `result`: the workload's result.
 */
async function fail(
  run: StepRun,
  outcome: Outcome,
  how: { held: boolean; releasedByAgent?: boolean; err?: unknown; result?: StepResult },
): Promise<never> {
  if (how.held) run.progress.endedAt = Date.now();
  if (outcome.kind === 'fail') {
    run.progress.error = outcome.error;
    run.setState('failed');
  } else run.setState('cancelled');
  if (how.held) await run.release(how.releasedByAgent);
  if (outcome.kind !== 'fail') throw how.err;
  const failure = outcome.failure;
  if (failure.cause === 'limit') throw limitExceeded(how.err);
  if (failure.cause === 'launch') throw how.err;
  const details = failure.withResult ? [how.result] : [];
  throw ApplicationFailure.nonRetryable(failure.message, failure.type, ...details);
}
