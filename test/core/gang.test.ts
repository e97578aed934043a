import { describe, expect, it } from 'vitest';
import type { Lease, PendingRequest } from '../../src/core';
import { PoolState, decide, emptyPoolState } from '../../src/core';
import { lease, node, request, res, snapshot } from './builders';

describe('gangs', () => {
  it('grants every replica at once, possibly on different nodes', () => {
    const d = decide(
      snapshot({
        nodes: [node('n1').gpus(4).build(), node('n2').gpus(4).build()],
        queue: [request('g').gpu(4).replicas(2).build()],
      }),
    );
    expect(d.grants).toHaveLength(1);
    expect(d.grants[0]?.allocations.map((a) => a.nodeId).sort()).toEqual(['n1', 'n2']);
  });

  it('holds no part of a gang that does not fit whole', () => {
    const d = decide(
      snapshot({
        nodes: [node('n1').gpus(4).build(), node('n2').gpus(4).build()],
        leases: [lease('x').on('n2').gpus(0).build()],
        queue: [request('g').gpu(4).replicas(2).build()],
      }),
      { now: 0 },
    );
    expect(d.grants).toEqual([]);
    expect(d.waiting[0]?.reason).toBe('Resources');
  });

  it('rejects a gang larger than the whole cluster', () => {
    const d = decide(
      snapshot({ nodes: [node('n1').gpus(4).build()], queue: [request('g').gpu(4).replicas(2).build()] }),
    );
    expect(d.rejections[0]).toMatchObject({
      reason: 'Unschedulable',
      message: 'asks for 2 replicas on separate nodes, but at most 1 node can hold one',
    });
  });

  it('rejects a packed gang larger than the whole cluster', () => {
    const d = decide(
      snapshot({
        nodes: [node('n1').gpus(4).build()],
        queue: [request('g').gpu(4).replicas(2).placement('pack').build()],
      }),
    );
    expect(d.rejections[0]).toMatchObject({
      reason: 'Unschedulable',
      message: 'asks for 2 replicas, but all nodes together hold at most 1 at once',
    });
  });
});

describe("where a gang's copies go", () => {
  const free8 = () => [node('n1').gpus(8).build(), node('n2').gpus(8).build()];
  /** Two 8-GPU nodes, n2 all taken: n1 alone could hold both 4-GPU copies. */
  const oneFree = () => ({ nodes: free8(), leases: [lease('busy').on('n2').gpus(0, 1, 2, 3, 4, 5, 6, 7).build()] });
  const nodesOf = (d: ReturnType<typeof decide>) => d.grants.map((g) => g.allocations.map((a) => a.nodeId));

  it('spreads copies over distinct nodes by default, where packing would put both on one', () => {
    const gang = request('g').gpu(4).replicas(2);
    expect(nodesOf(decide(snapshot({ nodes: free8(), queue: [gang.build()] })))).toEqual([['n1', 'n2']]);
    const packed = decide(snapshot({ nodes: free8(), queue: [gang.placement('pack').build()] }));
    expect(nodesOf(packed)).toEqual([['n1', 'n1']]);
  });

  it('a spread gang waits (Resources) while one node is free, though that node could hold every copy', () => {
    const d = decide(snapshot({ ...oneFree(), queue: [request('g').gpu(4).replicas(2).build()] }), { now: 0 });
    expect(d.grants).toEqual([]);
    expect(d.preemptions).toEqual([]);
    expect(d.waiting[0]).toMatchObject({
      reason: 'Resources',
      message:
        'waiting for resources: gpu 4, cpu 1, memory 1Gi × 2 replicas on separate nodes: 1 node has room for a ' +
        'replica now, 2 are needed, and no replica starts before all can',
    });
  });

  it('a packed gang takes two copies on one 8-GPU node, on distinct GPUs', () => {
    const d = decide(snapshot({ ...oneFree(), queue: [request('g').gpu(4).replicas(2).placement('pack').build()] }), {
      now: 0,
    });
    expect(nodesOf(d)).toEqual([['n1', 'n1']]);
    const indices = d.grants[0]?.allocations.flatMap((a) => a.gpus.map((g) => g.index));
    expect(new Set(indices).size).toBe(8);
  });

  it('rejects a spread gang with more replicas than eligible nodes, which packing would grant', () => {
    const nodes = [node('n1').gpus(8).build(), node('n2').gpus(8).build(), node('n3').gpus(8, 'T4').build()];
    const gang = request('g')
      .gpu(1, { models: ['A100'] })
      .replicas(3);
    const d = decide(snapshot({ nodes, queue: [gang.build()] }));
    expect(d.rejections).toEqual([
      {
        requestId: 'g',
        reason: 'Unschedulable',
        message: 'asks for 3 replicas on separate nodes, but at most 2 nodes can hold one',
      },
    ]);
    expect(nodesOf(decide(snapshot({ nodes, queue: [gang.placement('pack').build()] })))).toHaveLength(1);
  });

  it("reserves a spread gang's start for when its second distinct node frees, not when one node could hold both", () => {
    const nodes = [node('n1').gpus(8).build(), node('n2').gpus(8).build(), node('n3').gpus(8).build()];
    const all = [0, 1, 2, 3, 4, 5, 6, 7];
    const leases = [
      lease('a')
        .on('n1')
        .gpus(...all)
        .limit(100_000)
        .build(),
      lease('b')
        .on('n2')
        .gpus(...all)
        .limit(200_000)
        .build(),
      lease('c')
        .on('n3')
        .gpus(...all)
        .limit(300_000)
        .build(),
    ];
    const due = (placement: 'spread' | 'pack') =>
      decide(snapshot({ nodes, leases, queue: [request('g').gpu(4).replicas(2).placement(placement).build()] }), {
        now: 0,
        policy: { preemption: false },
      }).waiting[0]?.message;
    expect(due('spread')).toMatch(/due to start in 200s$/);
    expect(due('pack')).toMatch(/due to start in 100s$/);
  });
});

