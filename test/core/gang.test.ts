import { describe, expect, it } from 'vitest';
import { decide } from '../../src/core';
import { lease, node, request, snapshot } from './builders';

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
      message: 'asks for 2 replicas, but all nodes together hold at most 1 at once',
    });
  });
});
