import { describe, expect, it } from 'vitest';
import type { PendingRequest } from '../../src/core';
import { decide } from '../../src/core';
import { lease, node, request, snapshot } from './builders';

// Two 4-GPU nodes; n1 busy until t=100s. The head wants 8 GPUs: its reserved start is t=100s.
const nodes = [node('n1').gpus(4).build(), node('n2').gpus(4).build()];
const running = [lease('busy').gpus(0, 1, 2, 3).limit(100_000).build()];
const head = request('head').gpu(4).replicas(2).at(0).build();
const cycle = (candidate: PendingRequest, backfill = true) =>
  decide(snapshot({ nodes, leases: running, queue: [head, candidate] }), {
    now: 0,
    policy: { backfill, preemption: false },
  });

describe('backfill', () => {
  it.each([
    {
      name: 'a later request that ends before the reserved start backfills',
      candidate: request('short').gpu(4).at(1).limit(50_000).build(),
      granted: ['short'],
    },
    {
      name: 'one that ends exactly at the reserved start backfills',
      candidate: request('exact').gpu(4).at(1).limit(100_000).build(),
      granted: ['exact'],
    },
    {
      name: 'one that would end after the reserved start waits',
      candidate: request('long').gpu(4).at(1).limit(150_000).build(),
      granted: [],
    },
    { name: 'one with no time limit never backfills', candidate: request('open').gpu(4).at(1).build(), granted: [] },
  ])('$name', ({ candidate, granted }) => {
    expect(cycle(candidate).grants.map((g) => g.requestId)).toEqual(granted);
  });

  it('strict FIFO without backfill: everything waits behind the head', () => {
    const d = cycle(request('short').gpu(4).at(1).limit(50_000).build(), false);
    expect(d.grants).toEqual([]);
    expect(d.waiting.map((w) => w.reason)).toEqual(['Resources', 'Priority']);
  });

  it('says when the head is due and why a candidate cannot backfill', () => {
    const d = cycle(request('long').gpu(4).at(1).limit(150_000).build());
    expect(d.waiting[0]?.message).toMatch(/due to start in 100s/);
    expect(d.waiting[1]?.message).toBe(
      'waiting behind head (priority 0), which is first in line; its time limit would end after head is due to start (in 100s)',
    );
  });
});
