import { describe, expect, it } from 'vitest';
import type { PlacementPolicyName } from '../../src/core';
import { FragmentationModel, decide, fgdPoints } from '../../src/core';
import { lease, node, request, res, snapshot } from './builders';

const policies: PlacementPolicyName[] = ['fragmentation-aware', 'best-fit'];

describe.each(policies)('placement (%s)', (placement) => {
  const grant = (s: Parameters<typeof decide>[0]) => decide(s, { now: 0, policy: { placement } }).grants;

  it.each([
    {
      name: 'a multi-GPU request gets that many GPUs on one node, lowest free indices',
      nodes: [node('n1').gpus(4).build()],
      leases: [lease('x').gpus(0).build()],
      req: request('r').gpu(2).build(),
      expected: { nodeId: 'n1', gpus: [1, 2] },
    },
    {
      name: 'a GPU model alternative matches any listed model',
      nodes: [node('n1').gpus(2, 'T4').build(), node('n2').gpus(2, 'V100M32').build()],
      leases: [],
      req: request('r')
        .gpu(1, { models: ['V100M16', 'V100M32'] })
        .build(),
      expected: { nodeId: 'n2', gpus: [0] },
    },
    {
      name: 'GPU memory per GPU excludes smaller devices',
      nodes: [
        node('n1')
          .gpus(2, 'A100', 40 * 1024)
          .build(),
        node('n2')
          .gpus(2, 'A100', 80 * 1024)
          .build(),
      ],
      leases: [],
      req: request('r').gpu(1, { gpuMemGi: 64 }).build(),
      expected: { nodeId: 'n2', gpus: [0] },
    },
    {
      name: 'a label selector excludes nodes without the label',
      nodes: [node('n1').gpus(1).labels({ zone: 'a' }).build(), node('n2').gpus(1).labels({ zone: 'b' }).build()],
      leases: [],
      req: request('r')
        .gpu(1, { labels: { zone: 'b' } })
        .build(),
      expected: { nodeId: 'n2', gpus: [0] },
    },
    {
      name: 'a custom resource goes only where the node offers enough of it',
      nodes: [node('n1').custom({ licenses: 1 }).build(), node('n2').custom({ licenses: 4 }).build()],
      leases: [],
      req: request('r')
        .resources(res({ custom: { licenses: 2 } }))
        .build(),
      expected: { nodeId: 'n2', gpus: [] },
    },
    {
      name: 'a share of a GPU packs onto a partly used GPU rather than a free one',
      nodes: [node('n1').gpus(2).build()],
      leases: [lease('x').share(1, 500).build()],
      req: request('r').gpu(0.5).build(),
      expected: { nodeId: 'n1', gpus: [1] },
    },
    {
      name: 'a whole GPU never goes to a device holding a share',
      nodes: [node('n1').gpus(2).build()],
      leases: [lease('x').share(0, 100).build()],
      req: request('r').gpu(1).build(),
      expected: { nodeId: 'n1', gpus: [1] },
    },
    {
      name: 'a NotReady node gets no new work',
      nodes: [node('n1').gpus(1).status('NotReady').build(), node('n2').gpus(1).build()],
      leases: [],
      req: request('r').gpu(1).build(),
      expected: { nodeId: 'n2', gpus: [0] },
    },
  ])('$name', ({ nodes, leases, req, expected }) => {
    const [g] = grant(snapshot({ nodes, leases, queue: [req] }));
    expect(g && { nodeId: g.nodeId, gpus: g.gpus.map((x) => x.index) }).toEqual(expected);
  });

  it('fits shares of one GPU only up to its capacity', () => {
    const g = grant(
      snapshot({
        nodes: [node('n1').gpus(1).build()],
        leases: [lease('x').share(0, 700).build()],
        queue: [request('r').gpu(0.4).build()],
      }),
    );
    expect(g).toEqual([]);
  });
});

describe('fragmentation-aware against best-fit', () => {
  it('keeps a whole GPU free for whole-GPU work where best-fit breaks it for a share', () => {
    // n1: one free GPU. n2: 8 GPUs, one at 0.5 used, others busy. The workload is mostly whole GPUs.
    const nodes = [node('n1').gpus(1).build(), node('n2').gpus(2).build()];
    const leases = [lease('x').on('n2').share(0, 500).build(), lease('y').on('n2').gpus(1).build()];
    const queue = [request('share').gpu(0.5).build()];
    const workload = [...Array.from({ length: 9 }, () => res({ gpu: 1 })), res({ gpu: 0.5 })];
    const pick = (placement: PlacementPolicyName) => {
      return decide(snapshot({ nodes, leases, queue }), {
        now: 0,
        policy: { placement },
        workload: FragmentationModel.fromRequests(workload, 1),
      }).grants[0]?.nodeId;
    };
    expect(pick('fragmentation-aware')).toBe('n2');
  });
});

describe("FGD's points (the paper's scheduler plugin)", () => {
  it.each([
    ['no change in fragmentation', 0, 50],
    ['a change of a billionth, as no change', 1e-9, 50],
    ['0.05 GPU more fragmentation', 50, 48],
    ['0.01 GPU more: the same points as 0.04 more', 10, 49],
    ['0.04 GPU more', 40, 49],
    ['half a GPU less fragmentation', -500, 62],
    ['a whole GPU more', 1000, 26],
    ['eight GPUs less', -8000, 99],
  ])('scores %s (%d milli-GPU) as %d', (_, delta, points) => {
    expect(fgdPoints(delta)).toBe(points);
  });
});
