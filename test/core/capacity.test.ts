import { describe, expect, it } from 'vitest';
import type { NodeRecord, PendingRequest, Reason, ResourceRequest } from '../../src/core';
import {
  DEFAULT_SCALING,
  PoolState,
  SCALING_TIMEOUT_MS,
  TEMPLATE_LABEL,
  decide,
  emptyPoolState,
  parseAutoscaleFlag,
  parseResources,
  planScaling,
  unmetDemand,
} from '../../src/core';

function req(spec: Parameters<typeof parseResources>[0]): ResourceRequest {
  const r = parseResources(spec).request;
  if (!r) throw new Error('bad fixture');
  return r;
}

const a100x2 = (() => {
  const t = parseAutoscaleFlag('a100x2=3', {}).template;
  if (!t) throw new Error('bad fixture');
  return t;
})();

function pending(
  id: string,
  resources: ResourceRequest,
  submittedAt = 0,
  reason: Reason = 'WaitingForCapacity',
): PendingRequest {
  return {
    requestId: id,
    owner: { kind: 'client', name: 't' },
    resources,
    priority: 0,
    team: 'default',
    label: id,
    submittedAt,
    seq: 0,
    reason,
    message: '',
  };
}

const cpuNode: NodeRecord = {
  spec: { id: 'cpu', cpuMilli: 2000, memoryMiB: 4096, gpus: [], labels: {} },
  status: 'Ready',
  registeredAt: 0,
};

describe('node templates', () => {
  it('keeps a request that fits no node but fits a template waiting for capacity', () => {
    const d = decide({ nodes: [cpuNode], leases: [], queue: [pending('r', req({ gpu: 2 }))], templates: [a100x2] });
    expect(d.rejections).toEqual([]);
    expect(d.waiting).toMatchObject([{ requestId: 'r', reason: 'WaitingForCapacity' }]);
  });

  it('still rejects at once a request that fits neither a node nor a template', () => {
    const d = decide({ nodes: [cpuNode], leases: [], queue: [pending('r', req({ gpu: 4 }))], templates: [a100x2] });
    expect(d.rejections).toMatchObject([{ requestId: 'r', reason: 'Unschedulable' }]);
  });
});

