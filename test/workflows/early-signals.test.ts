/**
 * Signals that reach a pool run before its first workflow task (as they do right after a
 * continue-as-new) are handled, not dropped by the catch-all handler for unknown signals, and in
 * the order they arrived.
 */
import { randomUUID } from 'node:crypto';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseResources } from '../../src/core';
import type { AcquireInput } from '../../src/core';
import { noMetricsSinks } from '../../src/workers/metrics';
import {
  acquireSignal,
  nodeHeartbeatSignal,
  poolWorkflowId,
  registerSignal,
  releaseSignal,
  statusQuery,
} from '../../src/workflows/messages';
import type { World } from '../helpers/harness';
import { createWorld, eventually, gpus } from '../helpers/harness';

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

/** Starts a pool on a queue no worker polls yet, so signals wait with the start for its first task. */
async function idlePool(prefix: string) {
  const suffix = randomUUID().slice(0, 8);
  const name = `${prefix}-${suffix}`;
  const taskQueue = `allot-${prefix}-${suffix}`;
  const handle = await world.client.workflow.start('allotPool', {
    taskQueue,
    workflowId: poolWorkflowId(name),
    args: [{ name }],
  });
  return { handle, taskQueue };
}

/** Runs a worker on `taskQueue` while `body` runs. */
async function withWorker(taskQueue: string, body: () => Promise<void>): Promise<void> {
  const worker = await Worker.create({
    connection: world.connection,
    taskQueue,
    workflowBundle: { codePath: inject('workflowBundlePath') },
    sinks: noMetricsSinks(),
    shutdownGraceTime: '1s',
  });
  const running = worker.run();
  try {
    await body();
  } finally {
    worker.shutdown();
    await running;
  }
}

describe('a pool run whose first task carries signals', () => {
  it('handles them in the order they arrived: a stopping heartbeat, then the registration', async () => {
    const { handle, taskQueue } = await idlePool('order');
    const spec = { id: 'n1', cpuMilli: 8_000, memoryMiB: 32_768, gpus: gpus(2), labels: {} };
    // An agent restarting during a continue-as-new: its stopping heartbeat, then its registration.
    await handle.signal(nodeHeartbeatSignal, { nodeId: 'n1', stopping: true });
    await handle.signal(registerSignal, spec, { token: 't1' });
    await withWorker(taskQueue, async () => {
      const status = await eventually(() => handle.query(statusQuery), 20_000, 'the pool to answer');
      // Handled by name, the registration came first and the heartbeat then left the node NotReady.
      expect(status.nodes.map((n) => [n.id, n.status])).toEqual([['n1', 'Ready']]);
      await handle.terminate('test over');
      await Worker.runReplayHistory(
        { workflowBundle: { codePath: inject('workflowBundlePath') }, sinks: noMetricsSinks() },
        await handle.fetchHistory(),
        handle.workflowId,
      );
    });
  });

  it('queues the acquires and takes the releases that arrived before it first ran', async () => {
    const { handle, taskQueue } = await idlePool('early');
    await handle.signal(acquireSignal, request('first'));
    await handle.signal(acquireSignal, request('second'));
    await handle.signal(releaseSignal, { requestId: 'first' });
    await handle.signal(acquireSignal, request('third'));
    await withWorker(taskQueue, async () => {
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
    });
  });
});
