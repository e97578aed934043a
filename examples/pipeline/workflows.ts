/**
 * The example pipeline: prepare data → train (resumable from checkpoints) → evaluate.
 *
 *   npx allot run trainPipeline --input '{"epochs": 5}'
 *   npx allot run sweepPipeline --input '{"learningRates": [0.5, 0.1, 0.05], "concurrency": 2}'
 *
 * Each step is a real Python process. The steps hand files to each other only as artifacts, so
 * they may run on different machines: prepare's `data` and train's `model` go to the store and
 * come down again into the work dir of the step that takes them (`ALLOT_INPUT_<NAME>`); the
 * scripts write where `ALLOT_OUTPUT_<NAME>` says. Training checkpoints every epoch into
 * `ALLOT_CHECKPOINT_DIR`, which follows the step to whichever node runs it next. The scripts and
 * the interpreter are found from the agent's working directory (`cwd: '.'`; the repository root
 * under `allot dev`).
 */
// A pipeline versions itself with Temporal's own patched(), as any workflow does; the rule that
// routes patches through allot's versions.ts is for allot's own workflows.
// eslint-disable-next-line no-restricted-imports
import { ApplicationFailure, patched } from '@temporalio/workflow';
import { fanOut, step } from 'allot/workflow';
import type { ArtifactRef } from 'allot/workflow';

/** Options of the example pipeline. */
export interface TrainPipelineInput {
  /** Training epochs. @default 5 */
  epochs?: number;
  /** Seconds each epoch takes at least (to watch it, or to preempt it). @default 1 */
  epochSeconds?: number;
  /** GPUs for training. @default 1 */
  gpus?: number;
  /** Whether a higher-priority step may preempt training (it resumes from its checkpoint). @default true */
  preemptible?: boolean;
  /** Python interpreter with numpy. @default ".venv/bin/python" (set up by `npm run setup`) */
  python?: string;
  /** Where the scripts are. @default "examples/pipeline" */
  scriptsDir?: string;
  /** Pool to run in. @default "default" */
  pool?: string;
}

/** What the example pipeline returns: each step's outputs, and the artifacts they exchanged. */
export interface TrainPipelineResult {
  train: Record<string, unknown>;
  evaluate: Record<string, unknown>;
  /** The artifacts the steps exchanged: `data` (prepare's) and `model` (train's). */
  artifacts: Record<string, ArtifactRef>;
}

/**
 * Runs of this example recorded before its steps exchanged artifacts (their steps shared a path)
 * replay as they ran: for them `artifact` finds none, and the steps get no inputs.
 */
const EXCHANGES_ARTIFACTS = 'example-pipeline-exchanges-artifacts';

/** The artifact a finished step produced under `name`; a step that declared it always has it. */
function artifact(result: { name: string; artifacts?: Record<string, ArtifactRef> }, name: string): ArtifactRef {
  const ref = result.artifacts?.[name];
  if (!ref) throw ApplicationFailure.nonRetryable(`step ${result.name} has no artifact ${name}`, 'MissingArtifact');
  return ref;
}

/** The artifacts of finished steps, by input name; none in a run recorded before steps had any. */
function inputs(
  from: Record<string, [{ name: string; artifacts?: Record<string, ArtifactRef> }, string]>,
): Record<string, ArtifactRef> | undefined {
  if (!patched(EXCHANGES_ARTIFACTS)) return undefined;
  return Object.fromEntries(Object.entries(from).map(([input, [result, name]]) => [input, artifact(result, name)]));
}

