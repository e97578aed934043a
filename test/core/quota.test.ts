import { describe, expect, it } from 'vitest';
import type { TeamQuota } from '../../src/core';
import { decide } from '../../src/core';
import { lease, node, request, snapshot } from './builders';

const vision = (borrowingLimit?: number): TeamQuota => ({
  name: 'vision',
  nominal: { gpu: 4000 },
  ...(borrowingLimit === undefined ? {} : { borrowingLimit: { gpu: borrowingLimit * 1000 } }),
});
const nlp: TeamQuota = { name: 'nlp', nominal: { gpu: 4000 } };

describe('team quotas', () => {
  it.each([
    {
      name: 'a team within its nominal quota is granted',
      teams: [vision(0), nlp],
      leases: [],
      req: request('r').team('vision').gpu(4).build(),
      expected: { granted: true },
    },
    {
      name: 'a team at its quota that may not borrow waits with QuotaExhausted',
      teams: [vision(0), nlp],
      leases: [lease('x').team('vision').gpus(0, 1, 2, 3).build()],
      req: request('r').team('vision').gpu(1).build(),
      expected: { reason: 'QuotaExhausted', message: 'team vision uses 4 of 4 gpu and may not borrow; it asks for 1' },
    },
    {
      name: 'a team may borrow idle quota of another team up to its borrowing limit',
      teams: [vision(2), nlp],
      leases: [lease('x').team('vision').gpus(0, 1, 2, 3).build()],
      req: request('r').team('vision').gpu(2).build(),
      expected: { granted: true },
    },
    {
      name: 'borrowing beyond the limit waits',
      teams: [vision(2), nlp],
      leases: [lease('x').team('vision').gpus(0, 1, 2, 3).build()],
      req: request('r').team('vision').gpu(3).build(),
      expected: {
        reason: 'QuotaExhausted',
        message: 'team vision uses 4 of 4 gpu and may borrow at most 2 more; it asks for 3',
      },
    },
    {
      name: 'without a borrowing limit, borrowing stops where the cohort is used up',
      teams: [vision(), nlp],
      leases: [
        lease('x').team('vision').gpus(0, 1, 2, 3).build(),
        lease('y').id('y').team('nlp').on('n2').gpus(0, 1, 2, 3).build(),
      ],
      req: request('r').team('vision').gpu(1).build(),
      expected: {
        reason: 'QuotaExhausted',
        message: 'team vision asks for gpu 1, but the teams together use 8 of their 8 gpu quota',
      },
    },
    {
      name: 'a team without a quota borrows the idle quota of the teams that have one',
      teams: [vision(0)],
      leases: [],
      req: request('r').team('other').gpu(4).build(),
      expected: { granted: true },
    },
    {
      // Issue item 7: teams without a quota used to bypass quotas.
      name: 'a team without a quota (default) is held to the cohort: it cannot take quota in use',
      teams: [vision(0), nlp],
      leases: [lease('x').team('vision').gpus(0, 1, 2, 3).build()],
      req: request('r').team('default').gpu(5).build(),
      expected: {
        reason: 'QuotaExhausted',
        message: 'team default asks for gpu 5, but the teams together use 4 of their 8 gpu quota',
      },
    },
  ])('$name', ({ teams, leases, req, expected }) => {
    const nodes = [node('n1').gpus(8).build(), node('n2').gpus(8).build()];
    const d = decide(snapshot({ nodes, leases, queue: [req], teams }), { now: 0 });
    if (expected.granted) expect(d.grants.map((g) => g.requestId)).toEqual(['r']);
    else expect(d.waiting[0]).toMatchObject({ reason: expected.reason, message: expected.message });
  });

  it('counts a team without a quota in the cohort, and reclaims from it (issue item 7)', () => {
    const teams = [vision(0), nlp];
    const nodes = [node('n1').gpus(8).build()];
    // default borrowed every idle GPU of the cohort; nlp asks for its own quota.
    const borrowed = [0, 1, 2, 3, 4, 5, 6, 7].map((g) =>
      lease(`d${g}`).id(`d${g}`).team('default').gpus(g).grantedAt(g).preemptible().build(),
    );
    const d = decide(
      snapshot({ nodes, leases: borrowed, queue: [request('mine').team('nlp').gpu(4).build()], teams }),
      {
        now: 0,
      },
    );
    expect(d.waiting[0]).toMatchObject({ requestId: 'mine', reason: 'Preempting' });
    expect(d.preemptions.map((p) => p.requestId).sort()).toEqual(['d4', 'd5', 'd6', 'd7']);
    expect(d.preemptions[0]?.message).toMatch(/team nlp reclaims its quota from default/);
  });

  it('rejects at once a request larger than its team may ever use', () => {
    const d = decide(
      snapshot({
        nodes: [node('n1').gpus(8).build()],
        queue: [request('r').team('vision').gpu(6).build()],
        teams: [vision(1), nlp],
      }),
    );
    expect(d.rejections[0]).toMatchObject({
      reason: 'Unschedulable',
      message: 'asks for gpu 6, more than team vision may ever use: its quota of 4 gpu plus a borrowing limit of 1',
    });
  });

  it('a quota-blocked request does not block other teams', () => {
    const d = decide(
      snapshot({
        nodes: [node('n1').gpus(8).build()],
        leases: [lease('x').team('vision').gpus(0, 1, 2, 3).build()],
        queue: [request('v').team('vision').gpu(1).at(0).build(), request('n').team('nlp').gpu(1).at(1).build()],
        teams: [vision(0), nlp],
      }),
      { now: 0 },
    );
    expect(d.grants.map((g) => g.requestId)).toEqual(['n']);
  });
});
