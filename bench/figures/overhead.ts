/**
 * Figure 6, overhead: one 1-GPU step through allot against the same workload as a plain activity
 * (the baseline's workflow), end to end as a client sees it: from starting the workflow to its
 * result. The pool and the node are idle, so this is allot's fixed cost per step; the two sides
 * alternate, so that both see the same load.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { StepInput } from '../../src/workflows/step-types';
import { historyLength } from '../lib/history';
import type { Load, Summary } from '../lib/stats';
import { LoadSampler, ratio, round, summarize } from '../lib/stats';
import type { BenchWorld } from '../lib/world';
import { poolWorkflowId } from '../lib/world';
import { workloadCommand } from '../lib/workload';
import type { NativeWorkloadInput } from '../native/workflows';

/** The figure, in ms. */
export interface OverheadFigure {
  runs: number;
  allot: Summary;
  native: Summary;
  /** allot p50 / native p50. */
  ratioP50: number | null;
  /** allot p50 − native p50. */
  addedMs: number;
  /** The pool and step histories of the allot side, for figure 4. */
  pool: string;
  /** Events in the pool's history before the first step (start, registration). */
  poolEventsBefore: number;
  stepIds: string[];
  load: Load;
}

/** Runs the figure: `runs` steps and as many plain activities, one at a time, alternating. */
export async function overheadFigure(
  world: BenchWorld,
  stage: (what: string) => void,
  runs = 20,
): Promise<OverheadFigure> {
  const dir = path.join(world.dataDir, 'overhead');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'runs.log');
  const pool = world.id('overhead');
  await world.startPool(pool);
  const agent = await world.addAgent(pool, world.id('overhead-node'), 1);
  const poolEventsBefore = await historyLength(world.client, poolWorkflowId(pool));
  const nativeQueue = world.id('native-overhead-node');
  const worker = await world.addNativeWorker(nativeQueue, 1);
  stage(`overhead: ${runs} single steps and ${runs} plain activities, alternating`);
  const load = new LoadSampler();
  const allot: number[] = [];
  const native: number[] = [];
  const stepIds: string[] = [];
  for (let i = 0; i < runs; i++) {
    const input: StepInput = {
      name: `o${i}`,
      command: workloadCommand(`s${i}`, file, 0),
      resources: { gpu: 1, cpu: '100m', memory: '64Mi' },
      pool,
    };
    let t = performance.now();
    const step = await world.client.workflow.start('allotStep', {
      taskQueue: world.controlQueue,
      workflowId: `${pool}/s${i}`,
      args: [input],
    });
    await step.result();
    allot.push(performance.now() - t);
    stepIds.push(step.workflowId);

    const nativeInput: NativeWorkloadInput = { taskQueue: nativeQueue, command: workloadCommand(`n${i}`, file, 0) };
    t = performance.now();
    await world.client.workflow.execute('nativeWorkload', {
      taskQueue: world.controlQueue,
      workflowId: `${pool}/n${i}`,
      args: [nativeInput],
    });
    native.push(performance.now() - t);
  }
  const l = load.stop();
  await world.stop(agent.worker);
  await world.stop(worker);
  const a = summarize(allot);
  const n = summarize(native);
  return {
    runs,
    allot: a,
    native: n,
    ratioP50: ratio(a.p50, n.p50),
    addedMs: round(a.p50 - n.p50),
    pool,
    poolEventsBefore,
    stepIds,
    load: l,
  };
}
