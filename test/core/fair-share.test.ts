/**
 * Fair share: progressive filling within a cycle, decayed usage with a half-life, team weights,
 * the carried history, and the pool and the simulator counting alike.
 */
import { describe, expect, it } from 'vitest';
import type { Lease, NodeSpec, PendingRequest } from '../../src/core';
import {
  PoolState,
  accrueUsage,
  applyDecisions,
  decide,
  emptyPoolState,
  parseResources,
  parseTeamQuotaInput,
} from '../../src/core';
import { parseScenario, simulate } from '../../src/sim';
import { lease, node, request, snapshot } from './builders';

const HOUR = 3_600_000;

/** `allot simulate` on a scenario file's content: job name → start (s). */
function starts(scenario: unknown): Map<string, number | null> {
  const run = simulate(parseScenario(scenario));
  return new Map(run.jobs.map((j) => [j.name, j.start]));
}

/** Jobs of one team: `count` one-GPU jobs of `duration` s submitted at `submit` s. */
function jobs(team: string, count: number, submit: number, duration: number) {
  return Array.from({ length: count }, (_, i) => ({
    name: `${team}${i + 1}`,
    team,
    submit,
    duration,
    resources: { gpu: 1, cpu: 1, memory: '1Gi' },
  }));
}

const twoNodes = [{ name: 'n', count: 2, cpu: '32', memory: '128Gi', gpus: 3, gpuModel: 'A100' }];

describe('fair share in allot simulate: A has 9 jobs of 50 s at t=0, B 6 at t=2, on 2 nodes of 3 GPUs', () => {
  const bAt50 = (policy: Record<string, unknown>): number => {
    const s = starts({ nodes: twoNodes, policy, jobs: [...jobs('a', 9, 0, 50), ...jobs('b', 6, 2, 50)] });
    return [...s].filter(([name, start]) => name.startsWith('b') && start === 50).length;
  };

  it.each([
    { name: 'without history, B gets exactly three of the six GPUs freed at t=50', halfLife: 0, expected: 3 },
    {
      name: 'with history (7 days), B gets all six: A has used the cluster for 50 s',
      halfLife: undefined,
      expected: 6,
    },
  ])('$name', ({ halfLife, expected }) => {
    const b = bAt50({ fairShare: true, ...(halfLife !== undefined ? { fairShareHalfLife: halfLife } : {}) });
    expect(b).toBeGreaterThanOrEqual(3);
    expect(b).toBe(expected);
  });
});

describe('a team that has run alone for hours yields to a newcomer', () => {
  // One GPU: a1 runs alone 0–3 h; a2 (submitted at 1 h) and b1 (submitted at 2 h) wait for it.
  // Aging (one point an hour) lifts a2 to 2 and b1 to 1, but only within their own priority: among
  // requests of one priority, shares decide.
  const scenario = (policy: Record<string, unknown>) => ({
    nodes: [{ name: 'n', cpu: '8', memory: '32Gi', gpus: 1, gpuModel: 'A100' }],
    policy,
    jobs: [
      { name: 'a1', team: 'a', submit: 0, duration: 3 * 3600, resources: { gpu: 1 } },
      { name: 'a2', team: 'a', submit: 3600, duration: 3600, resources: { gpu: 1 } },
      { name: 'b1', team: 'b', submit: 7200, duration: 3600, resources: { gpu: 1 } },
    ],
  });

  it.each([
    { name: 'with history, the newcomer goes first although it asked later', policy: { fairShare: true }, first: 'b1' },
    {
      name: 'a shorter half-life still remembers three hours',
      policy: { fairShare: true, fairShareHalfLife: 3600 },
      first: 'b1',
    },
    {
      name: 'without history, submit time decides: shares of current leases are equal',
      policy: { fairShare: true, fairShareHalfLife: 0 },
      first: 'a2',
    },
  ])('$name', ({ policy, first }) => {
    const s = starts(scenario(policy));
    expect(s.get(first)).toBe(3 * 3600);
  });
});

