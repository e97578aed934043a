/**
 * The pipelines of a chaos run: the shape of each, keeping a few in flight while the disruptions
 * go on, and how each ended.
 */
import type { Client } from '@temporalio/client';
import type { StepInput } from '../workflows/step-types';
import type { PipelineOutcome } from './invariants';
import { SeededRandom } from './random';
import type { RunClient } from './run-client';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The shape of pipeline `i`: a preparation step, trainers in parallel, an evaluation. */
export function pipelinePlan(
  seed: number,
  index: number,
  steps: number,
  command: (durationMs: number) => string[],
): StepInput[][] {
  const rng = new SeededRandom(seed * 7919 + index);
  const step = (name: string, gpu: number, ms: [number, number]): StepInput => ({
    name,
    command: command(Math.round(rng.between(...ms))),
    resources: { cpu: '500m', memory: '256Mi', ...(gpu > 0 ? { gpu } : {}) },
    gracePeriodMs: 2_000,
  });
  if (steps < 3) return [Array.from({ length: steps }, (_, k) => step(`train-${k}`, 1, [1_000, 4_000]))];
  return [
    [step('prepare', 0, [500, 1_500])],
    Array.from({ length: steps - 2 }, (_, k) => step(`train-${k}`, rng.pick([1, 1, 0.5]), [1_000, 4_000])),
    [step('evaluate', 0.5, [500, 1_500])],
  ];
}

/** How to drive the pipelines. */
export interface PipelineDrive {
  /** Seed of the pipelines' shapes. */
  seed: number;
  stepsPerPipeline: number;
  /** Pipelines kept in flight while the disruptions go on. */
  concurrency: number;
  /** Pipelines to run at least. */
  minPipelines: number;
  /** Longest wait for the pipelines once the disruptions are over, ms. */
  finishTimeoutMs: number;
  /** The command of a step that runs for `durationMs`. */
  command: (durationMs: number) => string[];
  /** Whether the kills and partitions are over: then no new pipeline starts. */
  disruptionsOver: () => boolean;
  /** Why the run must stop now, if it must. */
  stuck: () => string | undefined;
  /** Progress lines. */
  say: (line: string) => void;
}

/** How the pipelines went. */
export interface PipelineTally {
  outcomes: PipelineOutcome[];
  /** `workflowId/step` of every step submitted. */
  expectedSteps: string[];
  completedSteps: number;
}

/**
 * Keeps `concurrency` pipelines in flight until the disruptions are over and `minPipelines` have
 * started, then lets them finish; those still running after `finishTimeoutMs` count as unfinished.
 */
export async function drivePipelines(client: RunClient, d: PipelineDrive): Promise<PipelineTally> {
  const tally: PipelineTally = { outcomes: [], expectedSteps: [], completedSteps: 0 };
  const inFlight: string[] = [];
  let started = 0;
  let finishDeadline = Infinity;
  for (;;) {
    for (const id of [...inFlight]) {
      const outcome = await client.use((c) => pipelineOutcome(c, id)).catch(() => undefined);
      if (outcome === undefined || outcome === 'running') continue;
      inFlight.splice(inFlight.indexOf(id), 1);
      tally.outcomes.push(outcome.outcome);
      tally.completedSteps += outcome.steps;
      d.say(`pipeline ${id} ${outcome.outcome.status}${outcome.outcome.message ? `: ${outcome.outcome.message}` : ''}`);
    }
    while ((!d.disruptionsOver() || started < d.minPipelines) && inFlight.length < d.concurrency) {
      const id = `chaos-${d.seed}-p${started + 1}`;
      const stages = pipelinePlan(d.seed, started + 1, d.stepsPerPipeline, d.command);
      const ok = await client
        .use((c) =>
          c.workflow
            .start('chaosPipeline', { taskQueue: 'allot', workflowId: id, args: [stages] })
            .then(() => true)
            .catch((err: unknown) => {
              if ((err as Error).name === 'WorkflowExecutionAlreadyStartedError') return true;
              throw err;
            }),
        )
        .catch(() => undefined);
      if (!ok) break;
      started++;
      inFlight.push(id);
      tally.expectedSteps.push(...stages.flat().map((s) => `${id}/${s.name}`));
    }
    const stuck = d.stuck();
    if (stuck) {
      for (const id of inFlight)
        tally.outcomes.push({ workflowId: id, status: 'unfinished', message: `the run stopped: ${stuck}` });
      break;
    }
    const over = d.disruptionsOver();
    if (over && finishDeadline === Infinity) finishDeadline = Date.now() + d.finishTimeoutMs;
    if (over && started >= d.minPipelines && inFlight.length === 0) break;
    if (Date.now() > finishDeadline) {
      for (const id of inFlight) {
        tally.outcomes.push({
          workflowId: id,
          status: 'unfinished',
          message: `still running ${d.finishTimeoutMs / 1000}s after the last kill`,
        });
      }
      break;
    }
    await sleep(1_000);
  }
  return tally;
}

/** Where a pipeline stands: still running, or how it ended and how many steps it completed. */
async function pipelineOutcome(
  client: Client,
  workflowId: string,
): Promise<'running' | { outcome: PipelineOutcome; steps: number }> {
  const handle = client.workflow.getHandle(workflowId);
  const { status } = await handle.describe();
  if (status.name === 'RUNNING') return 'running';
  if (status.name === 'COMPLETED') {
    const results = (await handle.result()) as unknown[];
    return { outcome: { workflowId, status: 'completed' }, steps: results.length };
  }
  const message = await handle.result().then(
    () => status.name,
    (err: unknown) => `${status.name}: ${rootMessage(err)}`,
  );
  return { outcome: { workflowId, status: 'failed', message }, steps: 0 };
}

function rootMessage(err: unknown): string {
  let e: unknown = err;
  while (e instanceof Error && (e as { cause?: unknown }).cause instanceof Error) e = (e as { cause?: unknown }).cause;
  return e instanceof Error ? e.message : String(e);
}
