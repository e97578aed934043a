/**
 * `allot/workflow`: what a pipeline workflow imports.
 *
 * ```ts
 * import { step } from 'allot/workflow';
 *
 * export async function trainPipeline(): Promise<void> {
 *   const data = await step({ name: 'prepare', command: ['python', 'prepare.py'] });
 *   await step({ name: 'train', command: ['python', 'train.py'], resources: { gpu: 1 } });
 * }
 * ```
 */
export { step } from './workflows/step-api';
export type { StepInput, StepResult, StepState } from './workflows/step-types';
export type { ResourceSpec } from './core/types';