const gpuNode = (id: string, gpus: number) => node(id).gpus(gpus).cpu(64).build();
const oneGpu = (id: string, team: string, at: number) => request(id).gpu(1).team(team).at(at).build();
const granted = (queue: PendingRequest[], options: Parameters<typeof decide>[1], leases: Lease[] = []) =>
  decide(snapshot({ nodes: [gpuNode('n1', 4)], leases, queue }), options).grants.map((g) => g.requestId);

describe('with fair share, aging lifts a request to the priorities it has caught up with', () => {
  // One GPU free. Team a holds three and has waited three hours at priority 0; team b asks now.
  const held = [0, 1, 2].map((g) => lease(`a-run${g}`).team('a').gpus(g).build());
  const first = (bPriority: number, agingInterval: number) =>
    decide(
      snapshot({
        nodes: [gpuNode('n1', 4)],
        leases: held,
        queue: [
          request('a-old').gpu(1).team('a').at(0).build(),
          request('b-new')
            .gpu(1)
            .team('b')
            .priority(bPriority)
            .at(3 * HOUR)
            .build(),
        ],
      }),
      { now: 3 * HOUR, policy: { fairShare: true, agingIntervalMs: agingInterval } },
    ).grants.map((g) => g.requestId);

  it.each([
    {
      name: 'same priority: the smaller share goes first, however long the other waited',
      b: 0,
      aging: HOUR,
      grant: 'b-new',
    },
    {
      name: 'aged past a higher priority: it catches up with it, and shares decide there',
      b: 2,
      aging: HOUR,
      grant: 'b-new',
    },
    { name: 'not aged enough: the higher priority goes first', b: 5, aging: HOUR, grant: 'b-new' },
    { name: 'aging off: priority alone', b: 0, aging: 0, grant: 'b-new' },
  ])('$name', ({ b, aging, grant }) => {
    expect(first(b, aging)).toEqual([grant]);
  });

  it('aging still lifts a request over a higher priority when teams hold equal shares', () => {
    const queue = [
      request('a-old').gpu(1).team('a').at(0).build(),
      request('b-new')
        .gpu(1)
        .team('b')
        .priority(2)
        .at(3 * HOUR)
        .build(),
    ];
    const grants = (aging: number) =>
      decide(snapshot({ nodes: [gpuNode('n1', 1)], queue }), {
        now: 3 * HOUR,
        policy: { fairShare: true, agingIntervalMs: aging },
      }).grants.map((g) => g.requestId);
    // Aged to 3, a-old has caught up with priority 2; equal shares, so the earlier submit goes first.
    expect(grants(HOUR)).toEqual(['a-old']);
    expect(grants(0)).toEqual(['b-new']);
  });
});

describe('with fair share, a second pass over what the first one left changes nothing', () => {
  // Team b runs on two of four GPUs. Queued: b's p (priority 1) and b's h (priority 0, 3 GPUs, aged
  // past 1), both waiting three hours, and a's s (priority 0, 1 GPU) just now. The first pass grants
  // p and blocks h, first in line; s waits behind it. Nothing changes, and a pass runs again (any
  // message makes the pool schedule): h must still be first, and s must not start ahead of it just
  // because p, the one priority-1 request h had caught up with, left the queue for a lease.
  it('a request told to wait behind a blocked head is not granted by the next pass', () => {
    const nodes = [gpuNode('n1', 4)];
    const state = {
      leases: [lease('b-run').team('b').gpus(0, 1).build()],
      queue: [
        request('p').gpu(1).team('b').priority(1).at(0).build(),
        request('h').gpu(3).team('b').at(0).build(),
        request('s')
          .gpu(1)
          .team('a')
          .at(3 * HOUR)
          .build(),
      ],
    };
    const options = { now: 3 * HOUR, policy: { fairShare: true, agingIntervalMs: HOUR, backfill: false } };
    const first = decide(snapshot({ nodes, ...state }), options);
    expect(first.grants.map((g) => g.requestId)).toEqual(['p']);
    expect(first.waiting.find((w) => w.requestId === 's')?.message).toMatch(/behind h/);
    applyDecisions(state, first, 3 * HOUR, { leaseId: (r) => `${r.requestId}-l` });
    const again = decide(snapshot({ nodes, ...state }), options);
    expect(again.grants.map((g) => g.requestId)).toEqual([]);
  });
});

