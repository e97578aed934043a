/**
 * Validation of `step()` options: every problem at once, each naming the field, the value and the
 * allowed form.
 */
import { describe, expect, it } from 'vitest';
import { validateStepInput } from '../../src/workflows/step-validation';
import { backoff, retryPolicy } from '../../src/workflows/step-api';

const ok = { name: 'train', command: ['python', 'train.py'] };

describe('validateStepInput', () => {
  it.each([
    ['negative GPUs', { resources: { gpu: -1 } }, 'resources.gpu', '-1 (number)'],
    ['memory in GB', { resources: { memory: '8GB' } }, 'resources.memory', '"8GB" (string)'],
    ['priority out of range', { priority: 1001 }, 'priority', 'an integer from -1000 to 1000, got 1001 (number)'],
    ['empty command', { command: [] }, 'command', 'non-empty array of strings'],
    ['empty program', { command: [''] }, 'command', '[""] (array)'],
    ['a slash in the name', { name: 'a/b' }, 'name', 'without "/"'],
    ['a typo of an option', { gpus: 2 }, 'gpus', 'is not an option of step()'],
    ['replicas of zero', { replicas: 0 }, 'replicas', 'from 1 to 1024, got 0 (number)'],
    ['replicas above the most', { replicas: 1025 }, 'replicas', 'from 1 to 1024, got 1025 (number)'],
    ['a fractional replica count', { replicas: 1.5 }, 'replicas', 'whole number of copies from 1 to 1024, got 1.5'],
    [
      'an unknown placement',
      { replicas: 2, replicaPlacement: 'scatter' },
      'replicaPlacement',
      '"spread" (one replica per node) or "pack"',
    ],
    ['preemptible as a string', { preemptible: 'yes' }, 'preemptible', 'true or false, got "yes" (string)'],
    ['zero attempts', { retry: { maximumAttempts: 0 } }, 'retry.maximumAttempts', 'from 1 to 100'],
    ['a bad exit code', { retry: { nonRetryableExitCodes: [300] } }, 'retry.nonRetryableExitCodes', 'from 0 to 255'],
    ['backoff below 1', { retry: { backoffCoefficient: 0.5 } }, 'retry.backoffCoefficient', 'from 1 up'],
    ['a reserved variable', { env: { CUDA_VISIBLE_DEVICES: '0' } }, 'env.CUDA_VISIBLE_DEVICES', 'set by allot'],
    ['a bad variable name', { env: { 'MY-VAR': '1' } }, 'env.MY-VAR', 'not a variable name'],
    ['a negative time limit', { timeLimitMs: -5 }, 'timeLimitMs', 'non-negative number of milliseconds'],
    ['an output outside the work dir', { outputs: { model: '../model.npz' } }, 'outputs.model', 'stays inside it'],
    ['an absolute output path', { outputs: { model: '/tmp/model.npz' } }, 'outputs.model', '"/tmp/model.npz"'],
    ['outputs as a list', { outputs: ['model.npz'] }, 'outputs', 'an object like { model: "out/model.npz" }'],
    ['a bad artifact name', { outputs: { '2model': 'm' } }, 'outputs.2model', 'not an artifact name'],
    [
      'two outputs with one variable',
      { outputs: { trainData: 'a', 'train-data': 'b' } },
      'outputs.train-data',
      'same variable ALLOT_OUTPUT_TRAIN_DATA as "trainData"',
    ],
    ['an input that is a path', { inputs: { model: 'out/model.npz' } }, 'inputs.model', "an earlier step's result"],
    [
      'an input with an http URI',
      { inputs: { model: { uri: 'http://x/m', size: 1, sha256: 'a'.repeat(64) } } },
      'inputs.model.uri',
      's3://bucket/key or file:///path',
    ],
    [
      'an input with a bad sha256',
      { inputs: { model: { uri: 's3://b/m', size: 1, sha256: 'XYZ' } } },
      'inputs.model.sha256',
      'got "XYZ"',
    ],
    [
      'a retention typo',
      { checkpointRetention: 'delete' },
      'checkpointRetention',
      '"remove" (the checkpoint is removed',
    ],
    ['keepWorkDir as a string', { keepWorkDir: 'yes' }, 'keepWorkDir', 'true or false, got "yes" (string)'],
  ])('rejects %s', (_, patch, path, text) => {
    const { issues } = validateStepInput({ ...ok, ...patch });
    const issue = issues.find((i) => i.path.join('.') === path);
    expect(issue, JSON.stringify(issues)).toBeDefined();
    expect(issue?.message).toContain(text);
  });

  it('takes outputs, inputs from an earlier result, a retention and keepWorkDir', () => {
    const model = { uri: 's3://bucket/runs/artifacts/p/train/model/model.npz', size: 10, sha256: 'a'.repeat(64) };
    const folder = {
      uri: 'file:///srv/store/artifacts/p/prep/data/',
      size: 5,
      sha256: 'b'.repeat(64),
      kind: 'directory',
      files: 2,
    };
    const { issues } = validateStepInput({
      ...ok,
      outputs: { report: 'out/report.json', plots: 'plots' },
      inputs: { model, data: folder },
      checkpointRetention: 'keep',
      keepWorkDir: true,
    });
    expect(issues).toEqual([]);
  });

  it('reports every problem at once', () => {
    const { issues } = validateStepInput({
      name: 'bad',
      command: [],
      resources: { gpu: -1, memory: '8GB' },
      priority: 5000,
    });
    expect(issues.map((i) => i.path.join('.')).sort()).toEqual([
      'command',
      'priority',
      'resources.gpu',
      'resources.memory',
    ]);
  });

  it('rejects a team the pool does not know, naming the known teams, when the pool keeps a list', () => {
    const { issues } = validateStepInput({ ...ok, team: 'visoin' }, { teams: ['nlp', 'vision'] });
    expect(issues).toEqual([
      {
        code: 'unknown_team',
        path: ['team'],
        message: expect.stringContaining(
          'must be one of the pool\'s teams (nlp, vision), got "visoin" (string)',
        ) as string,
      },
    ]);
    expect(validateStepInput({ ...ok, team: 'vision' }, { teams: ['nlp', 'vision'] }).issues).toEqual([]);
  });

  it('accepts every option in its allowed form', () => {
    const { issues, request } = validateStepInput({
      ...ok,
      resources: { gpu: 2, cpu: '500m', memory: '8Gi', gpuModel: 'A100|H100' },
      priority: -1000,
      team: 'vision',
      preemptible: true,
      replicas: 1,
      retry: { maximumAttempts: 3, initialIntervalMs: 100, backoffCoefficient: 2, nonRetryableExitCodes: [2] },
      env: { WANDB_MODE: 'offline' },
      cwd: '/tmp',
      gracePeriodMs: 1000,
      timeLimitMs: 60_000,
    });
    expect(issues).toEqual([]);
    expect(request).toMatchObject({ gpuMilli: 2000, cpuMilli: 500, memoryMiB: 8192 });
  });
});

describe('retry backoff', () => {
  it('grows by the coefficient and stops at the maximum interval', () => {
    const policy = retryPolicy({ initialIntervalMs: 100, backoffCoefficient: 3, maximumIntervalMs: 1000 });
    expect([1, 2, 3, 4].map((a) => backoff(policy, a))).toEqual([100, 300, 900, 1000]);
  });

  it('defaults to one attempt', () => {
    expect(retryPolicy(undefined).maximumAttempts).toBe(1);
  });
});
