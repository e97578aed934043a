/**
 * The baseline: Temporal's native way to cap GPU concurrency. Each workload is a workflow that runs
 * one activity on the node's hardware task queue, where a worker with
 * `maxConcurrentActivityTaskExecutions` equal to its GPU count polls.
 */
import { proxyActivities } from '@temporalio/workflow';
import type { NativeActivities } from './activities';

/** Input of {@link nativeWorkload}. */
export interface NativeWorkloadInput {
  /** The hardware task queue of the node. */
  taskQueue: string;
  command: string[];
}

/** One workload, run as a plain activity on a hardware task queue. */
export async function nativeWorkload(input: NativeWorkloadInput): Promise<number | null> {
  const { runWorkload } = proxyActivities<NativeActivities>({
    taskQueue: input.taskQueue,
    startToCloseTimeout: '10 minutes',
    retry: { maximumAttempts: 1 },
  });
  return runWorkload(input.command);
}

export { nativeBacklogFeeder } from './feeder';
