/**
 * A preempt that reaches a step in the same workflow task as its grant stops the step before it
 * launches. The step runs on a task queue of its own: once it waits in the pool's queue its worker
 * stops, a grant and a preempt of that grant are signalled, and the next worker's first task sees
 * both at once.
 */
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Lease } from '../../src/core';
import { noMetricsSinks } from '../../src/workers/metrics';
import { grantSignal, preemptSignal } from '../../src/workflows/messages';
import type { StepResult } from '../../src/workflows/step-types';
import type { World } from '../helpers/harness';
import { createWorld, eventually, gpus } from '../helpers/harness';

let world: World;
let nodeId: string;

beforeAll(async () => {
  world = await createWorld('early-preempt');
  ({ nodeId } = await world.addAgent({ gpus: gpus(1) }));
});
afterAll(async () => world?.close());

describe('a preempt in the task of its grant', () => {
  it('never launches the preempted grant; the step queues again and runs under a lease of its own', async () => {
    // The node's only GPU is busy for a few seconds, so that the step waits in the queue.
    const holder = await world.client.workflow.start('allotStep', {
      taskQueue: world.taskQueue,
      workflowId: `early-holder-${Date.now()}`,
      args: [{ name: 'holder', pool: world.pool, command: ['sleep', '6'], resources: { gpu: 1 } }],
    });
    await eventually(async () => ((await world.status()).leases.some((l) => l.label === 'holder') ? true : undefined));
    const taskQueue = `${world.taskQueue}-own`;
    const worker = (): Promise<Worker> =>
      Worker.create({
        connection: world.connection,
        taskQueue,
        workflowBundle: { codePath: inject('workflowBundlePath') },
        sinks: noMetricsSinks(),
      });
    const workflowId = `early-preempt-${Date.now()}`;
    const handle = await world.client.workflow.start('allotStep', {
      taskQueue,
      workflowId,
      args: [
        {
          name: 'early',
          pool: world.pool,
          command: ['sh', '-c', 'echo "attempt $ALLOT_ATTEMPT"'],
          resources: { gpu: 1 },
        },
      ],
    });
    const requestId = `${workflowId}#${handle.firstExecutionRunId}`;
    // The step asks the pool and waits; then its worker stops.
    await (
      await worker()
    ).runUntil(
      eventually(async () => ((await world.status()).queue.some((q) => q.requestId === requestId) ? true : undefined)),
    );
    // With no worker, a grant and a preempt of it arrive: the next task sees both at once.
    const lease: Lease = {
      leaseId: 'granted-then-preempted',
      requestId,
      owner: { kind: 'workflow', workflowId },
      nodeId,
      cpuMilli: 1000,
      memoryMiB: 1024,
      gpus: [{ index: 0, milli: 1000, memoryMiB: 0 }],
      priority: 0,
      team: 'default',
      label: 'early',
      submittedAt: Date.now(),
      grantedAt: Date.now(),
    };
    await handle.signal(grantSignal, lease);
    await handle.signal(preemptSignal, { requestId, leaseId: lease.leaseId, message: 'preempted by a later arrival' });
    const result = (await (await worker()).runUntil(handle.result())) as StepResult;
    await holder.result();
    expect(result.exitCode).toBe(0);
    expect(result.logTail.join('\n')).toContain('attempt 2');
    // One launch only, and not of the preempted grant.
    const history = await handle.fetchHistory();
    const launches = (history.events ?? []).filter((e) => e.activityTaskScheduledEventAttributes);
    expect(launches).toHaveLength(1);
    const input = launches[0]?.activityTaskScheduledEventAttributes?.input?.payloads?.[0]?.data;
    const launched = JSON.parse(Buffer.from(input ?? new Uint8Array()).toString('utf8')) as { leaseId: string };
    expect(launched.leaseId).not.toBe('granted-then-preempted');
  }, 120_000);
});
