/**
 * `step()`: runs one step of a pipeline as a child `allotStep` workflow and returns its result.
 * Call it from inside a Temporal workflow; steps in `Promise.all` run in parallel. Step names are
 * unique within a pipeline: the step's id is `<pipeline id>/<name>`.
 */
import { ApplicationFailure, ChildWorkflowCancellationType, executeChild, workflowInfo } from '@temporalio/workflow';
import { formatIssues } from '../core';
import { allotStep } from './step';
import type { StepInput, StepResult } from './step-types';
import { validateStepInput } from './step-validation';

/**
 * Runs a step and waits for it. Options are validated before anything is queued; every problem is
 * reported at once in an `InvalidInput` failure.
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
  // The step id is stable across reruns of the same pipeline id, so checkpoints carry over.
  const workflowId = `${workflowInfo().workflowId}/${input.name}`;
  try {
    return await executeChild(allotStep, {
      args: [input],
      workflowId,
      cancellationType: ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED,
    });
  } catch (err) {
    if (err instanceof Error && err.name === 'WorkflowExecutionAlreadyStartedError') {
      throw ApplicationFailure.nonRetryable(
        `step name ${JSON.stringify(input.name)} is used twice in pipeline ${workflowInfo().workflowId}; give each step a unique name`,
        'InvalidInput',
      );
    }
    throw err;
  }
}
