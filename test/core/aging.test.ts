/**
 * Aging counts time waited, not time run, and preemption compares the priorities the queue is
 * ordered by (issue item 1: aging livelocked preemption).
 */
import { describe, expect, it } from 'vitest';
import type { AcquireInput, Lease, NodeSpec } from '../../src/core';
import { PoolState, decide, emptyPoolState, requestPriority } from '../../src/core';
import { computeMetrics, parseScenario, simulate } from '../../src/sim';
import { lease, node, request, snapshot } from './builders';

const HOUR = 3_600_000;

describe('aging', () => {
  it('counts the time a request waited in the queue, not the hours it ran before it queued again', () => {
    // Submitted at 0, ran from 0 to 6 h, queued again at 6 h: it has waited nothing.
    const requeued = { ...request('victim').priority(0).at(0).build(), queuedAt: 6 * HOUR };
    expect(requestPriority(requeued, 6 * HOUR, HOUR)).toBe(0);
    expect(requestPriority(requeued, 8 * HOUR, HOUR)).toBe(2);
    // What it waited in earlier attempts counts too.
    expect(requestPriority({ ...requeued, waitedMs: 3 * HOUR }, 6 * HOUR, HOUR)).toBe(3);
  });

  it('a preempted step queued again is ordered behind the request that evicted it', () => {
    const nodes = [node('n1').gpus(1).build()];
    const victim = { ...request('victim').priority(0).at(0).gpu(1).build(), queuedAt: 6 * HOUR + 30_000 };
    const preemptor = request('high')
      .priority(5)
      .at(6 * HOUR)
      .gpu(1)
      .build();
    const d = decide(snapshot({ nodes, queue: [victim, preemptor] }), { now: 6 * HOUR + 30_000 });
    expect(d.grants.map((g) => g.requestId)).toEqual(['high']);
    expect(d.waiting).toEqual([expect.objectContaining({ requestId: 'victim', reason: 'Resources' })]);
  });

  it('preemption compares the aged priority of the request with the one a lease was granted with', () => {
    const nodes = [node('n1').gpus(1).build()];
    // Granted after waiting 6 h: it runs with priority 0 + 6.
    const waitedLong = { ...lease('patient').gpus(0).priority(0).preemptible().build(), waitedMs: 6 * HOUR };
    // A priority-5 request arriving at 7 h, with the given lease running.
    const withLease = (running: Lease) =>
      decide(
        snapshot({
          nodes,
          leases: [running],
          queue: [
            request('high')
              .priority(5)
              .at(7 * HOUR)
              .gpu(1)
              .build(),
          ],
        }),
        {
          now: 7 * HOUR,
        },
      );
    const d = withLease(waitedLong);
    expect(d.preemptions).toEqual([]);
    // Granted at once: priority 0, and priority 5 evicts it.
    const fresh = lease('fresh').gpus(0).priority(0).preemptible().build();
    const e = withLease(fresh);
    expect(e.preemptions.map((p) => p.requestId)).toEqual(['fresh']);
    expect(e.preemptions[0]?.message).toBe('preempted by high (priority 5 > 0)');
  });
});

describe('a pool with a long-running preemptible step', () => {
  const spec: NodeSpec = {
    id: 'n1',
    cpuMilli: 8000,
    memoryMiB: 32768,
    gpus: [{ index: 0, model: 'A100', memoryMiB: 81920 }],
    labels: {},
  };
  const acquire = (id: string, owner: string, priority: number, submittedAt: number): AcquireInput => ({
    requestId: id,
    owner: { kind: 'workflow', workflowId: owner },
    resources: { cpuMilli: 1000, memoryMiB: 1024, gpuMilli: 1000, gpuMemoryMiB: 0, gpuModels: [], labels: {} },
    priority,
    submittedAt,
    preemptible: true,
  });

  it('gives the GPU to a priority-5 arrival after 6 h, and the evicted step does not take it back', () => {
    const pool = new PoolState(emptyPoolState('p'));
    pool.setHealth({ leaseTtlMs: 10 * HOUR, nodeNotReadyAfterMs: 10 * HOUR, nodeLostAfterMs: 10 * HOUR });
    pool.registerNode(spec, 0);
    pool.acquire(acquire('low#1', 'low', 0, 0), 0);
    expect(pool.schedule(0).map((e) => e.kind)).toEqual(['grant']);
    const t = 6 * HOUR;
    pool.acquire(acquire('high#1', 'high', 5, t), t);
    const preempt = pool.schedule(t);
    expect(preempt).toEqual([expect.objectContaining({ kind: 'preempt', preemptor: 'high#1' })]);
    // The victim stops, gives its lease back, and queues again with its first submit time.
    pool.release('low#1', { requeue: true });
    pool.acquire(acquire('low#2', 'low', 0, 0), t + 10_000);
    expect(pool.schedule(t + 10_000)).toEqual([
      expect.objectContaining({ kind: 'grant', lease: expect.objectContaining({ requestId: 'high#1' }) }),
    ]);
    // An hour later the victim has aged by one point, not by seven: it preempts nothing.
    expect(pool.schedule(t + HOUR)).toEqual([]);
    expect(pool.queue[0]).toMatchObject({ requestId: 'low#2', reason: 'Resources' });
  });
});

describe('allot simulate', () => {
  it('starts a priority-5 job within the grace period of a priority-0 job that ran 6 h, and the victim waits for its end', () => {
    const s = parseScenario({
      nodes: [{ name: 'n1', cpu: 8, memory: '32Gi', gpus: 1, gpuModel: 'A100' }],
      policy: { gracePeriod: 30, agingInterval: 3600 },
      jobs: [
        { name: 'long', submit: 0, duration: 10 * 3600, priority: 0, preemptible: true, resources: { gpu: 1 } },
        { name: 'urgent', submit: 6 * 3600, duration: 2 * 3600, priority: 5, resources: { gpu: 1 } },
      ],
    });
    const run = simulate(s);
    const jobs = Object.fromEntries(run.jobs.map((j) => [j.name, j]));
    expect(jobs.urgent?.start).toBeLessThanOrEqual(6 * 3600 + 30);
    expect(jobs.urgent?.end).toBe((jobs.urgent?.start ?? 0) + 2 * 3600);
    expect(jobs.long?.preemptions).toBe(1);
    // The victim holds the GPU again only once the urgent job has ended.
    const longRuns = run.intervals.filter((i) => i.job === 'long').map((i) => i.start);
    expect(longRuns).toHaveLength(2);
    expect(longRuns[1]).toBeGreaterThanOrEqual(jobs.urgent?.end ?? Infinity);
    expect(computeMetrics(s, run)).toBeDefined();
  });
});