describe('progressive filling within one cycle', () => {
  // Four GPUs free at once; team a's requests were submitted before team b's.
  const queue = [
    oneGpu('a1', 'a', 0),
    oneGpu('a2', 'a', 1),
    oneGpu('a3', 'a', 2),
    oneGpu('b1', 'b', 3),
    oneGpu('b2', 'b', 4),
    oneGpu('b3', 'b', 5),
  ];

  it.each([
    {
      name: 'teams with equal shares take turns',
      options: { now: 10, policy: { fairShare: true } },
      expected: ['a1', 'b1', 'a2', 'b2'],
    },
    {
      name: 'shares fixed at the cycle start (runs recorded before) grant by submit time',
      options: { now: 10, policy: { fairShare: true }, fairShare: { fixed: true } },
      expected: ['a1', 'a2', 'a3', 'b1'],
    },
    {
      name: 'fair share off: submit time',
      options: { now: 10, policy: { fairShare: false } },
      expected: ['a1', 'a2', 'a3', 'b1'],
    },
    {
      name: 'priority still comes first',
      options: { now: 10, policy: { fairShare: true } },
      queue: [...queue.slice(0, 3).map((r) => ({ ...r, priority: 5 })), ...queue.slice(3)],
      expected: ['a1', 'a2', 'a3', 'b1'],
    },
  ])('$name', ({ options, expected, ...rest }) => {
    const q = 'queue' in rest && rest.queue ? rest.queue : queue;
    expect(granted(q, options)).toEqual(expected);
  });

  it('a team already holding GPUs waits for the other to catch up', () => {
    const held = [lease('a0').team('a').gpus(0).build()];
    const q = [oneGpu('a1', 'a', 0), oneGpu('a2', 'a', 1), oneGpu('b1', 'b', 2), oneGpu('b2', 'b', 3)];
    // Three GPUs free: b first (a holds one), then a and b at equal shares by submit time.
    expect(granted(q, { now: 10, policy: { fairShare: true } }, held)).toEqual(['b1', 'a1', 'b2']);
  });
});

describe('team weights', () => {
  const queue = [
    ...Array.from({ length: 6 }, (_, i) => oneGpu(`b${i}`, 'b', i)),
    ...Array.from({ length: 6 }, (_, i) => oneGpu(`a${i}`, 'a', 10 + i)),
  ];
  const count = (weights: { team: string; weight: number }[]) => {
    const grants = decide(snapshot({ nodes: [gpuNode('n1', 6)], queue }), {
      now: 100,
      policy: { fairShare: true },
      fairShare: { weights },
    }).grants.map((g) => g.requestId[0]);
    return { a: grants.filter((t) => t === 'a').length, b: grants.filter((t) => t === 'b').length };
  };

  it.each([
    { name: 'equal weights split the GPUs evenly', weights: [], expected: { a: 3, b: 3 } },
    {
      name: 'a team of weight 2 gets twice the GPUs of a team of weight 1',
      weights: [{ team: 'a', weight: 2 }],
      expected: { a: 4, b: 2 },
    },
    {
      name: 'weights divide: 1 and 0.5 is the same as 2 and 1',
      weights: [{ team: 'b', weight: 0.5 }],
      expected: { a: 4, b: 2 },
    },
  ])('$name', ({ weights, expected }) => {
    expect(count(weights)).toEqual(expected);
  });

  it('a weight alone sets no quota, so other teams are not limited or unknown', () => {
    const parsed = parseTeamQuotaInput({ team: 'a', weight: 2 });
    expect(parsed).toEqual({ weight: 2, issues: [] });
    const pool = new PoolState(emptyPoolState('p'));
    pool.setTeamWeight('a', 2);
    pool.registerNode(gpuNode('n1', 1).spec, 0);
    const gpu = parseResources({ gpu: 1 }).request;
    if (!gpu) throw new Error('gpu 1 must parse');
    const outcome = pool.acquire(
      { requestId: 'x', owner: { kind: 'client', name: 'x' }, resources: gpu, team: 'other' },
      0,
    );
    expect(outcome.status).toBe('queued');
    expect(pool.schedule(0).map((e) => e.kind)).toEqual(['grant']);
    expect(pool.teams).toEqual([]);
    expect(pool.teamWeights).toEqual([{ team: 'a', weight: 2 }]);
  });

  it.each([0, -1, Number.NaN, '2', 2e6])('refuses a weight of %s, naming the field and what is allowed', (weight) => {
    const { issues } = parseTeamQuotaInput({ team: 'a', weight });
    expect(issues).toHaveLength(1);
    expect(issues[0]?.path).toEqual(['weight']);
    expect(issues[0]?.message).toMatch(/must be a number greater than 0 and at most 1000000 .*, got/);
  });
});

