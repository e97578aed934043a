/**
 * A pool picked up by a fresh control worker continues as new at its first live task, so that no
 * long-lived history holds a completed task after a timed-out one (which the SDK can fail to
 * replay). The run it leaves behind still replays.
 */
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseResources } from '../../src/core';
import type { AcquireInput } from '../../src/core';
import { noMetricsSinks } from '../../src/workers/metrics';
import { acquireSignal, acquireUpdate, poolWorkflowId, releaseSignal } from '../../src/workflows/messages';
import { COMPACT_AFTER_REPLAY_MARKER } from '../../src/workflows/versions';
import type { World } from '../helpers/harness';
import { createWorld, eventually, gpus } from '../helpers/harness';

let world: World;

beforeAll(async () => {
  world = await createWorld('compact');
  await world.addAgent({ gpus: gpus(2) });
});
afterAll(async () => world?.close());

function request(id: string, gpu: number): AcquireInput {
  const { request: resources } = parseResources({ gpu, cpu: '100m', memory: '64Mi' });
  if (!resources) throw new Error('bad test request');
  return { requestId: id, owner: { kind: 'client', name: 'compact-test' }, resources, priority: 0, label: id };
}

describe('a pool picked up by a fresh worker', () => {
  it('continues as new at once, keeps its leases and queue, and its old run replays', async () => {
    const handle = world.client.workflow.getHandle(poolWorkflowId(world.pool));
    expect((await handle.executeUpdate(acquireUpdate, { args: [request('held', 2)] })).status).toBe('granted');
    await handle.signal(acquireSignal, request('waiting', 1));
    await eventually(async () => ((await world.status()).queued === 1 ? true : undefined));
    const firstRun = (await handle.describe()).runId;

    // A worker kept alive keeps the run: more work, no new run.
    await handle.signal(acquireSignal, request('waiting-too', 1));
    await eventually(async () => ((await world.status()).queued === 2 ? true : undefined));
    expect((await handle.describe()).runId).toBe(firstRun);

    await world.restartControl();
    // The next task goes to the fresh worker, which replays the run and then carries it on.
    await handle.signal(releaseSignal, { requestId: 'nothing-held' });
    const secondRun = await eventually(
      async () => {
        const { runId } = await handle.describe();
        return runId !== firstRun ? runId : undefined;
      },
      30_000,
      'the pool to continue as new',
    );

    // The new run answers once its first task is done.
    const status = await eventually(() => world.status(), 20_000, 'the new run to answer');
    expect(status.leases.map((l) => l.requestId)).toEqual(['held']);
    expect(status.queue.map((q) => q.requestId)).toEqual(['waiting', 'waiting-too']);

    // The new run was started fresh by this worker: it does not continue as new again.
    await handle.signal(releaseSignal, { requestId: 'held' });
    await eventually(async () => ((await world.status()).leases.length === 2 ? true : undefined));
    expect((await handle.describe()).runId).toBe(secondRun);

    // The old run recorded the decision, and replays to the same continue-as-new.
    const history = await world.client.workflow.getHandle(handle.workflowId, firstRun).fetchHistory();
    const events = history.events ?? [];
    const patches = events.flatMap((e) => {
      const attrs = e.markerRecordedEventAttributes;
      const data = attrs?.markerName === 'core_patch' ? attrs.details?.['patch-data']?.payloads?.[0]?.data : undefined;
      return data ? [(JSON.parse(Buffer.from(data).toString('utf8')) as { id: string }).id] : [];
    });
    const markers = patches.filter((id) => id === COMPACT_AFTER_REPLAY_MARKER);
    expect(markers).toHaveLength(1);
    expect(events.at(-1)?.workflowExecutionContinuedAsNewEventAttributes).toBeTruthy();
    await Worker.runReplayHistory(
      { workflowBundle: { codePath: inject('workflowBundlePath') }, sinks: noMetricsSinks() },
      history,
      handle.workflowId,
    );
  });
});
