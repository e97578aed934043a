import { describe, expect, it } from 'vitest';
import { computeMetrics, parseScenario, simulate } from '../../src/sim';

const oneNode = [{ name: 'n1', cpu: 8, memory: '32Gi', gpus: 2, gpuModel: 'A100' }];
const sim = (jobs: unknown[], policy: Record<string, unknown> = {}, teams: unknown[] = []) => {
  const s = parseScenario({ nodes: oneNode, teams, policy, jobs });
  const run = simulate(s);
  return { jobs: Object.fromEntries(run.jobs.map((j) => [j.name, j])), metrics: computeMetrics(s, run) };
};

describe('the simulator', () => {
  it('runs jobs for their duration and reports start, end, node, GPUs and wait', () => {
    const { jobs } = sim([
      { name: 'a', submit: 0, duration: 100, resources: { gpu: 2 } },
      { name: 'b', submit: 10, duration: 50, resources: { gpu: 1 } },
    ]);
    expect(jobs.a).toMatchObject({ start: 0, end: 100, node: 'n1', gpus: [0, 1], wait: 0, preemptions: 0 });
    expect(jobs.b).toMatchObject({ start: 100, end: 150, wait: 90 });
  });

  it('a preempted job loses work since its last checkpoint and queues again with its submit time', () => {
    const { jobs } = sim([
      { name: 'low', submit: 0, duration: 100, checkpointEvery: 30, resources: { gpu: 2 } },
      { name: 'high', submit: 70, duration: 10, priority: 10, resources: { gpu: 2 } },
    ]);
    // low ran 70s, keeps 60s of checkpointed work, resumes at 80 for the remaining 40s.
    expect(jobs.high).toMatchObject({ start: 70, end: 80 });
    expect(jobs.low).toMatchObject({ start: 0, end: 120, preemptions: 1, wait: 0 });
  });

  it('without checkpoints a preempted job starts over', () => {
    const { jobs } = sim([
      { name: 'low', submit: 0, duration: 100, resources: { gpu: 2 } },
      { name: 'high', submit: 70, duration: 10, priority: 10, resources: { gpu: 2 } },
    ]);
    expect(jobs.low).toMatchObject({ end: 180, preemptions: 1 });
  });

  it('a grace period delays the preemptor until the victim stops', () => {
    const { jobs } = sim(
      [
        { name: 'low', submit: 0, duration: 100, resources: { gpu: 2 } },
        { name: 'high', submit: 50, duration: 10, priority: 10, resources: { gpu: 2 } },
      ],
      { gracePeriod: 5 },
    );
    expect(jobs.high).toMatchObject({ start: 55, end: 65 });
  });

  it('a job that no node can hold is reported unschedulable with its reason', () => {
    const { jobs, metrics } = sim([{ name: 'big', duration: 1, resources: { gpu: 4 } }]);
    expect(jobs.big).toMatchObject({
      start: null,
      end: null,
      reason: 'Unschedulable: asked for gpu 4, but the largest node has gpu 2',
    });
    expect(metrics.unschedulable).toBe(1);
  });

  it('a gang spreads one copy per node unless it packs', () => {
    const gang = { duration: 10, replicas: 2, resources: { gpu: 1 } };
    const { jobs } = sim([
      { name: 'spread', ...gang },
      { name: 'pack', ...gang, replicaPlacement: 'pack' },
    ]);
    expect(jobs.spread).toMatchObject({
      start: null,
      reason: 'Unschedulable: asks for 2 replicas on separate nodes, but at most 1 node can hold one',
    });
    expect(jobs.pack).toMatchObject({ start: 0, end: 10, node: 'n1' });
  });

  it('a job that runs past its time limit is stopped there', () => {
    const { jobs } = sim([{ name: 'j', duration: 100, timeLimit: 60, resources: { gpu: 1 } }]);
    expect(jobs.j).toMatchObject({ end: 60, reason: 'TimeLimit: stopped after its time limit of 60s' });
  });

  it('computes waits, completion time, makespan and GPU allocation', () => {
    const { metrics } = sim([
      { name: 'a', submit: 0, duration: 100, resources: { gpu: 2 } },
      { name: 'b', submit: 0, duration: 100, resources: { gpu: 2 } },
    ]);
    expect(metrics).toMatchObject({
      meanWait: 50,
      p95Wait: 100,
      meanJobCompletionTime: 150,
      makespan: 200,
      preemptions: 0,
      meanGpuAllocation: 1,
    });
  });
});
