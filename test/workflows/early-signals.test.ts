/**
 * Signals that reach a pool run before its first workflow task (as they do right after a
 * continue-as-new) are handled, not dropped by the catch-all handler for unknown signals.
 */
import { randomUUID } from 'node:crypto';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseResources } from '../../src/core';
import type { AcquireInput } from '../../src/core';
import { noMetricsSinks } from '../../src/workers/metrics';
import { acquireSignal, poolWorkflowId, releaseSignal, statusQuery } from '../../src/workflows/messages';
import type { World } from '../helpers/harness';
import { createWorld, eventually } from '../helpers/harness';

let world: World;

beforeAll(async () => {
  world = await createWorld('early');
});
afterAll(async () => world?.close());

function request(id: string): AcquireInput {
  const { request: resources } = parseResources({ gpu: 1, cpu: '100m', memory: '64Mi' });
  if (!resources) throw new Error('bad test request');
  return { requestId: id, owner: { kind: 'client', name: 'early-test' }, resources, priority: 0, label: id };
}

describe('a pool run whose first task carries signals', () => {
  it('queues the acquires and takes the releases that arrived before it first ran', async () => {
    const suffix = randomUUID().slice(0, 8);
    const name = `early-${suffix}`;
    const taskQueue = `allot-early-${suffix}`;
    // No worker polls this queue yet, so the signals wait with the start for the first task.
    const handle = await world.client.workflow.start('allotPool', {
      taskQueue,
      workflowId: poolWorkflowId(name),
      args: [{ name }],
    });
    await handle.signal(acquireSignal, request('first'));
    await handle.signal(acquireSignal, request('second'));
    await handle.signal(releaseSignal, { requestId: 'first' });
    await handle.signal(acquireSignal, request('third'));

    const worker = await Worker.create({
      connection: world.connection,
      taskQueue,
      workflowBundle: { codePath: inject('workflowBundlePath') },
      sinks: noMetricsSinks(),
      shutdownGraceTime: '1s',
    });
    const running = worker.run();
    try {
      const status = await eventually(() => handle.query(statusQuery), 20_000, 'the pool to answer');
      // With no node registered, requests wait; the released one is gone.
      expect(status.queue.map((q) => q.requestId)).toEqual(['second', 'third']);
      expect(status.queue.every((q) => q.reason === 'NoNodes')).toBe(true);
      await handle.terminate('test over');
      await Worker.runReplayHistory(
        { workflowBundle: { codePath: inject('workflowBundlePath') }, sinks: noMetricsSinks() },
        await handle.fetchHistory(),
        handle.workflowId,
      );
    } finally {
      worker.shutdown();
      await running;
    }
  });
});
