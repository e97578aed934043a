/**
 * Property tests of DESIGN invariants 1 (no over-allocation, named limits included) and 5
 * (deterministic decisions) over random sequences of submits, completions, node joins and node
 * losses and changes of a named limit's max, under random policies.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Lease, NamedLimit, NodeRecord, PendingRequest, SchedulingPolicy, Snapshot } from '../../src/core';
import type { TeamQuota } from '../../src/core';
import { decide, limitBreaches } from '../../src/core';

const RUNS = Number(process.env.ALLOT_PROPERTY_RUNS ?? 10_000);

const nodeArb = fc.record({
  gpus: fc.integer({ min: 0, max: 4 }),
  model: fc.constantFrom('A100', 'T4'),
  cpu: fc.integer({ min: 2, max: 16 }),
  memGi: fc.integer({ min: 4, max: 64 }),
  zone: fc.constantFrom('a', 'b'),
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
  limit: fc.constantFrom(undefined, 10_000, 60_000),
  preemptible: fc.boolean(),
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

/** Invariant 1: no node holds more than it has, and a whole GPU is never shared. */
function checkNoOverAllocation(nodes: readonly NodeRecord[], leases: readonly Lease[]): void {
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
  }
}

/**
 * Named limits: no limit is held beyond its max by a lease granted at `now` (the holders of a
 * lowered max keep what they hold).
 */
function checkNamedLimits(limits: readonly NamedLimit[], leases: readonly Lease[], now: number): void {
  expect(limitBreaches(limits, leases, (l) => l.grantedAt === now)).toEqual([]);
}

describe('scheduling invariants over random sequences', () => {
  it('the named-limit check fails on leases granted beyond a max', () => {
    const held = (id: string): Lease => ({
      leaseId: id,
      requestId: id,
      owner: { kind: 'client', name: id },
      nodeId: 'n0',
      cpuMilli: 0,
      memoryMiB: 0,
      gpus: [],
      priority: 0,
      team: 'default',
      label: id,
      submittedAt: 0,
      grantedAt: 7,
      limits: { fs: 1 },
    });
    const over = [held('a'), held('b')];
    expect(limitBreaches([{ name: 'fs', max: 1 }], over, (l) => l.grantedAt === 7)).toEqual([
      'limit fs has 2 units held of 1, by a, b',
    ]);
    expect(() => checkNamedLimits([{ name: 'fs', max: 1 }], over, 7)).toThrow();
  });

  it(`never over-allocates and decides deterministically (${RUNS} sequences)`, () => {
    fc.assert(
      fc.property(
        fc.array(opArb, { minLength: 1, maxLength: 10 }),
        policyArb,
        teamsArb,
        limitsArb,
        (ops, policy, teams, named) => {
          let limits = named;
          const nodes: NodeRecord[] = [];
          let leases: Lease[] = [];
          let queue: PendingRequest[] = [];
          let now = 0;
          let id = 0;
          let joined = 0;
          for (const op of ops) {
            now += 1000;
            if (op.kind === 'submit') {
              const r = op.request;
              queue.push({
                requestId: `r${id}`,
                owner: { kind: 'client', name: 'p' },
                resources: {
                  cpuMilli: r.cpu * 1000,
                  memoryMiB: r.memGi * 1024,
                  gpuMilli: r.gpuMilli,
                  gpuMemoryMiB: 0,
                  gpuModels: r.model ? [r.model] : [],
                  labels: r.zone ? { zone: r.zone } : {},
                },
                priority: r.priority,
                team: r.team,
                label: `r${id}`,
                submittedAt: now,
                seq: id++,
                reason: 'Pending',
                message: '',
                replicas: r.replicas,
                ...(r.limit === undefined ? {} : { timeLimitMs: r.limit }),
                preemptible: r.preemptible,
                ...(r.named ? { limits: r.named } : {}),
              });
            } else if (op.kind === 'complete' && leases.length > 0) {
              const victim = leases[op.pick % leases.length]?.requestId;
              leases = leases.filter((l) => l.requestId !== victim);
            } else if (op.kind === 'join') {
              const n = op.node;
              nodes.push({
                spec: {
                  id: `n${joined++}`,
                  cpuMilli: n.cpu * 1000,
                  memoryMiB: n.memGi * 1024,
                  gpus: Array.from({ length: n.gpus }, (_, index) => ({ index, model: n.model, memoryMiB: 16_384 })),
                  labels: { zone: n.zone },
                },
                status: 'Ready',
                registeredAt: now,
              });
            } else if (op.kind === 'lose' && nodes.length > 0) {
              const [gone] = nodes.splice(op.pick % nodes.length, 1);
              leases = leases.filter((l) => l.nodeId !== gone?.spec.id);
            } else if (op.kind === 'set-limit') {
              limits = limits.map((l) => (l.name === 'fs' ? { ...l, max: op.max } : l));
            }
            const snap: Snapshot = { nodes, leases, queue, teams, limits };
            const d = decide(snap, { now, policy });
            expect(decide(structuredClone(snap), { now, policy })).toEqual(d);
            const byId = new Map(queue.map((r) => [r.requestId, r]));
            for (const g of d.grants) {
              const r = byId.get(g.requestId);
              if (!r) continue;
              expect(g.allocations).toHaveLength(r.replicas ?? 1);
              g.allocations.forEach((a, i) =>
                leases.push({
                  leaseId: `${r.requestId}/${i}`,
                  requestId: r.requestId,
                  owner: r.owner,
                  nodeId: a.nodeId,
                  cpuMilli: r.resources.cpuMilli,
                  memoryMiB: r.resources.memoryMiB,
                  gpus: a.gpus,
                  priority: r.priority,
                  team: r.team,
                  label: r.label,
                  submittedAt: r.submittedAt,
                  grantedAt: now,
                  preemptible: r.preemptible,
                  ...(r.timeLimitMs === undefined ? {} : { timeLimitMs: r.timeLimitMs }),
                  ...(r.limits && i === 0 ? { limits: r.limits } : {}),
                }),
              );
            }
            for (const p of d.preemptions) {
              for (const l of leases) if (l.requestId === p.requestId) l.preemptedAt = now;
              expect(leases.find((l) => l.requestId === p.requestId)?.preemptible).toBe(true);
            }
            if ((policy.gracePeriodMs ?? 0) === 0) leases = leases.filter((l) => l.preemptedAt === undefined);
            const done = new Set([...d.grants.map((g) => g.requestId), ...d.rejections.map((r) => r.requestId)]);
            queue = queue.filter((r) => !done.has(r.requestId));
            checkNoOverAllocation(nodes, leases);
            checkNamedLimits(limits, leases, now);
          }
        },
      ),
      { numRuns: RUNS },
    );
  });
});
