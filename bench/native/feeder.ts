/**
 * A backlog for the baseline's scale figure: one workflow that schedules `count` workload
 * activities at once on a hardware task queue (at most 2,000 pending activities per workflow, so
 * several feeders make a larger backlog).
 */
import { proxyActivities, sleep } from '@temporalio/workflow';
import type { NativeActivities } from './activities';

/** Schedules `count` activities on `taskQueue` and waits for them (they wait in the backlog). */
export async function nativeBacklogFeeder(input: { taskQueue: string; count: number }): Promise<void> {
  const { runWorkload } = proxyActivities<NativeActivities>({
    taskQueue: input.taskQueue,
    scheduleToCloseTimeout: '1 hour',
    retry: { maximumAttempts: 1 },
  });
  const all = Array.from({ length: input.count }, () => runWorkload(['true']).catch(() => null));
  await Promise.race([Promise.all(all), sleep('1 hour')]);
}
