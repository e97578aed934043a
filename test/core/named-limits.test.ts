/**
 * Cluster-wide named limits (`named-limits.ts`) in a scheduling cycle and in the pool: acquired
 * all-or-nothing with node resources, in queue order, released with the lease, never exceeded.
 */
import { describe, expect, it } from 'vitest';
import type { AcquireInput, Decisions, Lease, NamedLimit } from '../../src/core';
import {
  PoolState,
  applyDecisions,
  decide,
  emptyPoolState,
  limitBreaches,
  limitStatus,
  parseResources,
  validateNamedLimit,
  validateRequestLimits,
} from '../../src/core';
import { lease, node, request, snapshot } from './builders';

const fs1: NamedLimit[] = [{ name: 'fs', max: 1 }];

function reasonOf(d: Decisions, id: string): string | undefined {
  const w = d.waiting.find((x) => x.requestId === id) ?? d.rejections.find((x) => x.requestId === id);
  return w ? `${w.reason}: ${w.message}` : undefined;
}

describe('a scheduling cycle with named limits', () => {
  const big = node('n1').gpus(8).build();

  it.each([
    {
      name: 'two requests for the only unit: the first is granted, the second waits naming the limit',
      limits: fs1,
      leases: [],
      queue: [request('a').gpu(1).namedLimits({ fs: 1 }).build(), request('b').gpu(1).namedLimits({ fs: 1 }).build()],
      granted: ['a'],
      reasons: { b: 'LimitExhausted: fs 1 of 1 in use' },
    },
    {
      name: 'a request that does not ask for the limit is not blocked by one waiting for it',
      limits: fs1,
      leases: [lease('x').namedLimits({ fs: 1 }).build()],
      queue: [request('a').gpu(1).namedLimits({ fs: 1 }).build(), request('b').gpu(1).build()],
      granted: ['b'],
      reasons: { a: 'LimitExhausted: fs 1 of 1 in use' },
    },
    {
      name: 'all or nothing: a request short of one of its limits takes none of the other',
      limits: [
        { name: 'fs', max: 1 },
        { name: 'db', max: 1 },
      ],
      leases: [lease('x').namedLimits({ db: 1 }).build()],
      queue: [
        request('a').gpu(1).namedLimits({ fs: 1, db: 1 }).build(),
        request('b').gpu(1).namedLimits({ fs: 1 }).build(),
      ],
      granted: [],
      reasons: {
        a: 'LimitExhausted: db 1 of 1 in use',
        b: 'LimitExhausted: fs 0 of 1 in use; a is ahead in line for it',
      },
    },
    {
      name: 'all or nothing: a request whose limit is free but whose resources never are takes no unit',
      limits: fs1,
      leases: [],
      queue: [request('a').gpu(16).namedLimits({ fs: 1 }).build(), request('b').gpu(1).namedLimits({ fs: 1 }).build()],
      granted: ['b'],
      reasons: { a: 'Unschedulable' },
    },
    {
      name: 'queue order: a later small ask waits behind an earlier large one, although a unit is free',
      limits: [{ name: 'fs', max: 4 }],
      leases: [lease('x').namedLimits({ fs: 2 }).build()],
      queue: [request('a').gpu(1).namedLimits({ fs: 3 }).build(), request('b').gpu(1).namedLimits({ fs: 1 }).build()],
      granted: [],
      reasons: {
        a: 'LimitExhausted: fs 2 of 4 in use (asks for 3)',
        b: 'LimitExhausted: fs 2 of 4 in use; a is ahead in line for it',
      },
    },
    {
      name: 'a max lowered below its use: nothing more is granted until holders release',
      limits: [{ name: 'fs', max: 1 }],
      leases: [lease('x').namedLimits({ fs: 1 }).build(), lease('y').namedLimits({ fs: 1 }).build()],
      queue: [request('a').gpu(1).namedLimits({ fs: 1 }).build()],
      granted: [],
      reasons: { a: 'LimitExhausted: fs 2 of 1 in use' },
    },
    {
      name: 'a limit that does not exist: rejected at once, naming it and the limits that exist',
      limits: fs1,
      leases: [],
      queue: [request('a').gpu(1).namedLimits({ 'feature-store': 1 }).build()],
      granted: [],
      reasons: { a: 'UnknownLimit: limit "feature-store" does not exist in the pool; limits: fs' },
    },
    {
      name: 'a max lowered below a queued ask: it waits, saying so, rejected by nothing',
      limits: [{ name: 'fs', max: 2 }],
      leases: [],
      queue: [request('a').gpu(1).namedLimits({ fs: 3 }).build()],
      granted: [],
      reasons: { a: 'LimitExhausted: fs 0 of 2 in use; it asks for 3, more than the max, lowered since it was queued' },
    },
    {
      name: 'a max of 0 drains a limit: nothing is granted, and the queued step waits',
      limits: [{ name: 'fs', max: 0 }],
      leases: [],
      queue: [request('a').gpu(1).namedLimits({ fs: 1 }).build()],
      granted: [],
      reasons: { a: 'LimitExhausted: fs 0 of 0 in use; it asks for 1, more than the max' },
    },
    {
      name: 'a request over a lowered max takes no place in the line: later asks that fit go on',
      limits: [{ name: 'fs', max: 2 }],
      leases: [],
      queue: [request('a').gpu(1).namedLimits({ fs: 3 }).build(), request('b').gpu(1).namedLimits({ fs: 2 }).build()],
      granted: ['b'],
      reasons: { a: 'LimitExhausted: fs 0 of 2 in use; it asks for 3' },
    },
  ])('$name', ({ limits, leases, queue, granted, reasons }) => {
    const d = decide(snapshot({ nodes: [big], leases, queue, limits }), { now: 1000 });
    expect(d.grants.map((g) => g.requestId)).toEqual(granted);
    for (const [id, reason] of Object.entries(reasons))
      expect(reasonOf(d, id)).toMatch(new RegExp(`^${escape(reason)}`));
    expect(d.preemptions).toEqual([]);
  });

  it('a request short only of a limit evicts nothing, though it outranks what runs', () => {
    const small = node('n1').gpus(1).build();
    const d = decide(
      snapshot({
        nodes: [small],
        limits: fs1,
        leases: [lease('low').gpus(0).preemptible().namedLimits({ fs: 1 }).build()],
        queue: [request('high').gpu(1).priority(10).namedLimits({ fs: 1 }).build()],
      }),
      { now: 1000, policy: { preemption: true } },
    );
    expect(d.preemptions).toEqual([]);
    expect(reasonOf(d, 'high')).toBe('LimitExhausted: fs 1 of 1 in use');
  });

  it('a preemptor keeps its units while its victims stop: a later request that fits now does not take them', () => {
    const n = node('n1').gpus(2).build();
    const d = decide(
      snapshot({
        nodes: [n],
        limits: fs1,
        leases: [lease('low').gpus(0, 1).preemptible().build()],
        queue: [
          request('high').gpu(2).priority(10).namedLimits({ fs: 1 }).build(),
          request('cpu-only')
            .resources(parseResources({ cpu: 1 }).request!)
            .namedLimits({ fs: 1 })
            .build(),
        ],
      }),
      { now: 1000, policy: { preemption: true } },
    );
    expect(d.preemptions.map((p) => p.requestId)).toEqual(['low']);
    expect(d.grants).toEqual([]);
    // `high` holds the unit in this cycle, although no lease of it exists yet: the reason says so,
    // rather than counting a unit in use that `allot limit list` shows free.
    expect(reasonOf(d, 'cpu-only')).toBe('LimitExhausted: fs 0 of 1 in use, 1 kept for high while its victims stop');
  });

  it('no starvation over cycles: the large ask keeps its place while small ones come and go', () => {
    const pool = poolWith([{ name: 'fs', max: 2 }]);
    pool.acquire(acquire('small-1', { fs: 1 }), 0);
    pool.acquire(acquire('small-2', { fs: 1 }), 0);
    pool.schedule(0);
    pool.acquire(acquire('big', { fs: 2 }), 1);
    pool.acquire(acquire('small-3', { fs: 1 }), 2);
    pool.schedule(2);
    pool.release('small-1');
    pool.schedule(3);
    // One unit is free, but big came first: small-3 does not take it.
    expect(pool.leases.map((l) => l.requestId)).toEqual(['small-2']);
    pool.release('small-2');
    pool.schedule(4);
    expect(pool.leases.map((l) => l.requestId)).toEqual(['big']);
    expect(pool.queue.map((r) => `${r.requestId} ${r.reason}: ${r.message}`)).toEqual([
      'small-3 LimitExhausted: fs 2 of 2 in use',
    ]);
  });

  it('backfill takes no unit a blocked request ahead asks for: its line and its reserved room stay its own', () => {
    // `big` is first in line, blocked for GPUs until `x` ends; `short` could backfill before then.
    // Had it taken fs's only unit, `big` would wait for fs in the next cycle and block nothing, and
    // `long-1` and `long-2`, with no time limit, would take the GPUs reserved for it.
    const n = node('n1').gpus(4).build();
    const state = {
      leases: [lease('x').gpus(0).limit(100_000).build()],
      queue: [
        request('big').gpu(4).at(0).namedLimits({ fs: 1 }).build(),
        request('short').gpu(1).at(1).limit(10_000).namedLimits({ fs: 1 }).build(),
        request('long-1').gpu(1).at(2).build(),
        request('long-2').gpu(1).at(3).build(),
      ],
    };
    const granted: string[] = [];
    for (const now of [1000, 2000, 3000]) {
      const d = decide(snapshot({ nodes: [n], leases: state.leases, queue: state.queue, limits: fs1 }), { now });
      applyDecisions(state, d, now, { leaseId: (r, i) => `${r.requestId}/${i}` });
      granted.push(...d.grants.map((g) => g.requestId));
      if (now === 1000)
        expect(reasonOf(d, 'short')).toBe('LimitExhausted: fs 0 of 1 in use; big is ahead in line for it');
    }
    expect(granted).toEqual([]);
    expect(state.queue.find((r) => r.requestId === 'big')?.reason).toBe('Resources');
  });

  it.each<{ asks: Record<string, number>; reason: string; rejected: string[] }>([
    { asks: { fs: 2 }, reason: 'LimitExhausted: fs 0 of 1 in use; it asks for 2, more than the max', rejected: [] },
    { asks: { gone: 1 }, reason: 'UnknownLimit: limit "gone" does not exist in the pool', rejected: ['a'] },
  ])(
    'a request that only a new node would hold is not scaled up for when it asks $asks',
    ({ asks, reason, rejected }) => {
      // No node has 8 GPUs, a template does: without its limits it would wait for a new node, and
      // count as demand that the scaler adds one for, only to be rejected once the node is there.
      const template = { name: 'gpu8', spec: node('t').gpus(8).build().spec, max: 2 };
      const d = decide(
        {
          nodes: [node('n1').gpus(1).build()],
          leases: [],
          queue: [request('a').gpu(8).namedLimits(asks).build()],
          templates: [template],
          limits: fs1,
        },
        { now: 1000 },
      );
      expect(reasonOf(d, 'a')).toMatch(new RegExp(`^${escape(reason)}`));
      expect(d.rejections.map((r) => r.requestId)).toEqual(rejected);
    },
  );

  it("a request over its team's quota holds no place in a limit's line: other teams' asks take the free units", () => {
    // `over` of team a cannot start while a is at its quota; waiting first in fs's line, it would
    // keep team b's `small` from the free unit for as long as a stays there.
    const d = decide(
      snapshot({
        nodes: [big],
        limits: [{ name: 'fs', max: 2 }],
        teams: [
          { name: 'a', nominal: { gpu: 1000 }, borrowingLimit: { gpu: 0 } },
          // b borrows what c does not use: neither over nor small is within its team's nominal quota.
          { name: 'b', nominal: { gpu: 0 } },
          { name: 'c', nominal: { gpu: 6000 } },
        ],
        leases: [
          lease('a-runs').gpus(0).team('a').build(),
          lease('b-runs').gpus(1).team('b').namedLimits({ fs: 1 }).build(),
        ],
        queue: [
          request('over').gpu(1).team('a').at(0).namedLimits({ fs: 2 }).build(),
          request('small').gpu(1).team('b').at(1).namedLimits({ fs: 1 }).build(),
        ],
      }),
      { now: 1000 },
    );
    expect(d.grants.map((g) => g.requestId)).toEqual(['small']);
    expect(reasonOf(d, 'over')).toMatch(/^QuotaExhausted: team a uses 1 of 1 gpu/);
  });

  it('a gang holds its units once, on the lease of its first copy', () => {
    const d = decide(
      snapshot({
        nodes: [node('n1').gpus(1).build(), node('n2').gpus(1).build()],
        limits: fs1,
        queue: [request('g').gpu(1).replicas(2).namedLimits({ fs: 1 }).build()],
      }),
      { now: 0 },
    );
    expect(d.grants.map((g) => g.allocations.length)).toEqual([2]);
    const state = { leases: [] as Lease[], queue: [request('g').gpu(1).replicas(2).namedLimits({ fs: 1 }).build()] };
    applyDecisions(state, d, 0, { leaseId: (r, i) => `${r.requestId}/${i}` });
    expect(state.leases.map((l) => l.limits)).toEqual([{ fs: 1 }, undefined]);
    expect(limitStatus(fs1, state.leases, state.queue)[0]).toMatchObject({ inUse: 1, max: 1 });
  });
});

