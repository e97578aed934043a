import { describe, expect, it } from 'vitest';
import type { Lease } from '../../src/core';
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

  it('ends every copy when one is taken back', () => {
    const { pool, leases } = grantedGang();
    const first = leases[0] as Lease;
    pool.register(node(first.nodeId).gpus(4).build().spec, 1, { deadLeases: [first.leaseId] });
    expect(pool.leases).toEqual([]);
  });
});