describe('decayed usage', () => {
  const H = 6 * HOUR;
  const gpuLease = (team: string, grantedAt: number) => ({
    ...lease(`${team}-l`).team(team).gpus(0).cpu(0).build(),
    memoryMiB: 0,
    grantedAt,
  });
  const capacity = { gpu: 1000 };
  const usageOf = (h: ReturnType<typeof accrueUsage>, team: string) =>
    h?.teams.find((t) => t.team === team)?.usage.gpu ?? 0;

  it('is the exact integral: one GPU held for one half-life counts (H / ln 2) · (1 − 1/2) GPU-seconds', () => {
    const start = accrueUsage(undefined, [], capacity, 0, H);
    const h = accrueUsage(start, [gpuLease('a', 0)], capacity, H, H);
    expect(usageOf(h, 'a')).toBeCloseTo((1000 * (H / 1000 / Math.LN2)) / 2, 6);
    expect(h?.capacity.gpu).toBeCloseTo(usageOf(h, 'a'), 6);
  });

  it('halves after one half-life without use', () => {
    const start = accrueUsage(undefined, [], capacity, 0, H);
    const used = accrueUsage(start, [gpuLease('a', 0)], capacity, HOUR, H);
    const later = accrueUsage(used, [], capacity, HOUR + H, H);
    expect(usageOf(later, 'a') / usageOf(used, 'a')).toBeCloseTo(0.5, 12);
  });

  it('is the same counted at every minute or once', () => {
    let steps = accrueUsage(undefined, [], capacity, 0, H);
    for (let t = 60_000; t <= 2 * HOUR; t += 60_000) steps = accrueUsage(steps, [gpuLease('a', 0)], capacity, t, H);
    const once = accrueUsage(accrueUsage(undefined, [], capacity, 0, H), [gpuLease('a', 0)], capacity, 2 * HOUR, H);
    expect(usageOf(steps, 'a') / usageOf(once, 'a')).toBeCloseTo(1, 10);
  });

  it('counts a lease granted after the last count from its grant', () => {
    const start = accrueUsage(undefined, [], capacity, 0, H);
    const h = accrueUsage(start, [gpuLease('a', HOUR)], capacity, 2 * HOUR, H);
    const whole = accrueUsage(
      accrueUsage(undefined, [], capacity, HOUR, H),
      [gpuLease('a', HOUR)],
      capacity,
      2 * HOUR,
      H,
    );
    expect(usageOf(h, 'a')).toBeCloseTo(usageOf(whole, 'a'), 6);
  });

  it('keeps no history with a half-life of 0, and forgets a team whose usage became negligible', () => {
    expect(accrueUsage(undefined, [gpuLease('a', 0)], capacity, HOUR, 0)).toBeUndefined();
    const start = accrueUsage(undefined, [], capacity, 0, H);
    const used = accrueUsage(start, [gpuLease('a', 0)], capacity, 60_000, H);
    expect(used?.teams.map((t) => t.team)).toEqual(['a']);
    // Twenty-five half-lives later, a's usage is below a millionth of the decayed capacity.
    expect(accrueUsage(used, [], capacity, 60_000 + 25 * H, H)?.teams).toEqual([]);
  });

  it('with a half-life too long to count in ms (Infinity), never decays: usage is the plain integral', () => {
    const start = accrueUsage(undefined, [], capacity, 0, Infinity);
    const h = accrueUsage(start, [gpuLease('a', 0)], capacity, HOUR, Infinity);
    expect(usageOf(h, 'a')).toBeCloseTo(1000 * 3600, 6);
    expect(h?.capacity.gpu).toBeCloseTo(1000 * 3600, 6);
  });

  it('recovers from carried amounts that are not finite numbers (NaN becomes null in JSON) instead of losing every team for good', () => {
    const carried = JSON.parse(
      JSON.stringify({ at: 0, capacity: { gpu: Number.NaN }, teams: [{ team: 'a', usage: { gpu: 'x' } }] }),
    ) as NonNullable<ReturnType<typeof accrueUsage>>;
    const h = accrueUsage(carried, [gpuLease('b', 0)], capacity, HOUR, H);
    expect(Number.isFinite(h?.capacity.gpu)).toBe(true);
    expect(usageOf(h, 'b')).toBeGreaterThan(0);
    const missingAt = { capacity: {}, teams: [] } as unknown as NonNullable<ReturnType<typeof accrueUsage>>;
    const fresh = accrueUsage(
      accrueUsage(missingAt, [], capacity, HOUR, H),
      [gpuLease('b', HOUR)],
      capacity,
      2 * HOUR,
      H,
    );
    expect(Number.isFinite(fresh?.capacity.gpu)).toBe(true);
    expect(usageOf(fresh, 'b')).toBeGreaterThan(0);
  });

  it('in allot simulate, a half-life of 1e306 s still remembers who used the GPU', () => {
    const s = starts({
      nodes: [{ name: 'n', cpu: '8', memory: '32Gi', gpus: 1, gpuModel: 'A100' }],
      policy: { fairShare: true, fairShareHalfLife: 1e306 },
      jobs: [
        { name: 'a1', team: 'a', submit: 0, duration: 100, resources: { gpu: 1 } },
        { name: 'a2', team: 'a', submit: 1, duration: 100, resources: { gpu: 1 } },
        { name: 'b1', team: 'b', submit: 2, duration: 100, resources: { gpu: 1 } },
      ],
    });
    expect(s.get('b1')).toBe(100);
  });
});