describe('named limits in the pool', () => {
  it('a release frees the units, and the next request in line gets them', () => {
    const pool = poolWith(fs1);
    pool.acquire(acquire('a', { fs: 1 }), 0);
    pool.acquire(acquire('b', { fs: 1 }), 0);
    pool.schedule(0);
    expect(pool.lookup('b')).toMatchObject({ status: 'queued', reason: 'LimitExhausted', message: 'fs 1 of 1 in use' });
    expect(pool.status(0).limits).toEqual([
      { name: 'fs', max: 1, inUse: 1, holders: [{ requestId: 'a', label: 'a', amount: 1 }], waiting: 1 },
    ]);
    pool.release('a');
    expect(pool.schedule(1).map((e) => e.kind)).toEqual(['grant']);
    expect(pool.leases.map((l) => [l.requestId, l.limits])).toEqual([['b', { fs: 1 }]]);
  });

  it.each([
    ['the lease expires', (p: PoolState) => p.checkHealth(10 * 60_000)],
    ['the node is lost', (p: PoolState) => p.checkHealth(60 * 60_000)],
  ])('units held by a lease taken back are free again when %s', (_, takeBack) => {
    const pool = poolWith(fs1);
    pool.acquire(acquire('a', { fs: 1 }), 0);
    pool.schedule(0);
    takeBack(pool);
    expect(pool.leases).toEqual([]);
    expect(limitStatus(pool.limits, pool.leases, pool.queue)[0]?.inUse).toBe(0);
  });

  it('an acquire naming a limit that does not exist is rejected at once, naming it and the limits there are', () => {
    const pool = poolWith(fs1);
    expect(pool.acquire(acquire('a', { 'feature-store': 1 }), 0)).toEqual({
      status: 'rejected',
      reason: 'UnknownLimit',
      message:
        'limit "feature-store" does not exist in pool p; limits: fs; add it with `allot limit set feature-store --max N`',
    });
  });

  it('an acquire asking for more than a max is rejected at once; a max lowered later holds it, and raised again grants it', () => {
    const pool = poolWith([{ name: 'fs', max: 2 }]);
    expect(pool.acquire(acquire('over', { fs: 3 }), 0)).toMatchObject({
      status: 'rejected',
      reason: 'Unschedulable',
      message: 'asks for 3 of limit fs, more than its max 2; raise it with `allot limit set fs --max 3`',
    });
    // Drained to 0 while a step waits behind a holder: the step keeps waiting, and says why.
    pool.acquire(acquire('holder', { fs: 1 }), 0);
    pool.schedule(0);
    pool.acquire(acquire('queued', { fs: 2 }), 1);
    pool.setLimit({ name: 'fs', max: 0 });
    pool.release('holder');
    expect(pool.schedule(2)).toEqual([]);
    expect(pool.lookup('queued')).toMatchObject({
      status: 'queued',
      reason: 'LimitExhausted',
      message: expect.stringMatching(
        /^fs 0 of 0 in use; it asks for 2, more than the max, lowered since it was queued/,
      ),
    });
    pool.setLimit({ name: 'fs', max: 2 });
    expect(pool.schedule(3).map((e) => e.kind)).toEqual(['grant']);
  });

  it('limits survive the state as plain JSON (continue-as-new), sorted by name', () => {
    const pool = poolWith([]);
    pool.setLimit({ name: 'zeta', max: 2 });
    pool.setLimit({ name: 'alpha', max: 1 });
    pool.setLimit({ name: 'zeta', max: 3 });
    const again = new PoolState(JSON.parse(JSON.stringify(pool.toJSON())));
    expect(again.limits).toEqual([
      { name: 'alpha', max: 1 },
      { name: 'zeta', max: 3 },
    ]);
    expect(again.removeLimit('alpha')).toBe(true);
    expect(again.removeLimit('alpha')).toBe(false);
  });
});

