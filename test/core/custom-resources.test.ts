import { describe, expect, it } from 'vitest';
import type { AcquireInput, Issue, NodeSpec } from '../../src/core';
import { PoolState, emptyPoolState, parseCustomPairs, parseResources, validateNodeSpec } from '../../src/core';

const licensed: NodeSpec = {
  id: 'n1',
  cpuMilli: 8000,
  memoryMiB: 32768,
  gpus: [],
  labels: {},
  custom: { licenses: 2 },
};

function licenseRequest(id: string): AcquireInput {
  const resources = parseResources({ cpu: 1, custom: { licenses: 1 } }).request;
  if (!resources) throw new Error('bad fixture: the request does not parse');
  return { requestId: id, owner: { kind: 'workflow', workflowId: `w-${id}` }, resources };
}

function licensedPool(): PoolState {
  const pool = new PoolState(emptyPoolState('p'));
  pool.registerNode(licensed, 0);
  return pool;
}

describe('custom resources a node declares are never over-allocated', () => {
  it('three 1-license requests queued together on a 2-license node: two are granted, the third waits', () => {
    const pool = licensedPool();
    for (const id of ['r1', 'r2', 'r3']) pool.acquire(licenseRequest(id), 0);
    const grants = pool.schedule(0).filter((e) => e.kind === 'grant');
    expect(grants).toHaveLength(2);
    expect(pool.leases.map((l) => l.custom)).toEqual([{ licenses: 1 }, { licenses: 1 }]);
    expect(pool.queue.map((r) => r.requestId)).toEqual(['r3']);
  });

  it('a request arriving after two licenses were granted waits until one is released', () => {
    const pool = licensedPool();
    pool.acquire(licenseRequest('r1'), 0);
    pool.acquire(licenseRequest('r2'), 0);
    pool.schedule(0);
    pool.acquire(licenseRequest('r3'), 1);
    expect(pool.schedule(1)).toEqual([]);
    expect(pool.queue.map((r) => r.requestId)).toEqual(['r3']);
    pool.release('r1');
    expect(pool.schedule(2).map((e) => e.kind)).toEqual(['grant']);
    expect(pool.leases.map((l) => l.requestId).sort()).toEqual(['r2', 'r3']);
  });
});

describe('custom resource names', () => {
  it.each([
    ['nvme', true],
    ['ib-port', true],
    ['fs_slot2', true],
    ['NVMe', false],
    ['2nvme', false],
    ['fast disk', false],
    ['gpu', false],
    ['memory', false],
    ['a'.repeat(64), false],
  ])('%s is a custom resource name: %s', (name, ok) => {
    const parsed = parseResources({ cpu: 1, custom: { [name]: 1 } });
    expect(parsed.issues.length === 0).toBe(ok);
    if (!ok) expect(parsed.issues[0]?.path).toEqual(['resources', 'custom', name]);
  });

  it('are checked where users write them, not in what the pool already holds (so old histories replay)', () => {
    expect(validateNodeSpec({ ...licensed, custom: { Licenses: 2 } })).toEqual([]);
  });
});

describe('quotas of custom resources (allot quota set T --custom lic=1)', () => {
  it('a team at its license quota waits with QuotaExhausted, in a later cycle too, until its lease ends', () => {
    const pool = new PoolState({
      ...emptyPoolState('p'),
      teams: [
        { name: 'a', nominal: { lic: 1 }, borrowingLimit: { lic: 0 } },
        { name: 'default', nominal: {} },
      ],
    });
    pool.registerNode({ ...licensed, custom: { licenses: 4, lic: 4 } }, 0);
    const licFor = (id: string): AcquireInput => {
      const resources = parseResources({ cpu: 1, custom: { lic: 1 } }).request;
      if (!resources) throw new Error('bad fixture');
      return { requestId: id, owner: { kind: 'workflow', workflowId: `w-${id}` }, resources, team: 'a' };
    };
    pool.acquire(licFor('r1'), 0);
    expect(pool.schedule(0).map((e) => e.kind)).toEqual(['grant']);
    pool.acquire(licFor('r2'), 1);
    expect(pool.schedule(1)).toEqual([]);
    expect(pool.queue.map((r) => [r.requestId, r.reason])).toEqual([['r2', 'QuotaExhausted']]);
    pool.release('r1');
    expect(pool.schedule(2).map((e) => e.kind)).toEqual(['grant']);
  });
});

describe('a custom amount named like a built-in resource never stands for it', () => {
  // The pool checks only the amounts of what it is sent (names as they came, so that old
  // histories replay), so an acquire can carry `custom: { gpu: 0 }`. Quotas, usage and fair share
  // must still count the GPUs the request asks for, not that custom amount.
  const gpuNode: NodeSpec = {
    id: 'g1',
    cpuMilli: 16_000,
    memoryMiB: 65_536,
    gpus: [0, 1, 2, 3].map((index) => ({ index, model: 'A100', memoryMiB: 81_920 })),
    labels: {},
  };
  const sneaky = (id: string, custom: Record<string, number>): AcquireInput => ({
    requestId: id,
    owner: { kind: 'client', name: id },
    team: 'a',
    resources: { cpuMilli: 1000, memoryMiB: 1024, gpuMilli: 4000, gpuMemoryMiB: 0, gpuModels: [], labels: {}, custom },
  });

  it.each<Record<string, number>>([{ gpu: 0 }, { gpu: 0, cpu: 0, memory: 0 }])(
    'a team with a quota of 1 GPU and no borrowing is not granted 4 GPUs by asking custom %j',
    (custom) => {
      const pool = new PoolState(emptyPoolState('p'));
      pool.registerNode(gpuNode, 0);
      pool.setTeamQuota({ name: 'a', nominal: { gpu: 1000 }, borrowingLimit: { gpu: 0 } });
      pool.acquire(sneaky('r1', custom), 1);
      expect(pool.schedule(1).filter((e) => e.kind === 'grant')).toEqual([]);
      expect(pool.leases).toEqual([]);
    },
  );

  it("a lease that carries custom { gpu: 0 } still counts its GPUs in the team's usage", () => {
    const pool = new PoolState(emptyPoolState('p'));
    pool.registerNode(gpuNode, 0);
    pool.acquire(sneaky('r1', { gpu: 0 }), 1);
    pool.schedule(1);
    expect(pool.leases).toHaveLength(1);
    expect(pool.teamUsage().a?.gpu).toBe(4000);
  });
});

describe('two custom names that a workload would see as one variable are refused', () => {
  // ALLOT_RESOURCE_<NAME> upper-cases the name and writes "-" as "_": nvme-a and nvme_a would both
  // be ALLOT_RESOURCE_NVME_A, and the workload would learn only one of the amounts it holds.
  it('in --resource flags', () => {
    const issues: Issue[] = [];
    parseCustomPairs(['nvme-a=1', 'nvme_a=2'], ['--resource'], issues);
    expect(issues.map((i) => i.message).join('\n')).toMatch(/ALLOT_RESOURCE_NVME_A/);
  });

  it("in a step's resources.custom", () => {
    const { issues } = parseResources({ cpu: 1, custom: { 'nvme-a': 1, nvme_a: 1 } });
    expect(issues.map((i) => i.message).join('\n')).toMatch(/ALLOT_RESOURCE_NVME_A/);
  });
});
