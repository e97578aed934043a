/**
 * The example pipeline: prepare data → train (resumable from checkpoints) → evaluate.
 *
 *   npx allot run trainPipeline --input '{"epochs": 5}'
 *   npx allot run sweepPipeline --input '{"learningRates": [0.5, 0.1, 0.05], "concurrency": 2}'
 *
 * Each step is a real Python process; paths are relative to the agent's working directory (the
 * repository root under `allot dev`).
 */
import { fanOut, step } from 'allot/workflow';
import { workflowInfo } from '@temporalio/workflow';

/** Options of the example pipeline. */
export interface TrainPipelineInput {
  /** Training epochs. @default 5 */
  epochs?: number;
  /** Seconds each epoch takes at least (to watch it, or to preempt it). @default 1 */
  epochSeconds?: number;
  /** GPUs for training. @default 1 */
  gpus?: number;
  /** Python interpreter with numpy. @default ".venv/bin/python" (set up by `npm run setup`) */
  python?: string;
  /** Where the scripts are. @default "examples/pipeline" */
  scriptsDir?: string;
  /** Where the steps exchange files. @default ".allot/runs/<pipeline id>" */
  workDir?: string;
  /** Pool to run in. @default "default" */
  pool?: string;
}

/** prepare → train → evaluate; returns the evaluation's outputs. */
export async function trainPipeline(input: TrainPipelineInput = {}): Promise<Record<string, unknown>> {
  const python = input.python ?? '.venv/bin/python';
  const scripts = input.scriptsDir ?? 'examples/pipeline';
  const work = input.workDir ?? `.allot/runs/${workflowInfo().workflowId.replace(/[^A-Za-z0-9._-]/g, '_')}`;
  const pool = input.pool;
  const data = `${work}/data.npz`;
  const model = `${work}/model.npz`;

  await step({
    name: 'prepare',
    pool,
    command: [python, `${scripts}/prepare.py`, '--out', data],
    resources: { cpu: 1, memory: '512Mi' },
  });
  const train = await step({
    name: 'train',
    pool,
    command: [
      python,
      `${scripts}/train.py`,
      '--data',
      data,
      '--model',
      model,
      '--epochs',
      String(input.epochs ?? 5),
      '--epoch-seconds',
      String(input.epochSeconds ?? 1),
    ],
    resources: { gpu: input.gpus ?? 1, cpu: 1, memory: '1Gi' },
  });
  const evaluation = await step({
    name: 'evaluate',
    pool,
    command: [python, `${scripts}/evaluate.py`, '--data', data, '--model', model],
    resources: { cpu: 1, memory: '512Mi' },
  });
  return { train: train.outputs, evaluate: evaluation.outputs };
}

/** Options of the example sweep. */
export interface SweepPipelineInput extends TrainPipelineInput {
  /** One training run per learning rate. @default [0.5, 0.1, 0.05] */
  learningRates?: number[];
  /** Most training runs at once. @default 2 */
  concurrency?: number;
}

/** prepare → one training run per learning rate, at most `concurrency` at once → the best loss. */
export async function sweepPipeline(input: SweepPipelineInput = {}): Promise<{ bestLr: number; loss: number }> {
  const python = input.python ?? '.venv/bin/python';
  const scripts = input.scriptsDir ?? 'examples/pipeline';
  const work = input.workDir ?? `.allot/runs/${workflowInfo().workflowId.replace(/[^A-Za-z0-9._-]/g, '_')}`;
  const data = `${work}/data.npz`;
  await step({
    name: 'prepare',
    pool: input.pool,
    command: [python, `${scripts}/prepare.py`, '--out', data],
    resources: { cpu: 1, memory: '512Mi' },
  });
  const lrs = input.learningRates ?? [0.5, 0.1, 0.05];
  const runs = await fanOut(lrs, input.concurrency ?? 2, (lr, i) =>
    step({
      name: `train-${i}`,
      pool: input.pool,
      command: [
        python,
        `${scripts}/train.py`,
        ...['--data', data, '--model', `${work}/model-${i}.npz`, '--lr', String(lr)],
        ...['--epochs', String(input.epochs ?? 3), '--epoch-seconds', String(input.epochSeconds ?? 0.5)],
      ],
      resources: { gpu: input.gpus ?? 1, cpu: 1, memory: '1Gi' },
      retry: { maximumAttempts: 2, nonRetryableExitCodes: [2] },
    }),
  );
  const losses = runs.map((r) => Number(r.outputs.loss));
  const best = losses.indexOf(Math.min(...losses));
  return { bestLr: lrs[best] ?? Number.NaN, loss: losses[best] ?? Number.NaN };
}
