import { describe, expect, it } from 'vitest';
import type { CycleState, Decisions, LeaseTerms } from '../../src/core';
import { applyDecisions } from '../../src/core';
import { lease, request, res } from './builders';

const terms: LeaseTerms = { leaseId: (r, replica) => `${r.requestId}/${replica}` };
const none: Decisions = { grants: [], rejections: [], waiting: [], preemptions: [] };
const gpu = (index: number) => ({ index, milli: 1000, memoryMiB: 80 * 1024 });

describe('applyDecisions', () => {
  it('a gang grant becomes one lease per copy, each holding the custom amounts, and leaves the queue', () => {
    const gang = request('g')
      .gpu(1, { custom: { licenses: 1 } })
      .replicas(2)
      .build();
    const state: CycleState = { leases: [], queue: [gang] };
    const allocations = [
      { nodeId: 'n1', gpus: [gpu(0)] },
      { nodeId: 'n2', gpus: [gpu(3)] },
    ];
    const applied = applyDecisions(
      state,
      { ...none, grants: [{ requestId: 'g', nodeId: 'n1', gpus: [gpu(0)], allocations }] },
      5_000,
      terms,
    );
    expect(state.queue).toEqual([]);
    expect(state.leases.map((l) => [l.leaseId, l.nodeId, l.custom])).toEqual([
      ['g/0', 'n1', { licenses: 1 }],
      ['g/1', 'n2', { licenses: 1 }],
    ]);
    expect(applied.granted).toEqual([{ request: gang, leases: state.leases }]);
  });

  it('leases expire only under terms with a TTL', () => {
    const r = request('r')
      .resources(res({ cpu: 1 }))
      .build();
    const decisions: Decisions = {
      ...none,
      grants: [{ requestId: 'r', nodeId: 'n1', gpus: [], allocations: [{ nodeId: 'n1', gpus: [] }] }],
    };
    const untimed: CycleState = { leases: [], queue: [{ ...r }] };
    applyDecisions(untimed, decisions, 0, terms);
    expect(untimed.leases[0]?.expiresAt).toBeUndefined();
    const timed: CycleState = { leases: [], queue: [{ ...r }] };
    applyDecisions(timed, decisions, 0, { ...terms, ttlMs: 60_000, fenceMs: 30_000, gracePeriodMs: 10_000 });
    expect(timed.leases[0]).toMatchObject({ expiresAt: 60_000, ttlMs: 60_000, fenceMs: 30_000, gracePeriodMs: 10_000 });
  });

  it('a preemption marks every lease of the victim and records the preemptor’s claim until it waits for another reason', () => {
    const preemptor = request('p').gpu(1).priority(5).build();
    const victim = [
      lease('v').id('v/0').gpus(0).preemptible().build(),
      lease('v').id('v/1').gpus(1).preemptible().build(),
    ];
    const state: CycleState = { leases: victim, queue: [preemptor] };
    const preempting: Decisions = {
      ...none,
      waiting: [{ requestId: 'p', reason: 'Preempting', message: 'waiting for v to stop' }],
      preemptions: [
        { requestId: 'v', leaseIds: ['v/0', 'v/1'], preemptor: 'p', reason: 'Preempted', message: 'for p' },
      ],
    };
    const applied = applyDecisions(state, preempting, 1_000, terms);
    expect(applied.preempted.map((x) => x.lease.leaseId)).toEqual(['v/0', 'v/1']);
    expect(state.leases.map((l) => [l.preemptedAt, l.preemptedFor])).toEqual([
      [1_000, 'p'],
      [1_000, 'p'],
    ]);
    expect(state.queue[0]).toMatchObject({ reason: 'Preempting', preempting: 1_000, evicted: ['v'] });

    // Preempting the same leases again changes nothing; waiting for resources drops the claim.
    const again = applyDecisions(state, preempting, 2_000, terms);
    expect(again.preempted).toEqual([]);
    applyDecisions(
      state,
      { ...none, waiting: [{ requestId: 'p', reason: 'Resources', message: 'no room' }] },
      3_000,
      terms,
    );
    expect(state.queue[0]?.preempting).toBeUndefined();
    expect(state.queue[0]?.evicted).toEqual(['v']);
  });
});
