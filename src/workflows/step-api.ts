/**
 * `step()`: runs one step of a pipeline as a child `allotStep` workflow and returns its result.
 * Call it from inside a Temporal workflow; steps in `Promise.all` run in parallel. Step names are
 * unique within a pipeline: the step's id is `<pipeline id>/<name>`.
 */
import {
  ApplicationFailure,
  ChildWorkflowCancellationType,
  ParentClosePolicy,
  executeChild,
  isCancellation,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import { formatIssues } from '../core';
import { NON_ZERO_EXIT } from './failures';
import { describeResources, stepEnded, stepStarted } from './pipeline-details';
import { allotStep } from './step';
import type { StepInput, StepResult, StepRetryPolicy } from './step-types';
import { validateStepInput } from './step-validation';

/** The retry policy of a step that names none: one attempt. */
export const DEFAULT_STEP_RETRY: Required<StepRetryPolicy> = {
  maximumAttempts: 1,
  initialIntervalMs: 1000,
  backoffCoefficient: 2,
  maximumIntervalMs: 100_000,
  nonRetryableExitCodes: [],
};

/**
 * Runs a step and waits for it. Options are validated before anything is queued; every problem is
 * reported at once in an `InvalidInput` failure. A workload that exits non-zero fails the step
 * with a `NonZeroExit` failure carrying the result (log tail included), after the retries of
 * `retry`; cancelling the pipeline cancels the step, which stops its workload and frees what it held.
 *
 * ```ts
 * const train = await step({ name: 'train', command: ['python', 'train.py'], resources: { gpu: 2, memory: '16Gi' } });
 * ```
 */
export async function step(input: StepInput): Promise<StepResult> {
  const { issues } = validateStepInput(input);
  if (issues.length > 0) {
    throw ApplicationFailure.nonRetryable(
      `invalid options for step ${JSON.stringify(input?.name)}:\n${formatIssues(issues)}`,
      'InvalidInput',
      issues,
    );
  }
  const retry = retryPolicy(input.retry);
  // The step id is stable across reruns of the pipeline id and across retries, so checkpoints carry over.
  const workflowId = `${workflowInfo().workflowId}/${input.name}`;
  for (let attempt = 1; ; attempt++) {
    stepStarted(input, attempt);
    try {
      const result = await executeChild(allotStep, {
        args: [attempt === 1 ? input : { ...input, firstAttempt: (input.firstAttempt ?? 1) + attempt - 1 }],
        workflowId,
        staticSummary: `${input.name} · ${describeResources(input)}`,
        cancellationType: ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED,
        // A pipeline that ends (fails, is terminated or times out) cancels its running steps, which release.
        parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
      });
      stepEnded(input.name, 'succeeded', result);
      return result;
    } catch (err) {
      if (err instanceof Error && err.name === 'WorkflowExecutionAlreadyStartedError') {
        stepEnded(input.name, 'failed', undefined, 'name used twice');
        throw ApplicationFailure.nonRetryable(
          `step name ${JSON.stringify(input.name)} is used twice in pipeline ${workflowInfo().workflowId}; give each step a unique name`,
          'InvalidInput',
        );
      }
      if (isCancellation(err)) {
        stepEnded(input.name, 'cancelled');
        throw err;
      }
      const failed = nonZeroExit(err);
      const code = failed?.exitCode;
      const retryable =
        failed !== undefined && !(typeof code === 'number' && retry.nonRetryableExitCodes.includes(code));
      if (retryable && attempt < retry.maximumAttempts) {
        const wait = backoff(retry, attempt);
        stepEnded(
          input.name,
          'retrying',
          failed,
          `exit code ${String(code)}; retry ${attempt + 1} of ${retry.maximumAttempts} in ${(wait / 1000).toFixed(1)}s`,
        );
        await sleep(wait);
        continue;
      }
      stepEnded(input.name, 'failed', failed, failed ? undefined : rootMessage(err));
      throw err;
    }
  }
}

/** The retry policy with its defaults filled in. */
export function retryPolicy(retry: StepRetryPolicy | undefined): Required<StepRetryPolicy> {
  const initial = retry?.initialIntervalMs ?? DEFAULT_STEP_RETRY.initialIntervalMs;
  return {
    maximumAttempts: retry?.maximumAttempts ?? DEFAULT_STEP_RETRY.maximumAttempts,
    initialIntervalMs: initial,
    backoffCoefficient: retry?.backoffCoefficient ?? DEFAULT_STEP_RETRY.backoffCoefficient,
    maximumIntervalMs: retry?.maximumIntervalMs ?? Math.max(initial * 100, initial),
    nonRetryableExitCodes: retry?.nonRetryableExitCodes ?? DEFAULT_STEP_RETRY.nonRetryableExitCodes,
  };
}

/** Wait before retry `attempt + 1`, ms: initial × coefficient^(attempt − 1), capped. */
export function backoff(retry: Required<StepRetryPolicy>, attempt: number): number {
  return Math.min(retry.initialIntervalMs * retry.backoffCoefficient ** (attempt - 1), retry.maximumIntervalMs);
}

/** The step result carried by a `NonZeroExit` failure anywhere in the error's causes. */
function nonZeroExit(err: unknown): StepResult | undefined {
  let e: unknown = err;
  while (e instanceof Error) {
    if (e instanceof ApplicationFailure && e.type === NON_ZERO_EXIT) return e.details?.[0] as StepResult | undefined;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

function rootMessage(err: unknown): string {
  let e: unknown = err;
  while (e instanceof Error && (e as { cause?: unknown }).cause instanceof Error) e = (e as { cause?: unknown }).cause;
  return e instanceof Error ? e.message : String(e);
}