describe('the pool and the simulator count usage alike', () => {
  const specs: NodeSpec[] = [gpuNode('n-1', 3).spec, gpuNode('n-2', 3).spec];
  const scenario = {
    nodes: twoNodes,
    policy: { fairShare: true, fairShareHalfLife: 600 },
    jobs: [...jobs('a', 9, 0, 50), ...jobs('b', 6, 2, 50)],
  };

  /** Drives a PoolState through the acceptance scenario; returns grant times and the pool. */
  function runPool(carry: boolean): { grants: Map<string, number>; pool: PoolState } {
    let pool = new PoolState(emptyPoolState('p'));
    pool.setPolicy({ fairShare: true, fairShareHalfLifeMs: 600_000 });
    for (const s of specs) pool.registerNode(s, 0);
    const grants = new Map<string, number>();
    const gpu = parseResources({ gpu: 1, cpu: 1, memory: '1Gi' }).request;
    if (!gpu) throw new Error('must parse');
    const submit = (team: string, count: number, at: number) => {
      for (let i = 1; i <= count; i++)
        pool.acquire(
          { requestId: `${team}${i}`, owner: { kind: 'client', name: 'me' }, resources: gpu, team, submittedAt: at },
          at,
        );
    };
    const cycle = (now: number) => {
      for (const e of pool.schedule(now)) if (e.kind === 'grant') grants.set(e.lease.requestId, now / 1000);
    };
    submit('a', 9, 0);
    cycle(0);
    submit('b', 6, 2000);
    cycle(2000);
    for (const now of [50_000, 100_000, 150_000]) {
      const ending = [...grants].filter(([, at]) => at * 1000 === now - 50_000).map(([id]) => id);
      for (const id of ending) pool.handleRelease(id, now);
      if (carry) pool = new PoolState(JSON.parse(JSON.stringify(pool.toJSON())) as ReturnType<PoolState['toJSON']>);
      cycle(now);
    }
    return { grants, pool };
  }

  it('grants the same jobs at the same times, and ends with the same decayed usage', () => {
    const sim = simulate(parseScenario(scenario));
    const { grants, pool } = runPool(false);
    for (const j of sim.jobs) expect(grants.get(j.name), j.name).toBe(j.start);
    expect(sim.usage).toBeDefined();
    const history = pool.toJSON().usageHistory;
    expect(history?.at).toBe(sim.usage?.at);
    for (const t of sim.usage?.teams ?? []) {
      const mine = history?.teams.find((x) => x.team === t.team);
      expect(mine?.usage.gpu, t.team).toBeCloseTo(t.usage.gpu ?? 0, 6);
    }
  });

  it('count the cluster from its start when the first job arrives later, as a pool whose nodes were there', () => {
    // a1 runs 1–2 s; at 2 s c1, a2 and c2 (2 GPUs each) arrive and two fit. c (weight 3) goes
    // first; then a's share of the decayed capacity decides against c's: the capacity counts
    // from 0 s, when the nodes were there, not from the first arrival.
    const jobsAt2 = [
      { name: 'c1', team: 'c', gpu: 2 },
      { name: 'a2', team: 'a', gpu: 2 },
      { name: 'c2', team: 'c', gpu: 2 },
    ];
    const sim = starts({
      nodes: twoNodes,
      teams: [{ name: 'c', weight: 3 }],
      policy: { fairShare: true, fairShareHalfLife: 600, backfill: false, preemption: false },
      jobs: [
        { name: 'a1', team: 'a', submit: 1, duration: 1, resources: { gpu: 1, cpu: 1, memory: '1Gi' } },
        ...jobsAt2.map((j) => ({
          name: j.name,
          team: j.team,
          submit: 2,
          duration: 1,
          resources: { gpu: j.gpu, cpu: 1, memory: '1Gi' },
        })),
      ],
    });
    const pool = new PoolState(emptyPoolState('p'));
    pool.setPolicy({ fairShare: true, fairShareHalfLifeMs: 600_000, backfill: false, preemption: false });
    pool.setTeamWeight('c', 3);
    for (const s of specs) pool.registerNode(s, 0);
    const ask = (id: string, team: string, gpu: number, at: number) => {
      const resources = parseResources({ gpu, cpu: 1, memory: '1Gi' }).request;
      if (!resources) throw new Error('must parse');
      pool.acquire({ requestId: id, owner: { kind: 'client', name: 'me' }, resources, team, submittedAt: at }, at);
    };
    ask('a1', 'a', 1, 1000);
    pool.schedule(1000);
    pool.handleRelease('a1', 2000);
    for (const j of jobsAt2) ask(j.name, j.team, j.gpu, 2000);
    const granted = pool.schedule(2000).flatMap((e) => (e.kind === 'grant' ? [e.lease.requestId] : []));
    expect(granted.sort()).toEqual(['a2', 'c1']);
    expect(
      [...sim]
        .filter(([, start]) => start === 2)
        .map(([name]) => name)
        .sort(),
    ).toEqual(granted);
  });

  it('carries the history through JSON (continue-as-new) without changing a decision', () => {
    const straight = runPool(false);
    const carried = runPool(true);
    expect([...carried.grants]).toEqual([...straight.grants]);
    expect(carried.pool.toJSON().usageHistory).toEqual(straight.pool.toJSON().usageHistory);
    // A state written before fair share kept history loads and starts one.
    const old = { ...straight.pool.toJSON() };
    delete old.usageHistory;
    const loaded = new PoolState(JSON.parse(JSON.stringify(old)) as ReturnType<PoolState['toJSON']>);
    loaded.schedule(200_000);
    expect(loaded.toJSON().usageHistory?.at).toBe(200_000);
  });

  it('shows each team its weight, share and decayed usage in status', () => {
    const { pool } = runPool(false);
    pool.setTeamWeight('b', 2);
    const status = pool.status(150_000);
    expect(status.fairShare?.halfLifeMs).toBe(600_000);
    expect(status.fairShare?.teams.map((t) => [t.team, t.weight])).toEqual([
      ['a', 1],
      ['b', 2],
    ]);
    expect(status.fairShare?.teams[0]?.usage.gpu).toBeGreaterThan(0);
  });
});
