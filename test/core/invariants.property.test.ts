/**
 * Property tests of DESIGN invariants 1 (no over-allocation, custom resources and named limits
 * included) and 5 (deterministic decisions), and of gangs' placement (a spread gang's copies on
 * distinct nodes), over random sequences of submits, completions, node
 * joins and node losses and changes of a named limit's max, under random policies. Decisions are
 * applied with the core's `applyDecisions`, as the pool and the simulator apply them; custom
 * amounts and limit units are counted from what each request asked, so the last tests run the
 * same checks on applies that forget them, and the checks must fail there.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type {
  CycleState,
  Decisions,
  Lease,
  LeaseTerms,
  NamedLimit,
  NodeRecord,
  ReplicaPlacement,
  SchedulingPolicy,
  Snapshot,
  TeamQuota,
} from '../../src/core';
import { applyDecisions, decide } from '../../src/core';

const RUNS = Number(process.env.ALLOT_PROPERTY_RUNS ?? 10_000);

const nodeArb = fc.record({
  gpus: fc.integer({ min: 0, max: 4 }),
  model: fc.constantFrom('A100', 'T4'),
  cpu: fc.integer({ min: 2, max: 16 }),
  memGi: fc.integer({ min: 4, max: 64 }),
  zone: fc.constantFrom('a', 'b'),
  custom: fc.constantFrom<Record<string, number> | undefined>(undefined, { lic: 1 }, { lic: 2 }, { lic: 2, nvme: 1 }),
});

const requestArb = fc.record({
  gpuMilli: fc.constantFrom(0, 250, 500, 700, 1000, 2000, 3000),
  cpu: fc.integer({ min: 0, max: 6 }),
  memGi: fc.integer({ min: 0, max: 16 }),
  model: fc.constantFrom(undefined, 'A100', 'T4'),
  zone: fc.constantFrom(undefined, 'a'),
  priority: fc.integer({ min: -2, max: 2 }),
  team: fc.constantFrom('vision', 'nlp', 'other'),
  replicas: fc.constantFrom(1, 1, 1, 2),
  placement: fc.constantFrom<ReplicaPlacement | undefined>(undefined, 'spread', 'pack'),
  limit: fc.constantFrom(undefined, 10_000, 60_000),
  preemptible: fc.boolean(),
  custom: fc.constantFrom<Record<string, number> | undefined>(
    undefined,
    undefined,
    { lic: 1 },
    { lic: 2 },
    { nvme: 1 },
  ),
  named: fc.constantFrom<Record<string, number> | undefined>(
    undefined,
    undefined,
    { fs: 1 },
    { fs: 2 },
    { fs: 1, db: 1 },
    { db: 1 },
  ),
});

const opArb = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('submit' as const), request: requestArb }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('complete' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('join' as const), node: nodeArb }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('lose' as const), pick: fc.nat() }) },
  // A named limit's max changes, lowered below its use at times.
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('set-limit' as const), max: fc.integer({ min: 0, max: 3 }) }) },
);

const limitsArb: fc.Arbitrary<NamedLimit[]> = fc
  .record({ fs: fc.integer({ min: 0, max: 3 }), db: fc.nat(2) })
  .map(({ fs, db }) => [
    { name: 'db', max: db },
    { name: 'fs', max: fs },
  ]);

const policyArb: fc.Arbitrary<Partial<SchedulingPolicy>> = fc.record({
  placement: fc.constantFrom('fragmentation-aware' as const, 'best-fit' as const),
  preemption: fc.boolean(),
  backfill: fc.boolean(),
  fairShare: fc.boolean(),
  gracePeriodMs: fc.constantFrom(0, 5_000),
});

const teamsArb: fc.Arbitrary<TeamQuota[]> = fc.constantFrom(
  [],
  [
    { name: 'vision', nominal: { gpu: 2000 }, borrowingLimit: { gpu: 1000 } },
    { name: 'nlp', nominal: { gpu: 2000 } },
  ],
);

/**
 * Invariant 1: no node holds more than it has, and a whole GPU is never shared. Custom amounts are
 * counted from what each lease's request asked for (`asked`), not from the lease's own `custom`:
 * an apply that left them off the lease would otherwise hide the very over-allocation it causes.
 */
