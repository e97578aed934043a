/**
 * `allot/workflow`: what a pipeline workflow imports.
 *
 * ```ts
 * import { fanOut, step } from 'allot/workflow';
 *
 * export async function trainPipeline(): Promise<void> {
 *   await step({ name: 'prepare', command: ['python', 'prepare.py'] });
 *   await fanOut([0.1, 0.01, 0.001], 2, (lr) =>
 *     step({ name: `train-${lr}`, command: ['python', 'train.py', '--lr', String(lr)], resources: { gpu: 1 } }),
 *   );
 * }
 * ```
 */
export { step, DEFAULT_STEP_RETRY } from './workflows/step-api';
export { fanOut, subPipeline } from './workflows/pipeline-helpers';
export type { SubPipelineOptions } from './workflows/pipeline-helpers';
export { pipelineSteps, renderPipelineTable } from './workflows/pipeline-details';
export type { PipelineStepRow, PipelineStepState } from './workflows/pipeline-details';
export type {
  ArtifactRef,
  CheckpointRetention,
  ReplicaPlacement,
  ReplicaResult,
  StepInput,
  StepResult,
  StepRetryPolicy,
  StepState,
} from './workflows/step-types';
export type { ResourceSpec } from './core/types';
