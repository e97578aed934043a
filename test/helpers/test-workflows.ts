/**
 * Pipelines used by the tests.
 */
import { step } from 'allot/workflow';
import type { StepInput, StepResult } from 'allot/workflow';

/** Runs the given steps in parallel. */
export async function parallelSteps(steps: StepInput[]): Promise<StepResult[]> {
  return Promise.all(steps.map((s) => step(s)));
}