function checkNoOverAllocation(
  nodes: readonly NodeRecord[],
  leases: readonly Lease[],
  asked: ReadonlyMap<string, Readonly<Record<string, number>>> = new Map(),
): void {
  for (const n of nodes) {
    const on = leases.filter((l) => l.nodeId === n.spec.id);
    expect(on.reduce((s, l) => s + l.cpuMilli, 0)).toBeLessThanOrEqual(n.spec.cpuMilli);
    expect(on.reduce((s, l) => s + l.memoryMiB, 0)).toBeLessThanOrEqual(n.spec.memoryMiB);
    for (const d of n.spec.gpus) {
      const shares = on.flatMap((l) => l.gpus.filter((g) => g.index === d.index));
      expect(shares.reduce((s, g) => s + g.milli, 0)).toBeLessThanOrEqual(1000);
      expect(shares.reduce((s, g) => s + g.memoryMiB, 0)).toBeLessThanOrEqual(d.memoryMiB);
      if (shares.some((g) => g.milli === 1000)) expect(shares).toHaveLength(1);
    }
    // Every custom resource the node's leases hold, against what the node offers (none if absent).
    const holds = (l: Lease): Readonly<Record<string, number>> => asked.get(l.requestId) ?? l.custom ?? {};
    for (const name of new Set(on.flatMap((l) => Object.keys(holds(l))))) {
      const held = on.reduce((s, l) => s + (holds(l)[name] ?? 0), 0);
      expect(held, `custom ${name} held on ${n.spec.id}`).toBeLessThanOrEqual(n.spec.custom?.[name] ?? 0);
    }
  }
}

/**
 * Named limits: no limit is held beyond its max once a lease granted at `now` holds it (the holders
 * of a lowered max keep what they hold). Units are counted from what each holder asked.
 */
function checkNamedLimits(
  limits: readonly NamedLimit[],
  leases: readonly Lease[],
  asked: ReadonlyMap<string, Record<string, number>>,
  now: number,
): void {
  for (const limit of limits) {
    const holders = [...new Set(leases.map((l) => l.requestId))].filter((r) => (asked.get(r)?.[limit.name] ?? 0) > 0);
    const held = holders.reduce((sum, r) => sum + (asked.get(r)?.[limit.name] ?? 0), 0);
    if (held <= limit.max) continue;
    const fresh = leases.some((l) => l.grantedAt === now && holders.includes(l.requestId));
    expect(fresh, `limit ${limit.name} has ${held} units held of ${limit.max}`).toBe(false);
  }
}

/** How a cycle's decisions are applied: the core's own, or a broken one the check must catch. */
type Apply = (state: CycleState, decisions: Decisions, now: number, terms: LeaseTerms) => void;

const terms: LeaseTerms = { leaseId: (r, replica) => `${r.requestId}/${replica}` };

/**
 * What one random sequence reached: whether a lease held a custom resource or a limit, and whether
 * a spread gang was granted, at some point.
 */
interface Reach {
  customHeld: boolean;
  limitHeld: boolean;
  spreadGranted?: boolean;
}