describe('the invariant check of named limits', () => {
  it('fails on a state whose leases hold more than a max, and names the limit and the leases', () => {
    const leases = [lease('a').namedLimits({ fs: 1 }).build(), lease('b').namedLimits({ fs: 1 }).build()];
    expect(limitBreaches(fs1, leases)).toEqual(['limit fs has 2 units held of 1, by a-lease, b-lease']);
  });

  it('lets the holders of a lowered max keep their units, but not a lease granted since', () => {
    const leases = [lease('a').namedLimits({ fs: 1 }).build(), lease('b').grantedAt(5).namedLimits({ fs: 1 }).build()];
    expect(limitBreaches(fs1, leases, (l) => l.grantedAt > 10)).toEqual([]);
    expect(limitBreaches(fs1, leases, (l) => l.grantedAt >= 5)).toHaveLength(1);
  });
});

describe('validation of named limits', () => {
  it.each([
    [{ name: 'fs', max: 4 }, []],
    [{ name: '', max: 1 }, ['name']],
    [{ name: 'a b', max: 1 }, ['name']],
    [{ name: 'fs', max: -1 }, ['max']],
    [{ name: 'fs', max: 1.5 }, ['max']],
    [{ name: 'fs', max: '4' }, ['max']],
    [{ name: 'fs', max: 1, extra: true }, ['extra']],
  ])('setLimit %j: problems at %j', (input, paths) => {
    expect(validateNamedLimit(input).map((i) => i.path.join('.'))).toEqual(paths);
  });

  it.each([
    [{ fs: 1 }, []],
    [{ fs: 0 }, ['limits.fs']],
    [{ fs: '1' }, ['limits.fs']],
    [{ 'bad name': 1 }, ['limits.bad name']],
    [[1], ['limits']],
  ])('request limits %j: problems at %j', (value, paths) => {
    expect(validateRequestLimits(value, ['limits']).map((i) => i.path.join('.'))).toEqual(paths);
  });
});

function poolWith(limits: NamedLimit[], nodes = 1): PoolState {
  const pool = new PoolState(emptyPoolState('p'));
  for (let i = 1; i <= nodes; i++) pool.registerNode(node(`n${i}`).gpus(1).build().spec, 0);
  for (const l of limits) pool.setLimit(l);
  return pool;
}

function acquire(id: string, limits: Record<string, number>): AcquireInput {
  return {
    requestId: id,
    owner: { kind: 'client', name: id },
    resources: parseResources({ cpu: 1 }).request!,
    limits,
  };
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
