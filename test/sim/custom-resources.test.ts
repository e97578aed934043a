/**
 * `allot simulate` honours custom resources: a scenario's nodes offer them, its jobs ask for them,
 * and the simulator grants no more than a node offers, as the pool does.
 */
import { describe, expect, it } from 'vitest';
import { parseScenario, simulate } from '../../src/sim';

describe('the simulator with custom resources', () => {
  it('runs three 1-license jobs on a 2-license node two at a time, whatever its free GPUs', () => {
    const s = parseScenario({
      nodes: [{ name: 'n1', cpu: 16, memory: '64Gi', gpus: 4, gpuModel: 'A100', custom: { lic: 2 } }],
      jobs: ['a', 'b', 'c'].map((name) => ({
        name,
        submit: 0,
        duration: 50,
        resources: { gpu: 1, custom: { lic: 1 } },
      })),
    });
    const jobs = simulate(s).jobs;
    expect(jobs.map((j) => [j.name, j.start, j.end])).toEqual([
      ['a', 0, 50],
      ['b', 0, 50],
      ['c', 50, 100],
    ]);
  });

  it('places a job that asks for a custom resource only on a node that offers it', () => {
    const s = parseScenario({
      nodes: [
        { name: 'plain', cpu: 16, memory: '64Gi' },
        { name: 'nvme', cpu: 16, memory: '64Gi', custom: { nvme: 1 } },
      ],
      jobs: [{ name: 'j', submit: 0, duration: 10, resources: { cpu: 1, custom: { nvme: 1 } } }],
    });
    expect(simulate(s).jobs[0]).toMatchObject({ node: 'nvme', start: 0 });
  });
});