/** Runs one random sequence, checking both invariants after every cycle. */
function runSequence(
  ops: Op[],
  policy: Partial<SchedulingPolicy>,
  teams: TeamQuota[],
  named: NamedLimit[],
  apply: Apply,
  reach: Reach = { customHeld: false, limitHeld: false },
): void {
  let limits = named;
  const nodes: NodeRecord[] = [];
  const state: CycleState = { leases: [], queue: [] };
  const asked = new Map<string, Record<string, number>>();
  const askedLimits = new Map<string, Record<string, number>>();
  let now = 0;
  let id = 0;
  let joined = 0;
  for (const op of ops) {
    now += 1000;
    if (op.kind === 'submit') {
      const r = op.request;
      if (r.custom) asked.set(`r${id}`, r.custom);
      if (r.named) askedLimits.set(`r${id}`, r.named);
      state.queue.push({
        requestId: `r${id}`,
        owner: { kind: 'client', name: 'p' },
        resources: {
          cpuMilli: r.cpu * 1000,
          memoryMiB: r.memGi * 1024,
          gpuMilli: r.gpuMilli,
          gpuMemoryMiB: 0,
          gpuModels: r.model ? [r.model] : [],
          labels: r.zone ? { zone: r.zone } : {},
          ...(r.custom ? { custom: { ...r.custom } } : {}),
        },
        priority: r.priority,
        team: r.team,
        label: `r${id}`,
        submittedAt: now,
        seq: id++,
        reason: 'Pending',
        message: '',
        replicas: r.replicas,
        ...(r.placement ? { replicaPlacement: r.placement } : {}),
        ...(r.limit === undefined ? {} : { timeLimitMs: r.limit }),
        preemptible: r.preemptible,
        ...(r.named ? { limits: { ...r.named } } : {}),
      });
    } else if (op.kind === 'complete' && state.leases.length > 0) {
      const victim = state.leases[op.pick % state.leases.length]?.requestId;
      state.leases = state.leases.filter((l) => l.requestId !== victim);
    } else if (op.kind === 'join') {
      const n = op.node;
      nodes.push({
        spec: {
          id: `n${joined++}`,
          cpuMilli: n.cpu * 1000,
          memoryMiB: n.memGi * 1024,
          gpus: Array.from({ length: n.gpus }, (_, index) => ({ index, model: n.model, memoryMiB: 16_384 })),
          labels: { zone: n.zone },
          ...(n.custom ? { custom: { ...n.custom } } : {}),
        },
        status: 'Ready',
        registeredAt: now,
      });
    } else if (op.kind === 'lose' && nodes.length > 0) {
      const [gone] = nodes.splice(op.pick % nodes.length, 1);
      state.leases = state.leases.filter((l) => l.nodeId !== gone?.spec.id);
    } else if (op.kind === 'set-limit') {
      limits = limits.map((l) => (l.name === 'fs' ? { ...l, max: op.max } : l));
    }
    const snap: Snapshot = { nodes, leases: state.leases, queue: state.queue, teams, limits };
    const d = decide(snap, { now, policy });
    expect(decide(structuredClone(snap), { now, policy })).toEqual(d);
    const byId = new Map(state.queue.map((r) => [r.requestId, r]));
    for (const g of d.grants) {
      const r = byId.get(g.requestId);
      expect(g.allocations).toHaveLength(r?.replicas ?? 1);
      if (g.allocations.length < 2 || r?.replicaPlacement === 'pack') continue;
      // A spread gang (the default): its copies are on pairwise distinct nodes.
      expect(new Set(g.allocations.map((a) => a.nodeId)).size, `nodes of ${g.requestId}`).toBe(g.allocations.length);
      reach.spreadGranted = true;
    }
    for (const p of d.preemptions) {
      expect(state.leases.find((l) => l.requestId === p.requestId)?.preemptible).toBe(true);
    }
    apply(state, d, now, terms);
    if ((policy.gracePeriodMs ?? 0) === 0) state.leases = state.leases.filter((l) => l.preemptedAt === undefined);
    if (state.leases.some((l) => l.custom)) reach.customHeld = true;
    if (state.leases.some((l) => askedLimits.has(l.requestId))) reach.limitHeld = true;
    checkNoOverAllocation(nodes, state.leases, asked);
    checkNamedLimits(limits, state.leases, askedLimits, now);
  }
}

type Op =
  | { kind: 'submit'; request: typeof requestArb extends fc.Arbitrary<infer R> ? R : never }
  | { kind: 'complete'; pick: number }
  | { kind: 'join'; node: typeof nodeArb extends fc.Arbitrary<infer N> ? N : never }
  | { kind: 'lose'; pick: number }
  | { kind: 'set-limit'; max: number };

const opsArb = fc.array(opArb, { minLength: 1, maxLength: 10 }) as fc.Arbitrary<Op[]>;

describe('scheduling invariants over random sequences', () => {
  it(`never over-allocates, spreads gangs over distinct nodes and decides deterministically (${RUNS} sequences)`, () => {
    const reach: Reach = { customHeld: false, limitHeld: false, spreadGranted: false };
    fc.assert(
      fc.property(opsArb, policyArb, teamsArb, limitsArb, (ops, policy, teams, limits) =>
        runSequence(ops, policy, teams, limits, applyDecisions, reach),
      ),
      { numRuns: RUNS },
    );
    // The draws put custom resources and limits on nodes and requests, and some were granted: both checks had work.
    expect(reach.customHeld).toBe(true);
    expect(reach.limitHeld).toBe(true);
    // Some spread gangs were granted: the distinct-nodes check had work too.
    expect(reach.spreadGranted).toBe(true);
  });

  // Before custom amounts were copied onto leases, each cycle saw a node's licenses all free again;
  // a cycle that does not see the units held by earlier grants gives them out again.
  it.each([
    { what: 'custom amounts', field: 'custom' as const, message: /custom (lic|nvme) held on n\d+/ },
    { what: 'named limits', field: 'limits' as const, message: /limit (fs|db) has \d+ units held of \d+/ },
  ])('the check fails when an apply forgets to hold $what on the leases', ({ field, message }) => {
    const forgets: Apply = (state, decisions, now, t) => {
      const before = new Set(state.leases);
      applyDecisions(state, decisions, now, t);
      for (const l of state.leases) if (!before.has(l)) delete l[field];
    };
    const result = fc.check(
      fc.property(opsArb, policyArb, teamsArb, limitsArb, (ops, policy, teams, limits) =>
        runSequence(ops, policy, teams, limits, forgets),
      ),
      { numRuns: Math.max(RUNS, 2_000), seed: 1 },
    );
    expect(result.failed).toBe(true);
    expect(String(result.errorInstance)).toMatch(message);
  });
});
