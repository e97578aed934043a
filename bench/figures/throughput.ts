/**
 * Figure 2, throughput: steps per second through one pool at saturation, with trivial workloads
 * (a bash process that records its start and end), against the native baseline fed the same
 * stream. Every workload is submitted at once; the rate is taken over the middle 80% of
 * completions, so that start-up and the tail do not count.
 *
 * The same run gives figure 4 (history cost): the pool's events per step and its runs.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import type { StepInput } from '../../src/workflows/step-types';
import { runsOf } from '../lib/history';
import type { Load } from '../lib/stats';
import { LoadSampler, round } from '../lib/stats';
import type { BenchWorld } from '../lib/world';
import { poolWorkflowId } from '../lib/world';
import { workloadCommand } from '../lib/workload';
import type { NativeWorkloadInput } from '../native/workflows';

/** Options of the throughput figure. */
export interface ThroughputOptions {
  /** Steps (and native workloads). @default 600 */
  steps?: number;
  /** GPUs of the node: the most steps that run at once. @default 64 */
  gpus?: number;
}

/** One side's run. */
export interface ThroughputRun {
  steps: number;
  /** Steps per second over the middle 80% of completions. */
  perSecond: number;
  /** From the first submission to the last completion, s. */
  seconds: number;
  /** History events of one step's (or native workload's) own workflow, median. */
  eventsPerWorkflow: number;
  load: Load;
}

/** The figure, with what figure 4 needs. */
export interface ThroughputFigure {
  gpus: number;
  allot: ThroughputRun;
  native: ThroughputRun;
  /** allot / native steps per second. */
  ratio: number | null;
  /** The pool's runs during the allot side (more than one: it continued as new). */
  poolRuns: { runId: string; events: number }[];
}

/** Runs `count` workflows started by `start`, timing each completion. */
async function drive(
  count: number,
  start: (i: number) => Promise<WorkflowHandle>,
): Promise<{ perSecond: number; seconds: number; handles: WorkflowHandle[]; load: Load }> {
  const load = new LoadSampler();
  const t0 = Date.now();
  const done: number[] = [];
  const handles: WorkflowHandle[] = [];
  const waits: Promise<void>[] = [];
  // Submit in chunks so the client does not open thousands of calls at once.
  for (let i = 0; i < count; i += 50) {
    const chunk = await Promise.all(Array.from({ length: Math.min(50, count - i) }, (_, j) => start(i + j)));
    for (const h of chunk) {
      handles.push(h);
      waits.push(h.result().then(() => void done.push(Date.now())));
    }
  }
  await Promise.all(waits);
  done.sort((a, b) => a - b);
  const lo = done[Math.floor(count * 0.1)] ?? t0;
  const hi = done[Math.ceil(count * 0.9) - 1] ?? Date.now();
  const middle = Math.ceil(count * 0.9) - Math.floor(count * 0.1) - 1;
  return {
    perSecond: round(middle / Math.max(0.001, (hi - lo) / 1000), 1),
    seconds: round(((done[done.length - 1] ?? Date.now()) - t0) / 1000, 1),
    handles,
    load: load.stop(),
  };
}

async function medianEvents(handles: WorkflowHandle[]): Promise<number> {
  const sample = handles.filter((_, i) => i % Math.max(1, Math.floor(handles.length / 20)) === 0);
  const counts = await Promise.all(sample.map(async (h) => (await h.describe()).historyLength));
  counts.sort((a, b) => a - b);
  return counts[Math.floor(counts.length / 2)] ?? 0;
}

/** Runs the figure. */
export async function throughputFigure(
  world: BenchWorld,
  stage: (what: string) => void,
  options: ThroughputOptions = {},
): Promise<ThroughputFigure> {
  const steps = options.steps ?? 600;
  const gpus = options.gpus ?? 64;
  const dir = path.join(world.dataDir, 'throughput');
  mkdirSync(dir, { recursive: true });

  const pool = world.id('throughput');
  await world.startPool(pool);
  const agent = await world.addAgent(pool, world.id('throughput-node'), gpus);
  stage(`throughput: ${steps} trivial steps through one pool, ${gpus} GPUs`);
  const allotFile = path.join(dir, 'allot.log');
  const a = await drive(steps, (i) => {
    const input: StepInput = {
      name: `t${i}`,
      command: workloadCommand(`s${i}`, allotFile, 0),
      resources: { gpu: 1, cpu: '100m', memory: '64Mi' },
      pool,
    };
    return world.client.workflow.start('allotStep', {
      taskQueue: world.controlQueue,
      workflowId: `${pool}/s${i}`,
      args: [input],
    });
  });
  await world.stop(agent.worker);
  const poolRuns = await runsOf(world.client, poolWorkflowId(pool));

  const nativeQueue = world.id('native-throughput-node');
  const worker = await world.addNativeWorker(nativeQueue, gpus);
  stage(`throughput: ${steps} trivial workloads through the native baseline, ${gpus} slots`);
  const nativeFile = path.join(dir, 'native.log');
  const n = await drive(steps, (i) => {
    const input: NativeWorkloadInput = { taskQueue: nativeQueue, command: workloadCommand(`n${i}`, nativeFile, 0) };
    return world.client.workflow.start('nativeWorkload', {
      taskQueue: world.controlQueue,
      workflowId: `${pool}/n${i}`,
      args: [input],
    });
  });
  await world.stop(worker);

  const allot: ThroughputRun = {
    steps,
    perSecond: a.perSecond,
    seconds: a.seconds,
    eventsPerWorkflow: await medianEvents(a.handles),
    load: a.load,
  };
  const native: ThroughputRun = {
    steps,
    perSecond: n.perSecond,
    seconds: n.seconds,
    eventsPerWorkflow: await medianEvents(n.handles),
    load: n.load,
  };
  return {
    gpus,
    allot,
    native,
    ratio: native.perSecond > 0 ? round(allot.perSecond / native.perSecond, 2) : null,
    poolRuns,
  };
}