describe('gangs and preemption', () => {
  const nodes = [node('n1').gpus(8).build(), node('n2').gpus(8).build()];
  /** Four 4-GPU victims, two per node, taken in the order v1a, v1b, v2a, v2b (latest granted first). */
  const victims = [
    lease('v1a').on('n1').gpus(0, 1, 2, 3).grantedAt(3).preemptible().build(),
    lease('v1b').on('n1').gpus(4, 5, 6, 7).grantedAt(2).preemptible().build(),
    lease('v2a').on('n2').gpus(0, 1, 2, 3).grantedAt(1).preemptible().build(),
    lease('v2b').on('n2').gpus(4, 5, 6, 7).grantedAt(0).preemptible().build(),
  ];
  const run = (leases: Lease[], gang: PendingRequest) =>
    decide(snapshot({ nodes, leases, queue: [gang] }), { now: 1000, policy: { gracePeriodMs: 0 } });

  it('a spread gang of 2 evicts one victim on each of two nodes; a packed one, both on one node', () => {
    const spread = run(victims, request('g').gpu(4).replicas(2).priority(5).build());
    expect(spread.preemptions.map((p) => p.requestId)).toEqual(['v1a', 'v2a']);
    expect(spread.waiting[0]?.reason).toBe('Preempting');
    const packed = run(victims, request('g').gpu(4).replicas(2).placement('pack').priority(5).build());
    expect(packed.preemptions.map((p) => p.requestId)).toEqual(['v1a', 'v1b']);
  });

  it('evicts a victim gang whole, as one victim whose copies all free room', () => {
    const copies = [
      lease('vg').id('vg/0').on('n1').gpus(0, 1, 2, 3).preemptible().build(),
      lease('vg').id('vg/1').on('n2').gpus(0, 1, 2, 3).preemptible().build(),
    ];
    // Each node keeps 4 GPUs free: the spread gang needs both copies of the victim gone.
    const d = run(copies, request('g').gpu(8).replicas(2).priority(5).build());
    expect(d.preemptions).toEqual([expect.objectContaining({ requestId: 'vg', leaseIds: ['vg/0', 'vg/1'] })]);
    expect(d.waiting[0]?.reason).toBe('Preempting');
  });
});

describe('a gang in the pool state', () => {
  /** A pool of two 4-GPU nodes that has granted a 2-replica gang (one lease per copy). */
  function grantedGang(): { pool: PoolState; leases: readonly Lease[] } {
    const data = emptyPoolState('p');
    data.queue.push({
      ...request('g').gpu(4).replicas(2).build(),
      owner: { kind: 'workflow', workflowId: 'wf-g' },
      queuedAt: 0,
    });
    const pool = new PoolState(data);
    pool.registerNode(node('n1').gpus(4).build().spec, 0);
    pool.registerNode(node('n2').gpus(4).build().spec, 0);
    const granted = pool.schedule(0).filter((e) => e.kind === 'grant');
    expect(granted).toHaveLength(2);
    return { pool, leases: [...pool.leases] };
  }

  it('gives back every copy when the gang is released', () => {
    const { pool } = grantedGang();
    pool.release('g');
    expect(pool.leases).toEqual([]);
    // All eight GPUs are free again: a whole-node request is granted at once.
    pool.acquire({ requestId: 'next', owner: { kind: 'client', name: 'c' }, resources: res({ gpu: 4 }) }, 1);
    expect(pool.schedule(1).map((e) => e.kind)).toEqual(['grant']);
  });

  it('renews every copy, so that no copy of a running gang expires', () => {
    const { pool } = grantedGang();
    const ttl = pool.health.leaseTtlMs;
    pool.renew('g', ttl - 1);
    for (const n of ['n1', 'n2']) pool.heartbeat(n, ttl);
    expect(pool.leases.map((l) => l.expiresAt)).toEqual([2 * ttl - 1, 2 * ttl - 1]);
    expect(pool.checkHealth(ttl + 1)).toEqual([]);
  });

  it('takes back the dead copy at once and holds the live one until the step releases it', () => {
    const { pool, leases } = grantedGang();
    const first = leases[0] as Lease;
    const effects = pool.register(node(first.nodeId).gpus(4).build().spec, 1, { deadLeases: [first.leaseId] }).effects;
    expect(effects).toEqual([expect.objectContaining({ kind: 'revoke', reason: 'NodeRestarted' })]);
    // The other replica runs until its step stops it: its copy is not free for anyone else yet.
    expect(pool.leases.map((l) => [l.leaseId, l.preemptedAt])).toEqual([[leases[1]?.leaseId, undefined]]);
    pool.release(first.requestId);
    expect(pool.leases).toEqual([]);
  });
});
