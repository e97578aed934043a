/**
 * Named limits in `allot simulate`: a scenario's `limits` and its jobs' `limits` go through the
 * pool's own cycle (`decide()`, then `applyDecisions()`), so the simulator holds them as a pool does.
 */
import { describe, expect, it } from 'vitest';
import { parseScenario, simulate } from '../../src/sim';

describe('named limits in a simulation', () => {
  it('runs the jobs of a limit with max 1 one after the other, and a job without it at once', () => {
    const run = simulate(
      parseScenario({
        nodes: [{ name: 'n', cpu: '8', memory: '32Gi', gpus: 4, gpuModel: 'A100' }],
        limits: { fs: 1 },
        jobs: [
          { name: 'a', duration: 10, resources: { gpu: 1 }, limits: { fs: 1 } },
          { name: 'b', duration: 10, resources: { gpu: 1 }, limits: { fs: 1 } },
          { name: 'c', duration: 10, resources: { gpu: 1 }, limits: { fs: 1 } },
          { name: 'free', duration: 10, resources: { gpu: 1 } },
        ],
      }),
    );
    expect(run.jobs.map((j) => [j.name, j.start, j.end])).toEqual([
      ['a', 0, 10],
      ['b', 10, 20],
      ['c', 20, 30],
      ['free', 0, 10],
    ]);
  });

  it("refuses a scenario whose job asks for more than a limit's max, naming the job, the limit and the max", () => {
    expect(() =>
      parseScenario({
        nodes: [{ name: 'n', cpu: '8', memory: '32Gi', gpus: 4, gpuModel: 'A100' }],
        limits: { fs: 1 },
        jobs: [{ name: 'a', duration: 10, resources: { gpu: 1 }, limits: { fs: 2 } }],
      }),
    ).toThrow(/jobs\.0\.limits\.fs: asks for 2 units of fs, more than its max 1/);
  });
});