/** prepare → train → evaluate; returns the evaluation's outputs and the artifacts. */
export async function trainPipeline(input: TrainPipelineInput = {}): Promise<TrainPipelineResult> {
  const python = input.python ?? '.venv/bin/python';
  const scripts = input.scriptsDir ?? 'examples/pipeline';
  const pool = input.pool;

  const prepared = await step({
    name: 'prepare',
    pool,
    cwd: '.',
    command: [python, `${scripts}/prepare.py`],
    outputs: { data: 'out/data.npz' },
    resources: { cpu: 1, memory: '512Mi' },
  });
  const train = await step({
    name: 'train',
    pool,
    cwd: '.',
    command: [
      python,
      `${scripts}/train.py`,
      ...['--epochs', String(input.epochs ?? 5), '--epoch-seconds', String(input.epochSeconds ?? 1)],
    ],
    inputs: inputs({ data: [prepared, 'data'] }),
    outputs: { model: 'out/model.npz' },
    resources: { gpu: input.gpus ?? 1, cpu: 1, memory: '1Gi' },
    preemptible: input.preemptible ?? true,
  });
  const exchanged = inputs({ data: [prepared, 'data'], model: [train, 'model'] });
  const evaluation = await step({
    name: 'evaluate',
    pool,
    cwd: '.',
    command: [python, `${scripts}/evaluate.py`],
    inputs: exchanged,
    resources: { cpu: 1, memory: '512Mi' },
  });
  return { train: train.outputs, evaluate: evaluation.outputs, artifacts: exchanged ?? {} };
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
  const prepared = await step({
    name: 'prepare',
    pool: input.pool,
    cwd: '.',
    command: [python, `${scripts}/prepare.py`],
    outputs: { data: 'out/data.npz' },
    resources: { cpu: 1, memory: '512Mi' },
  });
  const data = inputs({ data: [prepared, 'data'] });
  const lrs = input.learningRates ?? [0.5, 0.1, 0.05];
  const runs = await fanOut(lrs, input.concurrency ?? 2, (lr, i) =>
    step({
      name: `train-${i}`,
      pool: input.pool,
      cwd: '.',
      command: [
        python,
        `${scripts}/train.py`,
        ...['--lr', String(lr)],
        ...['--epochs', String(input.epochs ?? 3), '--epoch-seconds', String(input.epochSeconds ?? 0.5)],
      ],
      inputs: data,
      outputs: { model: 'out/model.npz' },
      resources: { gpu: input.gpus ?? 1, cpu: 1, memory: '1Gi' },
      retry: { maximumAttempts: 2, nonRetryableExitCodes: [2] },
    }),
  );
  const losses = runs.map((r) => Number(r.outputs.loss));
  const best = losses.indexOf(Math.min(...losses));
  return { bestLr: lrs[best] ?? Number.NaN, loss: losses[best] ?? Number.NaN };
}

/** Options of the multi-node example. */
export interface MultiNodePipelineInput {
  /** Replicas of the gang, one per node unless `placement` is `"pack"`. @default 2 */
  replicas?: number;
  /** `"spread"`: one replica per node; `"pack"`: several on a node where they fit. @default "spread" */
  placement?: 'spread' | 'pack';
  /** GPUs of each replica. @default 1 */
  gpus?: number;
  /** All-reduce rounds; replica 0 checkpoints after each. @default 3 */
  epochs?: number;
  /** Seconds each round takes at least. @default 1 */
  epochSeconds?: number;
  /** Python interpreter (the script needs only the standard library). @default "python3" */
  python?: string;
  /** Where the script is. @default "examples/multi-node" */
  scriptsDir?: string;
  /** Pool to run in. @default "default" */
  pool?: string;
}

/** What the multi-node example returns: the all-reduced sum, and where each replica ran. */
export interface MultiNodePipelineResult {
  sum: number;
  replicas: { rank: number; nodeId: string; gpuIndices: number[] }[];
}

/**
 * One multi-node step: a gang of replicas that find each other at MASTER_ADDR:MASTER_PORT and
 * all-reduce a value each round, as distributed training does (see examples/multi-node).
 *
 *   npx allot run multiNodePipeline --input '{"replicas": 2}'
 */
export async function multiNodePipeline(input: MultiNodePipelineInput = {}): Promise<MultiNodePipelineResult> {
  const scripts = input.scriptsDir ?? 'examples/multi-node';
  const result = await step({
    name: 'allreduce',
    pool: input.pool,
    cwd: '.',
    command: [
      input.python ?? 'python3',
      `${scripts}/allreduce.py`,
      ...['--epochs', String(input.epochs ?? 3), '--epoch-seconds', String(input.epochSeconds ?? 1)],
    ],
    resources: { gpu: input.gpus ?? 1, cpu: 1, memory: '512Mi' },
    replicas: input.replicas ?? 2,
    replicaPlacement: input.placement ?? 'spread',
    preemptible: true,
  });
  return {
    sum: Number(result.outputs.sum),
    replicas: (result.replicas ?? []).map(({ rank, nodeId, gpuIndices }) => ({ rank, nodeId, gpuIndices })),
  };
}