describe('demand and scaling', () => {
  const queue = [0, 1, 2, 3, 4].map((i) => pending(`r${i}`, req({ gpu: 2 }), i * 100));

  it('groups waiting requests by the template that would serve them', () => {
    expect(unmetDemand(queue, [a100x2], 10_000)).toEqual([
      {
        template: 'a100x2',
        shape: expect.stringContaining('2×A100') as unknown as string,
        requests: 5,
        gpus: 10,
        oldestWaitMs: 10_000,
      },
    ]);
  });

  it('scales up no further than the template maximum', () => {
    const actions = planScaling({
      nodes: [cpuNode],
      leases: [],
      queue,
      templates: [a100x2],
      state: { pending: {}, lastScaleUpAt: {}, removing: [] },
      policy: DEFAULT_SCALING,
      idleSince: {},
      now: 10_000,
    });
    expect(actions).toEqual([{ kind: 'up', template: 'a100x2', count: 3 }]);
  });

  it('waits until demand has waited scaleUpAfterMs, and respects the cooldown', () => {
    const early = planScaling({
      nodes: [],
      leases: [],
      queue,
      templates: [a100x2],
      state: { pending: {}, lastScaleUpAt: {}, removing: [] },
      policy: DEFAULT_SCALING,
      idleSince: {},
      now: 1_000,
    });
    expect(early).toEqual([]);
    const cooling = planScaling({
      nodes: [],
      leases: [],
      queue,
      templates: [a100x2],
      state: { pending: {}, lastScaleUpAt: { a100x2: 5_000 }, removing: [] },
      policy: DEFAULT_SCALING,
      idleSince: {},
      now: 10_000,
    });
    expect(cooling).toEqual([]);
  });

  it('scales down a template node idle past the threshold, and only while no demand waits for its template', () => {
    const node: NodeRecord = {
      spec: { id: 'a1', ...a100x2.spec, labels: { [TEMPLATE_LABEL]: 'a100x2' } },
      status: 'Ready',
      registeredAt: 0,
    };
    const base = {
      nodes: [node, cpuNode],
      leases: [],
      templates: [a100x2],
      state: { pending: {}, lastScaleUpAt: {}, removing: [] },
      policy: DEFAULT_SCALING,
      idleSince: { a1: 0 },
      now: 61_000,
    };
    expect(planScaling({ ...base, queue: [] })).toEqual([{ kind: 'down', template: 'a100x2', nodeId: 'a1' }]);
    expect(planScaling({ ...base, queue }).filter((a) => a.kind === 'down')).toEqual([]);
  });

  it('counts asked-for nodes as pending until they register, then removes scaled-down nodes from the pool', () => {
    const pool = new PoolState(emptyPoolState('p'));
    pool.setTemplates([a100x2]);
    pool.registerNode(cpuNode.spec, 0);
    for (const p of queue) pool.acquire({ requestId: p.requestId, owner: p.owner, resources: p.resources }, 0);
    pool.schedule(0);
    const [up] = pool.planScaling(10_000);
    expect(up).toEqual({ kind: 'up', template: 'a100x2', count: 3 });
    expect(pool.planScaling(30_000)).toEqual([]);
    pool.registerNode({ id: 'a1', ...a100x2.spec, labels: { [TEMPLATE_LABEL]: 'a100x2' } }, 31_000);
    expect(pool.templateNodes()[0]).toMatchObject({ nodes: ['a1'], pending: 2 });
    if (up) pool.scaled(up, false);
    expect(pool.templateNodes()[0]).toMatchObject({ pending: 0 });
    pool.scaled({ kind: 'down', template: 'a100x2', nodeId: 'a1' }, true);
    expect(pool.nodes.map((n) => n.spec.id)).toEqual(['cpu']);
  });

  it('stops waiting for scaling whose outcome never comes (lost with a restarted control worker)', () => {
    const pool = new PoolState(emptyPoolState('p'));
    pool.setTemplates([a100x2]);
    pool.registerNode(cpuNode.spec, 0);
    for (const p of queue) pool.acquire({ requestId: p.requestId, owner: p.owner, resources: p.resources }, 0);
    pool.schedule(0);
    expect(pool.planScaling(10_000)).toEqual([{ kind: 'up', template: 'a100x2', count: 3 }]);
    // No node registers and no outcome arrives: the pool waits for them...
    expect(pool.planScaling(10_000 + SCALING_TIMEOUT_MS - 1)).toEqual([]);
    expect(pool.templateNodes()[0]).toMatchObject({ pending: 3 });
    // ...until the timeout, then asks again for what still waits.
    expect(pool.planScaling(10_000 + SCALING_TIMEOUT_MS)).toEqual([{ kind: 'up', template: 'a100x2', count: 3 }]);

    // A drained node whose removal is never reported is undrained, and removed again while idle.
    const idle = new PoolState(emptyPoolState('q'));
    idle.setTemplates([a100x2]);
    idle.registerNode({ id: 'a1', ...a100x2.spec, labels: { [TEMPLATE_LABEL]: 'a100x2' } }, 0);
    expect(idle.planScaling(0)).toEqual([]);
    const start = DEFAULT_SCALING.scaleDownAfterMs + 1;
    expect(idle.planScaling(start)).toEqual([{ kind: 'down', template: 'a100x2', nodeId: 'a1' }]);
    expect(idle.templateNodes()[0]).toMatchObject({ removing: ['a1'] });
    expect(idle.planScaling(start + SCALING_TIMEOUT_MS - 1)).toEqual([]);
    expect(idle.planScaling(start + SCALING_TIMEOUT_MS)).toEqual([{ kind: 'down', template: 'a100x2', nodeId: 'a1' }]);
    idle.scaled({ kind: 'down', template: 'a100x2', nodeId: 'a1' }, false);
    expect(idle.templateNodes()[0]).toMatchObject({ removing: [] });
    expect(idle.nodes.find((n) => n.spec.id === 'a1')?.status).toBe('Ready');
  });
});
