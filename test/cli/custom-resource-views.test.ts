/**
 * Where custom resources show: a node's inventory flags, `allot submit --resource`, the workload's
 * environment, `allot status` and `allot queue` (text and JSON), the pool gauges and `allot usage`.
 */
import type { Client } from '@temporalio/client';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { AcquireInput, Issue, PoolStatus } from '../../src/core';
import { PoolState, ValidationError, emptyPoolState, parseCustomPairs, parseResources } from '../../src/core';
import { stepEnvironment } from '../../src/activities/environment';
import type { AgentContext } from '../../src/activities/context';
import { leaseMismatch } from '../../src/activities/fencing';
import { renderUsage } from '../../src/cli/accounting';
import { buildSubmitStep } from '../../src/cli/commands/submit';
import { UserError } from '../../src/cli/errors';
import { renderQueue, renderStatus, statusJson } from '../../src/cli/pool-status';
import { usageReport } from '../../src/cli/usage-report';
import { detectInventory } from '../../src/workers/inventory';
import { registerControlMetrics } from '../../src/workers/metrics';
import type { CapacityReport } from '../../src/workflows/messages';
import type { LaunchInput } from '../../src/workflows/step-types';

function ask(id: string, custom: Record<string, number>): AcquireInput {
  const resources = parseResources({ cpu: 1, custom }).request;
  if (!resources) throw new Error('bad fixture: the request does not parse');
  return { requestId: id, owner: { kind: 'workflow', workflowId: `wf-${id}` }, resources, label: id };
}

/** A node with two NVMe slots, two steps holding one each, and a third waiting for one. */
function nvmePool(): PoolStatus {
  const pool = new PoolState(emptyPoolState('p'));
  pool.registerNode({ id: 'n1', cpuMilli: 8000, memoryMiB: 32768, gpus: [], labels: {}, custom: { nvme: 2 } }, 0);
  for (const id of ['a', 'b', 'c']) pool.acquire(ask(id, { nvme: 1 }), 0);
  pool.schedule(0);
  return pool.status(1000);
}

describe('the NAME=N flags of agent, dev and submit', () => {
  it('read every pair, dropping zeros', () => {
    const issues: Issue[] = [];
    expect(parseCustomPairs(['nvme=2', 'lic=1', 'ib=0'], ['--resource'], issues)).toEqual({ nvme: 2, lic: 1 });
    expect(issues).toEqual([]);
  });

  it('report every bad pair at once, and a name given twice', () => {
    const issues: Issue[] = [];
    parseCustomPairs(['nvme', 'lic=-1', 'Lic=1', 'cpu=2', 'ib=1', 'ib=2'], ['--resource'], issues);
    expect(issues.map((i) => i.message)).toEqual([
      expect.stringContaining('must be NAME=N'),
      expect.stringContaining('the amount in "lic=-1" must be a whole number >= 0'),
      expect.stringContaining('the name in "Lic=1" must be a lowercase letter'),
      expect.stringContaining('the name in "cpu=2" must not be gpu, cpu, memory'),
      expect.stringContaining('names ib twice'),
    ]);
  });

  it('give the declared node its custom resources', async () => {
    const inv = await detectInventory('n1', { gpus: 0, cpu: '2', memory: '4Gi', resources: ['nvme=2', 'lic=1'] });
    expect(inv.spec.custom).toEqual({ nvme: 2, lic: 1 });
  });

  it('refuse a bad inventory flag, naming --resource', async () => {
    const err = await detectInventory('n1', { gpus: 0, cpu: '2', memory: '4Gi', resources: ['nvme=1.5'] }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).message).toMatch(/^--resource: the amount in "nvme=1\.5"/);
  });

  it('put submit --resource into the step', () => {
    const step = buildSubmitStep(['true'], { resource: ['nvme=1'], wait: true });
    expect(step.resources?.custom).toEqual({ nvme: 1 });
    expect(() => buildSubmitStep(['true'], { resource: ['nvme'], wait: true })).toThrow(UserError);
  });
});

describe('a workload', () => {
  const ctx = { nodeId: 'n1', dataDir: '/tmp' } as AgentContext;
  const launch = {
    stepId: 's',
    name: 's',
    attempt: 1,
    leaseId: 'l1',
    command: ['true'],
    env: {},
    gpuIndices: [],
    gracePeriodMs: 1000,
  } as LaunchInput;

  it('learns how much of each custom resource it holds from ALLOT_RESOURCE_<NAME>', () => {
    const env = stepEnvironment(
      ctx,
      { ...launch, custom: { nvme: 2, 'ib-port': 1 } },
      { checkpoint: 'c', output: 'o', work: 'w' },
    );
    expect(env.ALLOT_RESOURCE_NVME).toBe('2');
    expect(env.ALLOT_RESOURCE_IB_PORT).toBe('1');
    expect(Object.keys(stepEnvironment(ctx, launch, { checkpoint: 'c', output: 'o', work: 'w' }))).not.toContain(
      'ALLOT_RESOURCE_NVME',
    );
  });

  it('is not launched when its custom amounts differ from the lease', () => {
    const lease = nvmePoolLease();
    const input = { ...launch, pool: 'p', stepId: 'wf-a', leaseId: lease.leaseId, requestId: 'a' };
    expect(leaseMismatch({ ...input, custom: { nvme: 1 } }, lease, 'n1', 'p')).toBeUndefined();
    expect(leaseMismatch({ ...input, custom: { nvme: 2 } }, lease, 'n1', 'p')).toMatch(
      /granted custom resources nvme=1, and the launch asks for nvme=2/,
    );
  });
});

