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
import { cpuPer, cpuSample } from '../lib/cpu';
import { parseResources } from '../../src/core';
import { acquireUpdate, releaseUpdate, requestQuery } from '../../src/workflows/messages';
import { eventTime, fetchEvents, historyLength, runsOf } from '../lib/history';
import type { Load, Summary } from '../lib/stats';
import { LoadSampler, round, sleep, summarize } from '../lib/stats';
import type { BenchWorld } from '../lib/world';
import { poolWorkflowId } from '../lib/world';
import type { WorkloadRun } from '../lib/workload';
import { readRuns, workloadCommand } from '../lib/workload';
import type { NativeWorkloadInput } from '../native/workflows';

/** Options of the throughput figure. */
export interface ThroughputOptions {
  /** Steps (and native workloads). @default 600 */
  steps?: number;
  /** GPUs of the node: the most steps that run at once. @default 64 */
  gpus?: number;
  /** Acquire/release cycles for the pool-alone measurement. @default 1000 */
  poolCycles?: number;
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
  /**
   * CPU time per step, ms: of this process (workers, agent, client) and of the dev server. Wall
   * time on a shared machine depends on the others' load; this does not.
   */
  cpuMsPerStep: { worker: number; server?: number };
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
  /** Events in the pool's history before the first step (start, registration). */
  poolEventsBefore: number;
  /** Where a launch's time goes at saturation (a sample of steps), ms. */
  allotLaunch: {
    /** Launch scheduled by the step to picked up by the agent. */
    scheduledToStarted: Summary;
    /** Picked up by the agent to the workload's first instruction: the fencing query, then the spawn. */
    startedToProcess: Summary;
    /** Share of the sampled steps launched more than once (a launch that timed out, then ran again). */
    relaunched: number;
  };
  /**
   * The pool alone: acquire and release cycles per second from clients (Updates, 8 at a time),
   * without step workflows, agents or processes: what one pool sustains.
   */
  poolCycles: { cycles: number; perSecond: number; cpuMsPerCycle: { worker: number; server?: number }; load: Load };
}

/** Acquire/release cycles through a pool of its own, `concurrency` clients at a time. */
async function poolCycles(
  world: BenchWorld,
  cycles: number,
  concurrency: number,
): Promise<ThroughputFigure['poolCycles']> {
  const pool = world.id('cycles');
  await world.startPool(pool);
  const agent = await world.addAgent(pool, world.id('cycles-node'), 8);
  const handle = world.client.workflow.getHandle(poolWorkflowId(pool));
  const { request: resources } = parseResources({ gpu: 1, cpu: '100m', memory: '64Mi' });
  if (!resources) throw new Error('bad bench request');
  const load = new LoadSampler();
  const cpu = cpuSample();
  const t0 = Date.now();
  let next = 0;
  const loop = async (): Promise<void> => {
    while (next < cycles) {
      const id = `c${next++}`;
      let outcome = await handle.executeUpdate(acquireUpdate, {
        args: [{ requestId: id, owner: { kind: 'client', name: 'bench' }, resources }],
      });
      while (outcome.status === 'queued') {
        await sleep(5);
        outcome = (await handle.query(requestQuery, id)) ?? outcome;
      }
      if (outcome.status !== 'granted') throw new Error(`cycle ${id}: ${JSON.stringify(outcome)}`);
      await handle.executeUpdate(releaseUpdate, { args: [id] });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  const seconds = (Date.now() - t0) / 1000;
  const used = cpuPer(cpu, cpuSample(), cycles);
  await world.stop(agent.worker);
  return { cycles, perSecond: round(cycles / seconds, 1), cpuMsPerCycle: used, load: load.stop() };
}

/** Where launches spend their time, from a sample of step histories and the workloads' own start times. */
async function launchLegs(
  world: BenchWorld,
  handles: WorkflowHandle[],
  runs: Map<string, WorkloadRun>,
): Promise<ThroughputFigure['allotLaunch']> {
  const scheduledToStarted: number[] = [];
  const startedToProcess: number[] = [];
  const sample = handles.filter((_, i) => i % Math.max(1, Math.floor(handles.length / 40)) === 0);
  let relaunched = 0;
  for (const h of sample) {
    const events = await fetchEvents(world.client, h.workflowId);
    if (events.filter((e) => e.activityTaskScheduledEventAttributes).length > 1) relaunched++;
    const scheduled = events.find((e) => e.activityTaskScheduledEventAttributes);
    const started = events.find((e) => e.activityTaskStartedEventAttributes);
    const run = runs.get(h.workflowId.slice(h.workflowId.lastIndexOf('/') + 1));
    if (scheduled && started) scheduledToStarted.push(eventTime(started) - eventTime(scheduled));
    if (started && run) startedToProcess.push(run.start - eventTime(started));
  }
  return {
    scheduledToStarted: summarize(scheduledToStarted),
    startedToProcess: summarize(startedToProcess),
    relaunched: round(relaunched / Math.max(1, sample.length), 2),
  };
}

/** Runs `count` workflows started by `start`, timing each completion. */
async function drive(
  count: number,
  start: (i: number) => Promise<WorkflowHandle>,
): Promise<{
  perSecond: number;
  seconds: number;
  handles: WorkflowHandle[];
  load: Load;
  cpu: { worker: number; server?: number };
}> {
  const load = new LoadSampler();
  const cpu = cpuSample();
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
  const cpuUsed = cpuPer(cpu, cpuSample(), count);
  done.sort((a, b) => a - b);
  const lo = done[Math.floor(count * 0.1)] ?? t0;
  const hi = done[Math.ceil(count * 0.9) - 1] ?? Date.now();
  const middle = Math.ceil(count * 0.9) - Math.floor(count * 0.1) - 1;
  return {
    perSecond: round(middle / Math.max(0.001, (hi - lo) / 1000), 1),
    seconds: round(((done[done.length - 1] ?? Date.now()) - t0) / 1000, 1),
    handles,
    load: load.stop(),
    cpu: cpuUsed,
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
  const poolEventsBefore = await historyLength(world.client, poolWorkflowId(pool));
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
  const allotLaunch = await launchLegs(world, a.handles, new Map(readRuns(allotFile).map((r) => [r.id, r])));

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

  const cycles = options.poolCycles ?? 1_000;
  stage(`throughput: ${cycles} acquire/release cycles through a pool alone (client Updates, 8 at a time)`);
  const ceiling = await poolCycles(world, cycles, 8);

  const allot: ThroughputRun = {
    steps,
    perSecond: a.perSecond,
    seconds: a.seconds,
    eventsPerWorkflow: await medianEvents(a.handles),
    cpuMsPerStep: a.cpu,
    load: a.load,
  };
  const native: ThroughputRun = {
    steps,
    perSecond: n.perSecond,
    seconds: n.seconds,
    eventsPerWorkflow: await medianEvents(n.handles),
    cpuMsPerStep: n.cpu,
    load: n.load,
  };
  return {
    gpus,
    allot,
    native,
    ratio: native.perSecond > 0 ? round(allot.perSecond / native.perSecond, 2) : null,
    poolRuns,
    poolEventsBefore,
    allotLaunch,
    poolCycles: ceiling,
  };
}
