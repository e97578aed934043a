/**
 * The control worker's pool gauges ask each pool once per scrape: one `status` query and one
 * `capacity` query, however many gauges read them; and the metrics modules stay on the workers'
 * side of the CLI boundary.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { PoolStatus } from '../../src/core';
import { registerControlMetrics } from '../../src/workers/metrics';
import type { CapacityReport } from '../../src/workflows/messages';

const WORKERS = path.resolve(__dirname, '../../src/workers');

function poolStatus(pool: string): PoolStatus {
  return {
    pool,
    nodes: [
      {
        id: 'n1',
        status: 'Ready',
        labels: {},
        cpu: { capacityMilli: 4000, usedMilli: 1000 },
        memory: { capacityMiB: 8192, usedMiB: 1024 },
        gpus: [{ index: 0, model: 'A100', memoryMiB: 81920, used: 1, holders: [] }],
      },
    ],
    leases: [],
    queued: 3,
    queuedByTeam: [{ team: 'default', count: 3, gpuMilli: 3000 }],
    queuedByReason: [
      { reason: 'Priority', count: 2 },
      { reason: 'Resources', count: 1 },
    ],
    queue: [{ reason: 'Resources' }, { reason: 'Priority' }] as PoolStatus['queue'],
  };
}

const capacity: CapacityReport = {
  demand: [{ shape: '1×A100, cpu 1, memory 1Gi', requests: 1, gpus: 1, oldestWaitMs: 1000 }],
  templates: [],
  scaling: {} as CapacityReport['scaling'],
};

/** A client whose pools answer at once, counting the queries per pool and name. */
function countingClient(): { client: Client; queries: Map<string, number> } {
  const queries = new Map<string, number>();
  const client = {
    workflow: {
      getHandle: (workflowId: string) => ({
        query: (def: { name: string }) => {
          const key = `${workflowId} ${def.name}`;
          queries.set(key, (queries.get(key) ?? 0) + 1);
          const pool = workflowId.split('/')[1] ?? '';
          return Promise.resolve(def.name === 'status' ? poolStatus(pool) : capacity);
        },
      }),
    },
  };
  return { client: client as unknown as Client, queries };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('control worker metrics', () => {
  it('make one status query and one capacity query per pool per scrape', async () => {
    const { client, queries } = countingClient();
    const registry = new Registry();
    registerControlMetrics(registry, client, ['a', 'b']);
    const text = await registry.metrics();
    expect(text).toContain('allot_pool_gpus_allocated{pool="a",node="n1",model="A100"} 1');
    expect(text).toContain('allot_pool_demand_requests{pool="b"');
    expect(Object.fromEntries(queries)).toEqual({
      'allot-pool/a status': 1,
      'allot-pool/a capacity': 1,
      'allot-pool/b status': 1,
      'allot-pool/b capacity': 1,
    });
  });

  it('ask again at the next scrape', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const { client, queries } = countingClient();
    const registry = new Registry();
    registerControlMetrics(registry, client, ['a']);
    await registry.metrics();
    vi.setSystemTime(Date.now() + 15_000);
    await registry.metrics();
    expect(Object.fromEntries(queries)).toEqual({ 'allot-pool/a status': 2, 'allot-pool/a capacity': 2 });
  });

  it('count every queued request by reason, from the counts the pool keeps, not the rows it lists', async () => {
    const registry = new Registry();
    registerControlMetrics(registry, countingClient().client, ['a']);
    const text = await registry.metrics();
    expect(text).toContain('allot_pool_queue_by_reason{pool="a",reason="Resources"} 1');
    expect(text).toContain('allot_pool_queue_by_reason{pool="a",reason="Priority"} 2');
    expect(text).not.toContain('Unlisted');
  });
});

describe('the workers', () => {
  it('import nothing from the CLI', () => {
    const files = readdirSync(WORKERS, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
    expect(files.length).toBeGreaterThan(10);
    const offenders = files.filter((f) => /from '(\.\.\/)+cli\//.test(readFileSync(path.join(WORKERS, f), 'utf8')));
    expect(offenders).toEqual([]);
  });
});