function nvmePoolLease(): PoolStatus['leases'][number] {
  const lease = nvmePool().leases.find((l) => l.requestId === 'a');
  if (!lease) throw new Error('no lease for a');
  return lease;
}

describe('allot status and allot queue', () => {
  it('show each node free of total, what running steps hold and what queued steps ask', () => {
    const text = renderStatus(nvmePool());
    const lines = text.split('\n');
    expect(lines.find((l) => l.startsWith('NODE'))).toMatch(/GPUS +CUSTOM$/);
    expect(lines.find((l) => l.startsWith('n1'))).toMatch(/nvme 0\/2 free$/);
    expect(lines.find((l) => l.startsWith('RUNNING'))).toMatch(/CUSTOM +FOR$/);
    expect(lines.filter((l) => /^[ab] .*nvme 1/.test(l))).toHaveLength(2);
    expect(renderQueue(nvmePool())).toMatch(/CUSTOM +REASON[\s\S]*\bc\b.*nvme 1 +Resources: .*short: nvme/);
  });

  it('keep their columns where no node or step has custom resources', () => {
    const pool = new PoolState(emptyPoolState('p'));
    pool.registerNode({ id: 'n1', cpuMilli: 8000, memoryMiB: 32768, gpus: [], labels: {} }, 0);
    expect(renderStatus(pool.status(0))).not.toContain('CUSTOM');
  });

  it('give custom capacity, use and asks in --json', () => {
    const json = statusJson(nvmePool()) as {
      nodes: { custom?: unknown }[];
      leases: { custom?: unknown }[];
      queue: { custom?: unknown }[];
    };
    expect(json.nodes[0]?.custom).toEqual({ nvme: { capacity: 2, used: 2, free: 0 } });
    expect(json.leases.map((l) => l.custom)).toEqual([{ nvme: 1 }, { nvme: 1 }]);
    expect(json.queue.map((q) => q.custom)).toEqual([{ nvme: 1 }]);
  });
});

describe('the pool gauges', () => {
  it.each([
    {
      what: 'custom capacity and what is granted, per node and resource',
      status: () => nvmePool(),
      lines: [
        'allot_pool_custom_resources{pool="p",node="n1",resource="nvme"} 2',
        'allot_pool_custom_resources_allocated{pool="p",node="n1",resource="nvme"} 2',
      ],
    },
    {
      what: "each named limit's max and the units in use",
      status: () => ({
        ...nvmePool(),
        limits: [{ name: 'fs', max: 4, inUse: 3, holders: [], waiting: 1 }],
      }),
      lines: ['allot_pool_limit_max{pool="p",limit="fs"} 4', 'allot_pool_limit_in_use{pool="p",limit="fs"} 3'],
    },
  ])('give $what', async ({ status: make, lines }) => {
    const status = make();
    const client = {
      workflow: {
        getHandle: () => ({
          query: (def: { name: string }) =>
            Promise.resolve(
              def.name === 'status'
                ? status
                : ({ demand: [], templates: [], scaling: {} } as unknown as CapacityReport),
            ),
        }),
      },
    } as unknown as Client;
    const registry = new Registry();
    registerControlMetrics(registry, client, ['p']);
    const text = await registry.metrics();
    for (const line of lines) expect(text).toContain(line);
  });
});

describe('allot usage', () => {
  const H = 3_600_000;
  const step = (team: string, custom?: Record<string, number>) => ({
    workflowId: `${team}-${JSON.stringify(custom)}`,
    record: {
      version: 1 as const,
      pool: 'p',
      team,
      pipeline: null,
      step: 's',
      leases: [
        {
          leaseId: 'l',
          nodeId: 'n1',
          gpu: 0,
          cpu: 1,
          memoryMiB: 1024,
          start: 0,
          end: H,
          ...(custom ? { custom } : {}),
        },
      ],
    },
  });

  it('sums custom resource-hours per row, with a column per resource only where some row held it', () => {
    const rows = usageReport([step('a', { nvme: 2 }), step('a', { lic: 1 }), step('b')], {
      since: 0,
      until: 2 * H,
      by: 'team',
      now: 2 * H,
    });
    expect(rows.find((r) => r.key === 'a')?.customHours).toEqual({ nvme: 2, lic: 1 });
    expect(rows.find((r) => r.key === 'b')?.customHours).toBeUndefined();
    const table = renderUsage(rows, 'team', 'table').split('\n');
    expect(table[0]).toMatch(/MEM-GIB-HOURS +LIC-HOURS +NVME-HOURS +CPU-EFF/);
    expect(renderUsage(rows, 'team', 'csv').split('\n')[0]).toContain('lic-hours,nvme-hours');
    const plain = usageReport([step('b')], { since: 0, until: H, by: 'team', now: H });
    expect(renderUsage(plain, 'team', 'table')).not.toMatch(/LIC|NVME/);
  });
});
