import { describe, expect, it } from 'vitest';
import { decide } from '../../src/core';
import { lease, node, request, res, snapshot } from './builders';

const nodes = [node('n1').gpus(8, 'A100').cpu(64).memoryGi(512).labels({ zone: 'a' }).build()];

describe('unschedulable requests are rejected at once, naming what is missing', () => {
  it.each([
    {
      name: 'too many GPUs',
      req: request('r').gpu(16).build(),
      message: 'asked for gpu 16, but the largest node has gpu 8',
    },
    {
      name: 'a GPU model no node has',
      req: request('r')
        .gpu(1, { models: ['H100'] })
        .build(),
      message: 'asked for gpu 1 (model H100), but no node has such a GPU',
    },
    {
      name: 'too much CPU',
      req: request('r')
        .resources(res({ cpu: 128 }))
        .build(),
      message: 'asked for cpu 128, but the largest node has cpu 64',
    },
    {
      name: 'a label no node has',
      req: request('r')
        .gpu(1, { labels: { zone: 'b' } })
        .build(),
      message: 'no node has labels {"zone":"b"}',
    },
    {
      name: 'a custom resource no node offers',
      req: request('r')
        .resources(res({ custom: { licenses: 1 } }))
        .build(),
      message: 'asked for licenses 1, but no node offers licenses',
    },
  ])('$name', ({ req, message }) => {
    expect(decide(snapshot({ nodes, queue: [req] })).rejections).toEqual([
      { requestId: 'r', reason: 'Unschedulable', message },
    ]);
  });
});

describe('every waiting request carries a reason', () => {
  it.each([
    {
      name: 'Resources for the head of the queue',
      leases: [lease('x').gpus(0, 1, 2, 3, 4, 5, 6, 7).build()],
      queue: [request('r').gpu(1).build()],
      expected: [
        {
          requestId: 'r',
          reason: 'Resources',
          message:
            'waiting for resources: gpu 1, cpu 1, memory 1Gi is not free on any Ready node; short: gpu (at most 0 of 1 free)',
        },
      ],
    },
    {
      name: 'Priority for those behind it',
      leases: [lease('x').gpus(0, 1, 2, 3, 4, 5, 6, 7).build()],
      queue: [request('a').gpu(1).at(0).build(), request('b').gpu(1).at(1).build()],
      expected: [
        {
          requestId: 'a',
          reason: 'Resources',
          message:
            'waiting for resources: gpu 1, cpu 1, memory 1Gi is not free on any Ready node; short: gpu (at most 0 of 1 free)',
        },
        { requestId: 'b', reason: 'Priority', message: 'waiting behind a (priority 0), which is first in line' },
      ],
    },
  ])('$name', ({ leases, queue, expected }) => {
    expect(decide(snapshot({ nodes, leases, queue })).waiting).toEqual(expected);
  });

  it('NoNodes before any node registers', () => {
    expect(decide(snapshot({ nodes: [], queue: [request('r').gpu(1).build()] })).waiting[0]?.reason).toBe('NoNodes');
  });
});

describe('a wait for resources says what is short', () => {
  const waitingFor = (parts: Parameters<typeof snapshot>[0]): string | undefined =>
    decide(snapshot(parts)).waiting.find((w) => w.reason === 'Resources')?.message;

  it('names CPU when a 2-CPU node has free GPUs but no free CPU', () => {
    const small = [node('n1').gpus(4, 'A100').cpu(2).memoryGi(64).build()];
    const message = waitingFor({
      nodes: small,
      leases: [lease('x').on('n1').gpus().cpu(2).build()],
      queue: [request('r').gpu(1).build()],
    });
    expect(message).toBe(
      'waiting for resources: gpu 1, cpu 1, memory 1Gi is not free on any Ready node; short: cpu (at most 0 of 1 free)',
    );
  });

  it('names every resource short on all nodes, with the most free of each', () => {
    const two = [
      node('n1').gpus(1, 'A100').cpu(4).memoryGi(8).build(),
      node('n2').gpus(1, 'A100').cpu(4).memoryGi(8).build(),
    ];
    const message = waitingFor({
      nodes: two,
      leases: [lease('x').on('n1').gpus().cpu(4).build(), lease('y').on('n2').gpus().cpu(3).build()],
      queue: [
        request('r')
          .resources(res({ cpu: 2, memGi: 8 }))
          .build(),
      ],
    });
    expect(message).toMatch(/; short: cpu \(at most 1 of 2 free\) and memory \(at most 7Gi of 8Gi free\)$/);
  });

  it('says which node lacks what when no resource is short on all of them', () => {
    const two = [
      node('n1').gpus(1, 'A100').cpu(4).memoryGi(8).build(),
      node('n2').gpus(1, 'A100').cpu(4).memoryGi(8).build(),
    ];
    const message = waitingFor({
      nodes: two,
      leases: [lease('x').on('n1').gpus(0).cpu(0).build(), lease('y').on('n2').gpus().cpu(4).build()],
      queue: [request('r').gpu(1).build()],
    });
    expect(message).toMatch(/; no node has all of it free at once: n1 lacks gpu, n2 lacks cpu$/);
  });

  it('names a share of a GPU that no GPU has free, and a custom resource', () => {
    const one = [node('n1').gpus(1, 'A100').cpu(8).memoryGi(64).custom({ licenses: 2 }).build()];
    expect(
      waitingFor({
        nodes: one,
        leases: [lease('x').on('n1').share(0, 700).build()],
        queue: [request('r').gpu(0.5).build()],
      }),
    ).toMatch(/; short: gpu \(no GPU that fits has 0\.5 free\)$/);
    const licensed = lease('y').on('n1').build();
    licensed.custom = { licenses: 2 };
    expect(
      waitingFor({
        nodes: one,
        leases: [licensed],
        queue: [
          request('r')
            .resources(res({ custom: { licenses: 1 } }))
            .build(),
        ],
      }),
    ).toMatch(/; short: licenses \(at most 0 of 1 free\)$/);
  });

  it('names the GPU memory of a share when the share is free but its memory is not', () => {
    const one = [node('n1').gpus(1, 'A100').cpu(8).memoryGi(64).build()];
    const big = lease('x').on('n1').share(0, 500).build();
    const share = big.gpus[0];
    if (share) share.memoryMiB = 70 * 1024;
    expect(
      waitingFor({
        nodes: one,
        leases: [big],
        queue: [request('r').gpu(0.5, { gpuMemGi: 20 }).build()],
      }),
    ).toMatch(/; short: gpu \(no GPU that fits has 0\.5 with 20Gi of its memory free\)$/);
  });

  it('says none is free, not a negative amount, when a node came back smaller than its leases', () => {
    const shrunk = [node('n1').gpus(0, 'A100').cpu(1).memoryGi(64).build()];
    expect(
      waitingFor({
        nodes: shrunk,
        leases: [lease('x').on('n1').cpu(4).build()],
        queue: [
          request('r')
            .resources(res({ cpu: 0.5 }))
            .build(),
        ],
      }),
    ).toMatch(/; short: cpu \(at most 0 of 500m free\)$/);
  });
});
