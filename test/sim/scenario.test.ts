import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/core';
import { parseScenario } from '../../src/sim';

const base = () => ({
  nodes: [{ name: 'n1', cpu: '64', memory: '512Gi', gpus: 8, gpuModel: 'A100', gpuMemory: '80Gi' }],
  jobs: [{ name: 'j1', submit: 0, duration: 100, resources: { gpu: 2 } }],
});

function problems(value: unknown): string[] {
  try {
    parseScenario(value);
  } catch (err) {
    if (err instanceof ValidationError) return err.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw err;
  }
  return [];
}

describe('scenario files', () => {
  it('fills defaults: simulator grace period 0, preemptible, time limit = duration, team default', () => {
    const s = parseScenario(base());
    expect(s.policy).toMatchObject({ placement: 'fragmentation-aware', gracePeriodMs: 0, backfill: true });
    expect(s.jobs[0]).toMatchObject({
      team: 'default',
      timeLimitMs: 100_000,
      durationMs: 100_000,
      preemptible: true,
      replicas: 1,
      priority: 0,
    });
    expect(s.nodes[0]?.gpus).toHaveLength(8);
  });

  it('leaves replicaPlacement out unless given (a gang spreads by default), and keeps "pack"', () => {
    const s = parseScenario({
      ...base(),
      jobs: [
        { name: 'spread', duration: 1, replicas: 2 },
        { name: 'pack', duration: 1, replicas: 2, replicaPlacement: 'pack' },
      ],
    });
    expect(s.jobs.map((j) => j.replicaPlacement)).toEqual([undefined, 'pack']);
  });

  it('expands count into numbered nodes', () => {
    const s = parseScenario({ ...base(), nodes: [{ name: 'n', count: 3, cpu: 8, memory: '32Gi' }] });
    expect(s.nodes.map((n) => n.id)).toEqual(['n-1', 'n-2', 'n-3']);
  });

  it.each([
    {
      name: 'a bad quantity',
      patch: { jobs: [{ name: 'j', duration: 1, resources: { memory: '8GB' } }] },
      problem: /^jobs\.0\.resources\.memory: must be a size like "512Mi"/,
    },
    {
      name: 'a fractional GPU finer than 0.01',
      patch: { jobs: [{ name: 'j', duration: 1, resources: { gpu: 0.125 } }] },
      problem: /^jobs\.0\.resources\.gpu: must be a whole number of GPUs .* got 0\.125 \(number\)/,
    },
    {
      name: 'a missing duration',
      patch: { jobs: [{ name: 'j', resources: {} }] },
      problem: /^jobs\.0\.duration: is required: a number of seconds > 0$/,
    },
    {
      name: 'a priority out of range',
      patch: { jobs: [{ name: 'j', duration: 1, priority: 5000 }] },
      problem: /^jobs\.0\.priority: must be an integer from -1000 to 1000/,
    },
    {
      name: 'an unknown placement',
      patch: { policy: { placement: 'worst-fit' } },
      problem: /^policy\.placement: must be one of "fragmentation-aware", "best-fit", got "worst-fit" \(string\)$/,
    },
    {
      name: 'an unknown replica placement',
      patch: { jobs: [{ name: 'j', duration: 1, replicas: 2, replicaPlacement: 'scatter' }] },
      problem: /^jobs\.0\.replicaPlacement: must be one of "spread", "pack", got "scatter" \(string\)$/,
    },
    {
      name: 'an unknown field',
      patch: { policy: { backfil: true } },
      problem: /^policy\.backfil: is not a field here; allowed are placement, preemption/,
    },
    {
      name: 'duplicate job names',
      patch: {
        jobs: [
          { name: 'j', duration: 1 },
          { name: 'j', duration: 1 },
        ],
      },
      problem: /^jobs\.1\.name: "j" names two jobs; names must be unique$/,
    },
    {
      name: 'GPUs without a model',
      patch: { nodes: [{ name: 'n', cpu: 1, memory: '1Gi', gpus: 2 }] },
      problem: /^nodes\.0\.gpuModel: must name the model of the 2 GPUs/,
    },
    {
      name: 'a bad quota',
      patch: { teams: [{ name: 't', quota: { gpu: -1 } }] },
      problem: /^teams\.0\.quota\.gpu: must be a whole number of GPUs/,
    },
  ])('rejects $name, naming the field, the value and what is allowed', ({ patch, problem }) => {
    expect(problems({ ...base(), ...patch })).toEqual(expect.arrayContaining([expect.stringMatching(problem)]));
  });

  it('reports every problem at once', () => {
    expect(problems({ nodes: [], jobs: 'none' })).toHaveLength(2);
  });
});
