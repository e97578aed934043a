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
          message: 'waiting for resources: gpu 1, cpu 1, memory 1Gi is not free on any Ready node',
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
          message: 'waiting for resources: gpu 1, cpu 1, memory 1Gi is not free on any Ready node',
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
