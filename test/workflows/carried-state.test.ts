/**
 * A pool whose queue is too large to carry as plain JSON continues as new with its state deflated,
 * and keeps every request and its order.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseResources } from '../../src/core';
import type { AcquireInput, ResourceRequest } from '../../src/core';
import { acquireSignal, acquireUpdate, poolWorkflowId, releaseUpdate } from '../../src/workflows/messages';
import { PLAIN_STATE_LIMIT } from '../../src/workflows/carry';
import type { World } from '../helpers/harness';
import { createWorld, eventually, gpus } from '../helpers/harness';

let world: World;

beforeAll(async () => {
  world = await createWorld('carried');
  await world.addAgent({ gpus: gpus(1) });
});
afterAll(async () => world?.close());

function resources(spec: Record<string, unknown>): ResourceRequest {
  const { request } = parseResources(spec);
  if (!request) throw new Error('bad test request');
  return request;
}

function request(id: string, gpu: number): AcquireInput {
  return {
    requestId: id,
    owner: { kind: 'client', name: 'carried-test' },
    resources: resources({ gpu, cpu: '100m', memory: '64Mi' }),
    priority: 0,
    // Long labels make the state large with few requests, so the test stays short.
    label: `${id} ${'a long label, as a pipeline with many words in its step names might give '.repeat(3)}`,
  };
}

describe('continue-as-new with a large queue', () => {
  it('carries 4,500 queued requests deflated across continue-as-new, in order', async () => {
    const handle = world.client.workflow.getHandle(poolWorkflowId(world.pool));
    const blocker = await handle.executeUpdate(acquireUpdate, { args: [request('blocker', 1)] });
    expect(blocker.status).toBe('granted');
    const firstRun = (await handle.describe()).runId;

    const count = 4_500;
    let next = 0;
    const send = async (upTo: number): Promise<void> => {
      while (next < upTo) {
        const id = `q${String(next++).padStart(5, '0')}`;
        await handle.signal(acquireSignal, request(id, 1));
      }
    };
    // The first ones one by one, so that their order is known; the rest sixteen at a time.
    await send(20);
    await Promise.all(Array.from({ length: 16 }, () => send(count)));

    // Temporal suggests continue-as-new past 4,096 events; the pool follows once its signals are in.
    const status = await eventually(
      async () => {
        const s = await world.status();
        return s.queued === count ? s : undefined;
      },
      120_000,
      'all requests queued',
    );
    await eventually(
      async () => ((await handle.describe()).runId !== firstRun ? true : undefined),
      120_000,
      'the pool to continue as new',
    );
    // The status query lists the first 1,000 only: all 4,500 would be over a query's 2 MiB.
    expect(status.queue).toHaveLength(1_000);
    expect(status.queuedByTeam).toEqual([{ team: 'default', count, gpuMilli: count * 1000 }]);
    const plainBytes = (JSON.stringify(status.queue).length * count) / status.queue.length;
    expect(plainBytes).toBeGreaterThan(PLAIN_STATE_LIMIT);

    // The new run started from the deflated state: its second argument is binary.
    const described = await handle.describe();
    const history = await world.client.workflow.getHandle(handle.workflowId, described.runId).fetchHistory();
    const started = history.events?.[0]?.workflowExecutionStartedEventAttributes;
    const payloads = started?.input?.payloads ?? [];
    expect(payloads).toHaveLength(2);
    expect(Buffer.from(payloads[1]?.metadata?.encoding ?? new Uint8Array()).toString()).toBe('binary/plain');
    expect(payloads[1]?.data?.length ?? 0).toBeLessThan(plainBytes / 4);

    // Nothing lost, the order kept, and the pool still schedules: the head of the queue runs next.
    const after = await world.status();
    expect(after.queued).toBe(count);
    expect(after.queue.map((q) => q.requestId).slice(0, 3)).toEqual(['q00000', 'q00001', 'q00002']);
    await handle.executeUpdate(releaseUpdate, { args: ['blocker'] });
    await eventually(
      async () => ((await world.status()).leases.some((l) => l.requestId === 'q00000') ? true : undefined),
      30_000,
      'the head of the queue to be granted',
    );
  }, 300_000);
});
