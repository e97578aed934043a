/**
 * Pipeline helpers: fan-out with a concurrency cap, and sub-pipelines as child workflows.
 *
 * ```ts
 * const results = await fanOut(seeds, 4, (seed) =>
 *   step({ name: `train-${seed}`, command: ['python', 'train.py', '--seed', String(seed)], resources: { gpu: 1 } }),
 * );
 * const report = await subPipeline(evaluatePipeline, { name: 'evaluate', args: [{ models: results.length }] });
 * ```
 */
import {
  ApplicationFailure,
  CancellationScope,
  ChildWorkflowCancellationType,
  ParentClosePolicy,
  executeChild,
  workflowInfo,
} from '@temporalio/workflow';
import type { Workflow } from '@temporalio/workflow';
import { describeValue } from '../core';

/**
 * Runs `fn` on every item with at most `concurrency` running at once, and returns the results in
 * the order of `items`. Items start in order: item i + concurrency starts when one of the first
 * i + concurrency ends. On the first failure no further item starts, the running ones are
 * cancelled (their steps stop and free what they hold), and that failure is thrown once they have.
 */
export async function fanOut<T, R>(
  items: readonly T[],
  concurrency: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw ApplicationFailure.nonRetryable(
      `fanOut: concurrency must be a whole number from 1 up, got ${describeValue(concurrency)}`,
      'InvalidInput',
    );
  }
  const results: R[] = new Array<R>(items.length);
  const scope = new CancellationScope();
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (failure === undefined && next < items.length) {
      const index = next++;
      try {
        results[index] = await fn(items[index] as T, index);
      } catch (error) {
        if (failure === undefined) {
          failure = { error };
          scope.cancel();
        }
        return;
      }
    }
  };
  await scope.run(() =>
    Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, () => worker())).then(() => undefined),
  );
  if (failure !== undefined) throw failure.error;
  return results;
}

/** Options of a sub-pipeline. */
export interface SubPipelineOptions<W extends Workflow> {
  /** Unique within the parent; the child's id is `<parent id>/<name>`, its steps' `<parent id>/<name>/<step>`. */
  name: string;
  /** Arguments of the child pipeline. */
  args: Parameters<W>;
}

/**
 * Runs another pipeline workflow as a child and returns its result. Cancelling the parent cancels
 * the child and, through it, its steps; `allot run` follows the child's steps too.
 */
export function subPipeline<W extends Workflow>(
  workflow: W | string,
  options: SubPipelineOptions<W>,
): Promise<Awaited<ReturnType<W>>> {
  if (typeof options.name !== 'string' || options.name === '' || /[/#]/.test(options.name)) {
    throw ApplicationFailure.nonRetryable(
      `subPipeline: name must be a non-empty string without "/" or "#", got ${describeValue(options.name)}`,
      'InvalidInput',
    );
  }
  return executeChild<Workflow>(workflow as Workflow, {
    args: options.args as unknown[],
    workflowId: `${workflowInfo().workflowId}/${options.name}`,
    staticSummary: `sub-pipeline ${options.name}`,
    cancellationType: ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED,
    parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
  }) as Promise<Awaited<ReturnType<W>>>;
}
