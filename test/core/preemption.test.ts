import { describe, expect, it } from 'vitest';
import type { Lease, PendingRequest, TeamQuota } from '../../src/core';
import { decide } from '../../src/core';
import { lease, node, request, snapshot } from './builders';

const nodes = [node('n1').gpus(4).build()];
const run = (leases: Lease[], queue: PendingRequest[], teams?: TeamQuota[], gracePeriodMs = 0) =>
  decide(snapshot({ nodes, leases, queue, teams }), { now: 1000, policy: { gracePeriodMs } });

describe('preemption', () => {
  it.each([
    {
      name: 'a higher priority evicts a lower-priority preemptible step',
      leases: [lease('low').gpus(0, 1, 2, 3).priority(0).preemptible().build()],
      req: request('high').gpu(2).priority(10).build(),
      victims: ['low'],
    },
    {
      name: 'equal priority never preempts',
      leases: [lease('peer').gpus(0, 1, 2, 3).priority(5).preemptible().build()],
      req: request('r').gpu(2).priority(5).build(),
      victims: [],
    },
    {
      name: 'a non-preemptible step is never a victim',
      leases: [lease('pinned').gpus(0, 1, 2, 3).priority(0).preemptible(false).build()],
      req: request('high').gpu(2).priority(10).build(),
      victims: [],
    },
    {
      name: 'no eviction when the preemptor would still not fit',
      leases: [
        lease('low').gpus(0, 1).priority(0).preemptible().build(),
        lease('pinned').id('p').gpus(2, 3).priority(0).build(),
      ],
      req: request('high').gpu(4).priority(10).build(),
      victims: [],
    },
    {
      name: 'the victim set is minimal: one step is enough',
      leases: [
        lease('a').id('a').gpus(0, 1).priority(0).grantedAt(10).preemptible().build(),
        lease('b').id('b').gpus(2, 3).priority(0).grantedAt(20).preemptible().build(),
      ],
      req: request('high').gpu(2).priority(10).build(),
      victims: ['b'],
    },
    {
      name: 'lower priority goes first',
      leases: [
        lease('p1').id('p1').gpus(0, 1).priority(1).grantedAt(20).preemptible().build(),
        lease('p0').id('p0').gpus(2, 3).priority(0).grantedAt(10).preemptible().build(),
      ],
      req: request('high').gpu(2).priority(10).build(),
      victims: ['p0'],
    },
    {
      name: 'among equals, the most recently started goes first',
      leases: [
        lease('old').id('old').gpus(0, 1).grantedAt(10).preemptible().build(),
        lease('young').id('young').gpus(2, 3).grantedAt(20).preemptible().build(),
      ],
      req: request('high').gpu(2).priority(10).build(),
      victims: ['young'],
    },
    {
      name: 'a gang is evicted whole',
      leases: [
        lease('gang').id('g0').gpus(0, 1).preemptible().build(),
        lease('gang').id('g1').gpus(2, 3).preemptible().build(),
      ],
      req: request('high').gpu(3).priority(10).build(),
      victims: ['gang'],
    },
  ])('$name', ({ leases, req, victims }) => {
    const d = run(leases, [req]);
    expect(d.preemptions.map((p) => p.requestId)).toEqual(victims);
    if (victims.length > 0) expect(d.waiting[0]).toMatchObject({ requestId: req.requestId, reason: 'Preempting' });
  });

  it('reclaims quota from a borrowing team regardless of priority, borrowers first', () => {
    const teams: TeamQuota[] = [
      { name: 'vision', nominal: { gpu: 2000 } },
      { name: 'nlp', nominal: { gpu: 2000 } },
    ];
    const d = run(
      [
        lease('own').id('own').team('vision').gpus(0).priority(0).grantedAt(30).preemptible().build(),
        lease('borrowed').id('b').team('nlp').gpus(1, 2, 3).priority(50).grantedAt(10).preemptible().build(),
      ],
      [request('reclaim').team('vision').gpu(1).priority(0).build()],
      teams,
    );
    expect(d.preemptions.map((p) => [p.requestId, p.message])).toEqual([
      ['borrowed', 'preempted by reclaim (team vision reclaims its quota from nlp)'],
    ]);
  });

  it('reclaims as many borrowed GPUs as the lender asks for, no more', () => {
    const teams: TeamQuota[] = [
      { name: 'a', nominal: { gpu: 2000 } },
      { name: 'b', nominal: { gpu: 2000 } },
    ];
    const d = run(
      [0, 1, 2, 3].map((g) => lease(`a${g}`).id(`a${g}`).team('a').gpus(g).grantedAt(g).preemptible().build()),
      [request('b-job').team('b').gpu(2).build()],
      teams,
    );
    expect(d.preemptions.map((p) => p.requestId)).toEqual(['a3', 'a2']);
  });

  it("keeps a reclaiming team's quota from the borrowers it evicted, so that no more are evicted", () => {
    const teams: TeamQuota[] = [
      { name: 'a', nominal: { gpu: 2000 } },
      { name: 'b', nominal: { gpu: 2000 } },
    ];
    // Team a borrowed all four GPUs; b-job reclaimed two. a2 and a3 stopped, and queue again with
    // their first submit times, ahead of b-job by time; but b-job asks within b's quota, and they
    // would borrow: b-job goes first.
    const leases = [0, 1].map((g) => lease(`a${g}`).id(`a${g}`).team('a').gpus(g).grantedAt(g).preemptible().build());
    const requeued = [2, 3].map((g) => request(`a${g}`).team('a').gpu(1).at(g).seq(g).build());
    const reclaimer = { ...request('b-job').team('b').gpu(2).at(100).seq(100).build(), reason: 'Preempting' as const };
    const d = run(leases, [...requeued, reclaimer], teams);
    expect(d.grants.map((g) => g.requestId)).toEqual(['b-job']);
    expect(d.preemptions).toEqual([]);
    expect(d.waiting).toEqual(
      ['a2', 'a3'].map((requestId) => ({
        requestId,
        reason: 'QuotaExhausted',
        message: 'team a asks for gpu 1, but the teams together use 4 of their 4 gpu quota',
      })),
    );
  });

  it('lets borrowers take idle quota beyond what a reclaimer waits for', () => {
    const teams: TeamQuota[] = [
      { name: 'a', nominal: { gpu: 2000 } },
      { name: 'b', nominal: { gpu: 1000 } },
      { name: 'c', nominal: { gpu: 1000 } },
    ];
    const reclaimer = { ...request('b-job').team('b').gpu(1).at(100).seq(100).build(), reason: 'Preempting' as const };
    const d = run(
      [lease('a0').id('a0').team('a').gpus(0).preemptible().build(), lease('a1').id('a1').team('a').gpus(1).build()],
      [request('a2').team('a').gpu(1).at(2).seq(2).build(), reclaimer],
      teams,
    );
    // c's idle GPU may be lent; b's may not.
    expect(d.grants.map((g) => g.requestId).sort()).toEqual(['a2', 'b-job']);
  });

  it('waits for victims already stopping instead of choosing more', () => {
    const d = run(
      [
        lease('stopping').id('s').gpus(0, 1).preemptedAt(900).preemptible().build(),
        lease('other').id('o').gpus(2, 3).preemptible().build(),
      ],
      [request('high').gpu(2).priority(10).build()],
      undefined,
      30_000,
    );
    expect(d.preemptions).toEqual([]);
    expect(d.waiting[0]).toMatchObject({ reason: 'Preempting', message: 'waiting for stopping to stop' });
  });

  it('does nothing when preemption is off', () => {
    const d = decide(
      snapshot({
        nodes,
        leases: [lease('low').gpus(0, 1, 2, 3).preemptible().build()],
        queue: [request('h').gpu(1).priority(9).build()],
      }),
      { now: 0, policy: { preemption: false } },
    );
    expect(d.preemptions).toEqual([]);
    expect(d.waiting[0]?.reason).toBe('Resources');
  });
});
