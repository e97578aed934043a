/**
 * The example pipeline: prepare data → train (resumable from checkpoints) → evaluate.
 *
 *   npx allot run trainPipeline --input '{"epochs": 5}'
 *
 * Each step is a real Python process; paths are relative to the agent's working directory (the
 * repository root under `allot dev`).
 */
import { step } from 'allot/workflow';
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
