/**
 * The pipeline the chaos run drives: stages run one after another, the steps of a stage in
 * parallel. Bundled by `allot worker --workflows src/chaos/pipelines.ts`.
 */
import { step } from 'allot/workflow';
import type { StepInput, StepResult } from 'allot/workflow';

/** Runs `stages` in order, each stage's steps at once; returns every step's result. */
export async function chaosPipeline(stages: StepInput[][]): Promise<StepResult[]> {
  const results: StepResult[] = [];
  for (const stage of stages) results.push(...(await Promise.all(stage.map((s) => step(s)))));
  return results;
}
