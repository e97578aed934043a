/**
 * Fuzzing of what the pool accepts from outside: node inventories, acquires, quotas, policies and
 * health timings. A validator never throws, whatever arrives; and what it lets through, the pool's
 * state takes without throwing and without granting more than a node has.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { AcquireInput, NodeSpec } from '../../src/core';
import {
  PoolState,
  emptyPoolState,
  limitBreaches,
  parseTeamQuotaInput,
  validateAcquireInput,
  validateHealthPolicy,
  validateNamedLimit,
  validateNodeSpec,
  validatePolicy,
} from '../../src/core';

const RUNS = Number(process.env.ALLOT_FUZZ_RUNS ?? 1_000);

const junk: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue(),
  fc.constantFrom(-1, 0.5, 1e300, '', 'x', null, [], {}, [null], { a: null }),
);
/** Right for the field now and then, wrong otherwise. */
const field = <T>(good: fc.Arbitrary<T>): fc.Arbitrary<unknown> =>
  fc.oneof({ weight: 8, arbitrary: good }, { weight: 1, arbitrary: junk });

const gpuArb = fc.record({
  index: field(fc.nat({ max: 7 })),
  model: field(fc.constantFrom('A100', 'H100')),
  memoryMiB: field(fc.constantFrom(16_384, 81_920)),
});

const nodeArb = fc.record({
  id: field(fc.constantFrom('n1', 'n2', 'n3')),
  cpuMilli: field(fc.integer({ min: 0, max: 64_000 })),
  memoryMiB: field(fc.integer({ min: 0, max: 512 * 1024 })),
  gpus: field(fc.array(field(gpuArb), { maxLength: 4 })),
  labels: field(fc.dictionary(fc.constantFrom('zone', 'rack'), field(fc.constantFrom('a', 'b')))),
  custom: fc.option(field(fc.dictionary(fc.constantFrom('licenses'), field(fc.nat({ max: 4 })))), { nil: undefined }),
});

const resourcesArb = fc.record({
  cpuMilli: field(fc.integer({ min: 0, max: 8_000 })),
  memoryMiB: field(fc.integer({ min: 0, max: 65_536 })),
  gpuMilli: field(fc.constantFrom(0, 250, 500, 1000, 2000, 1500, 9000)),
  gpuMemoryMiB: field(fc.constant(0)),
  gpuModels: field(fc.constantFrom([], ['A100'], ['H100', 'A100'])),
  labels: field(fc.constantFrom({}, { zone: 'a' })),
  custom: fc.option(field(fc.constantFrom({ licenses: 1 }, { licenses: 3 })), { nil: undefined }),
});

const acquireArb = fc.record({
  requestId: field(fc.string({ minLength: 1, maxLength: 8 })),
  owner: field(fc.constantFrom({ kind: 'client', name: 'fuzz' }, { kind: 'workflow', workflowId: 'step-1' })),
  resources: field(resourcesArb),
  priority: fc.option(field(fc.integer({ min: -1000, max: 1000 })), { nil: undefined }),
  team: fc.option(field(fc.constantFrom('vision', 'nlp')), { nil: undefined }),
  preemptible: fc.option(field(fc.boolean()), { nil: undefined }),
  timeLimitMs: fc.option(field(fc.nat({ max: 3_600_000 })), { nil: undefined }),
  limits: fc.option(field(fc.constantFrom({ fs: 1 }, { fs: 2 }, { 'no-such': 1 })), { nil: undefined }),
});

/**
 * No node holds more than it has (DESIGN invariant 1). Custom amounts are counted from what each
 * lease's acquire asked for (`asked`, by request id), so that leases without them cannot hide an
 * over-allocation.
 */
function expectNoOverAllocation(pool: PoolState, asked: ReadonlyMap<string, Record<string, number>>): void {
  for (const n of pool.nodes) {
    const leases = pool.leases.filter((l) => l.nodeId === n.spec.id);
    expect(leases.reduce((s, l) => s + l.cpuMilli, 0)).toBeLessThanOrEqual(n.spec.cpuMilli);
    expect(leases.reduce((s, l) => s + l.memoryMiB, 0)).toBeLessThanOrEqual(n.spec.memoryMiB);
    for (const g of n.spec.gpus) {
      const milli = leases.flatMap((l) => l.gpus).filter((s) => s.index === g.index);
      expect(milli.reduce((s, x) => s + x.milli, 0)).toBeLessThanOrEqual(1000);
    }
    const holds = (l: (typeof leases)[number]): Record<string, number> => asked.get(l.requestId) ?? l.custom ?? {};
    for (const name of new Set(leases.flatMap((l) => Object.keys(holds(l))))) {
      const held = leases.reduce((s, l) => s + (holds(l)[name] ?? 0), 0);
      expect(held, `custom ${name} held on ${n.spec.id}`).toBeLessThanOrEqual(n.spec.custom?.[name] ?? 0);
    }
  }
}

describe('what the pool takes from outside, fuzzed', () => {
  it('never throws in a validator, whatever arrives', () => {
    fc.assert(
      fc.property(fc.oneof(junk, nodeArb, acquireArb, resourcesArb), (value) => {
        for (const validate of [
          validateNodeSpec,
          validateAcquireInput,
          validatePolicy,
          validateHealthPolicy,
          validateNamedLimit,
        ]) {
          expect(Array.isArray(validate(value))).toBe(true);
        }
        expect(Array.isArray(parseTeamQuotaInput(value).issues)).toBe(true);
      }),
      { numRuns: RUNS },
    );
  });

  /** Registers the nodes, then acquires and schedules one by one, checking after each; `after` may tamper with the pool. */
  const takesAll =
    (after: (pool: PoolState) => void = () => {}) =>
    (nodes: unknown[], acquires: unknown[]): void => {
      const pool = new PoolState(emptyPoolState('fuzz'));
      pool.setLimit({ name: 'fs', max: 2 });
      const asked = new Map<string, Record<string, number>>();
      let now = 0;
      for (const spec of nodes) if (validateNodeSpec(spec).length === 0) pool.registerNode(spec as NodeSpec, now);
      for (const a of acquires) {
        now += 1000;
        if (validateAcquireInput(a).length > 0) continue;
        const input = a as AcquireInput;
        if (input.resources.custom && !asked.has(input.requestId)) asked.set(input.requestId, input.resources.custom);
        pool.acquire(input, now);
        pool.schedule(now);
        after(pool);
        expectNoOverAllocation(pool, asked);
        expect(limitBreaches(pool.limits, pool.leases)).toEqual([]);
      }
      expect(() => JSON.stringify(pool.status(now))).not.toThrow();
    };
  const inputs = [fc.array(nodeArb, { minLength: 1, maxLength: 3 }), fc.array(acquireArb, { maxLength: 12 })] as const;

  it('takes any inventories and acquires its validators let through, without over-allocating', () => {
    fc.assert(fc.property(...inputs, takesAll()), { numRuns: Math.ceil(RUNS / 2) });
  });

  it('the check fails on leases that carry no custom amounts, as the pool once granted them', () => {
    const forgetCustom = (pool: PoolState): void => {
      for (const l of pool.leases) delete l.custom;
    };
    const result = fc.check(fc.property(...inputs, takesAll(forgetCustom)), { numRuns: 20_000, seed: 1 });
    expect(result.failed).toBe(true);
    expect(String(result.errorInstance)).toMatch(/custom licenses held on n\d/);
  });
});
