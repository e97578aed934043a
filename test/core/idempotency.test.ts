import { describe, expect, it } from 'vitest';
import type { AcquireInput, NodeSpec } from '../../src/core';
import { PoolState, emptyPoolState, parseResources } from '../../src/core';

const node: NodeSpec = {
  id: 'n1',
  cpuMilli: 8000,
  memoryMiB: 32768,
  gpus: [0, 1].map((index) => ({ index, model: 'A100', memoryMiB: 81920 })),
  labels: {},
};
const resources = parseResources({ gpu: 1 }).request;
const request = (id: string): AcquireInput => {
  if (!resources) throw new Error('bad fixture');
  return { requestId: id, owner: { kind: 'workflow', workflowId: `w-${id}` }, resources };
};

function pool(): PoolState {
  const p = new PoolState(emptyPoolState('p'));
  p.registerNode(node, 0);
  return p;
}

describe('repeated messages change nothing the second time', () => {
  it('a repeated acquire of a queued or granted request neither queues nor grants it twice', () => {
    const p = pool();
    p.acquire(request('r1'), 0);
    p.acquire(request('r1'), 1);
    expect(p.queue).toHaveLength(1);
    expect(p.schedule(2)).toHaveLength(1);
    expect(p.acquire(request('r1'), 3)).toMatchObject({ status: 'granted' });
    expect(p.schedule(4)).toEqual([]);
    expect(p.leases).toHaveLength(1);
  });

  it('a late duplicate acquire after release does not queue the request again', () => {
    const p = pool();
    p.acquire(request('r1'), 0);
    p.schedule(0);
    expect(p.release('r1')).toBeDefined();
    expect(p.acquire(request('r1'), 5)).toEqual({ status: 'released' });
    expect(p.queue).toEqual([]);
  });

  it('a repeated release is a no-op', () => {
    const p = pool();
    p.acquire(request('r1'), 0);
    p.acquire(request('r2'), 0);
    p.schedule(0);
    p.release('r1');
    expect(p.release('r1')).toBeUndefined();
    expect(p.leases.map((l) => l.requestId)).toEqual(['r2']);
  });

  it('a repeated renew only moves the expiry', () => {
    const p = pool();
    p.acquire(request('r1'), 0);
    p.schedule(0);
    p.renew('r1', 10_000);
    const once = JSON.stringify(p.toJSON());
    p.renew('r1', 10_000);
    expect(JSON.stringify(p.toJSON())).toBe(once);
  });

  it('a repeated register keeps the leases on the node and counts it once', () => {
    const p = pool();
    p.acquire(request('r1'), 0);
    p.schedule(0);
    expect(p.registerNode(node, 1)).toBe('updated');
    expect(p.nodes).toHaveLength(1);
    expect(p.leases).toHaveLength(1);
  });

  it('the state survives a JSON round trip (continue-as-new) with its idempotency keys', () => {
    const p = pool();
    p.acquire(request('r1'), 0);
    p.schedule(0);
    p.release('r1');
    const next = new PoolState(JSON.parse(JSON.stringify(p.toJSON())) as ReturnType<PoolState['toJSON']>);
    expect(next.acquire(request('r1'), 9)).toEqual({ status: 'released' });
    expect(next.nodes).toHaveLength(1);
  });
});
