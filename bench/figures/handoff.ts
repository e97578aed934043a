/**
 * Figure 1, handoff latency: how long a GPU stays idle between one workload's end and the next
 * queued workload's start on it, through allot and through the native baseline, with the same
 * stream of workloads (all submitted at once, more than the node has GPUs).
 *
 * For allot, each handoff is also broken down along its path, from the workflow histories:
 * exit → launch completed → release at the pool → grant sent → grant at the next step → launch
 * scheduled → launch started → the next process starts.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { StepInput, StepResult } from '../../src/workflows/step-types';
import { eventTime, fetchEvents, historyLength, signalArg } from '../lib/history';
import type { Summary } from '../lib/stats';
import { LoadSampler, summarize } from '../lib/stats';
import type { Load } from '../lib/stats';
import type { BenchWorld } from '../lib/world';
import { poolWorkflowId } from '../lib/world';
import type { WorkloadRun } from '../lib/workload';
import { readRuns, workloadCommand } from '../lib/workload';
import type { NativeWorkloadInput } from '../native/workflows';

/** Options of the handoff figure. */
export interface HandoffOptions {
  /** GPUs of the node. @default 4 */
  gpus?: number;
  /** Workloads per side. @default 25 per GPU, plus one per GPU */
  workloads?: number;
  /** How long each workload runs, s. @default 0.5 */
  seconds?: number;
}

/** What the figure reports, in ms. */
export interface HandoffFigure {
  gpus: number;
  workloads: number;
  workloadSeconds: number;
  allot: Summary;
  native: Summary;
  /** allot p50 / native p50. */
  ratioP50: number | null;
  ratioP99: number | null;
  /** Medians of each leg of allot's handoff, ms. */
  allotBreakdown: Record<string, number>;
  load: { allot: Load; native: Load };
  /** The allot side's pool, and its events before the first step (start, registration), for figure 4. */
  pool: string;
  poolEventsBefore: number;
}

/** Pairs of consecutive runs on each GPU: [previous, next]. */
function pairs(runs: readonly WorkloadRun[]): [WorkloadRun, WorkloadRun][] {
  const byGpu = new Map<string, WorkloadRun[]>();
  for (const r of runs) for (const g of r.gpus.split(',')) byGpu.set(g, [...(byGpu.get(g) ?? []), r]);
  const out: [WorkloadRun, WorkloadRun][] = [];
  for (const list of byGpu.values()) {
    list.sort((a, b) => a.start - b.start);
    for (let i = 1; i < list.length; i++) {
      const prev = list[i - 1];
      const next = list[i];
      if (prev && next) out.push([prev, next]);
    }
  }
  return out;
}

const median = (values: number[]): number => summarize(values).p50;

/** Runs the figure. */
export async function handoffFigure(
  world: BenchWorld,
  stage: (what: string) => void,
  options: HandoffOptions = {},
): Promise<HandoffFigure> {
  const gpus = options.gpus ?? 4;
  const workloads = options.workloads ?? gpus * 26;
  const seconds = options.seconds ?? 0.5;
  const dir = path.join(world.dataDir, 'handoff');
  mkdirSync(dir, { recursive: true });

  // allot: a pool with one node of `gpus` GPUs, every step asking for one.
  const pool = world.id('handoff');
  await world.startPool(pool);
  const agent = await world.addAgent(pool, world.id('handoff-node'), gpus);
  const poolEventsBefore = await historyLength(world.client, poolWorkflowId(pool));
  const allotFile = path.join(dir, 'allot.log');
  stage(`handoff: ${workloads} steps of ${seconds}s through allot on ${gpus} GPUs`);
  let load = new LoadSampler();
  const steps = await Promise.all(
    Array.from({ length: workloads }, (_, i) => {
      const input: StepInput = {
        name: `h${i}`,
        command: workloadCommand(`s${i}`, allotFile, seconds),
        resources: { gpu: 1, cpu: '100m', memory: '64Mi' },
        pool,
      };
      return world.client.workflow.start('allotStep', {
        taskQueue: world.controlQueue,
        workflowId: `${pool}/s${i}`,
        args: [input],
      });
    }),
  );
  await Promise.all(steps.map((s) => s.result() as Promise<StepResult>));
  const allotLoad = load.stop();
  await world.stop(agent.worker);
  const allotRuns = readRuns(allotFile);
  const allotPairs = pairs(allotRuns);

  // The native baseline: the same workloads as activities on a hardware task queue.
  const nativeQueue = world.id('native-handoff-node');
  const worker = await world.addNativeWorker(nativeQueue, gpus);
  const nativeFile = path.join(dir, 'native.log');
  stage(`handoff: ${workloads} workloads of ${seconds}s through the native baseline on ${gpus} slots`);
  load = new LoadSampler();
  const natives = await Promise.all(
    Array.from({ length: workloads }, (_, i) => {
      const input: NativeWorkloadInput = {
        taskQueue: nativeQueue,
        command: workloadCommand(`n${i}`, nativeFile, seconds),
      };
      return world.client.workflow.start('nativeWorkload', {
        taskQueue: world.controlQueue,
        workflowId: `${pool}/n${i}`,
        args: [input],
      });
    }),
  );
  await Promise.all(natives.map((n) => n.result()));
  const nativeLoad = load.stop();
  await world.stop(worker);
  const nativePairs = pairs(readRuns(nativeFile));

  stage('handoff: reading histories for the breakdown');
  const allotBreakdown = await breakdown(world, pool, allotPairs, steps);
  const allotGaps = allotPairs.map(([p, n]) => n.start - p.end);
  const nativeGaps = nativePairs.map(([p, n]) => n.start - p.end);
  const allot = summarize(allotGaps);
  const native = summarize(nativeGaps);
  return {
    gpus,
    workloads,
    workloadSeconds: seconds,
    allot,
    native,
    ratioP50: native.p50 > 0 ? Math.round((allot.p50 / native.p50) * 100) / 100 : null,
    ratioP99: native.p99 > 0 ? Math.round((allot.p99 / native.p99) * 100) / 100 : null,
    allotBreakdown,
    load: { allot: allotLoad, native: nativeLoad },
    pool,
    poolEventsBefore,
  };
}

/** Medians of each leg of allot's handoffs, from the histories of the pool and the steps. */
async function breakdown(
  world: BenchWorld,
  pool: string,
  handoffs: [WorkloadRun, WorkloadRun][],
  steps: { workflowId: string; firstExecutionRunId: string }[],
): Promise<Record<string, number>> {
  const runIdOf = new Map(steps.map((s) => [s.workflowId, s.firstExecutionRunId]));
  const stepId = (run: WorkloadRun): string => `${pool}/${run.id}`;
  const poolEvents = await fetchEvents(world.client, poolWorkflowId(pool));
  const releasedAt = new Map<string, number>();
  const grantSentAt = new Map<string, number>();
  for (const e of poolEvents) {
    const signal = e.workflowExecutionSignaledEventAttributes;
    if (signal?.signalName === 'release') {
      const arg = signalArg(e) as { requestId?: string } | undefined;
      if (arg?.requestId) releasedAt.set(arg.requestId.split('#')[0] ?? '', eventTime(e));
    }
    const out = e.signalExternalWorkflowExecutionInitiatedEventAttributes;
    if (out?.signalName === 'grant' && out.workflowExecution?.workflowId) {
      grantSentAt.set(out.workflowExecution.workflowId, eventTime(e));
    }
  }
  const legs: Record<string, number[]> = {
    exitToLaunchCompleted: [],
    launchCompletedToReleaseAtPool: [],
    releaseAtPoolToGrantSent: [],
    grantSentToGrantAtStep: [],
    grantAtStepToLaunchScheduled: [],
    launchScheduledToStarted: [],
    launchStartedToProcessStart: [],
  };
  const stepEvents = new Map<string, Awaited<ReturnType<typeof fetchEvents>>>();
  const eventsOf = async (id: string) => {
    let events = stepEvents.get(id);
    if (!events) {
      events = await fetchEvents(world.client, id, runIdOf.get(id));
      stepEvents.set(id, events);
    }
    return events;
  };
  for (const [prev, next] of handoffs) {
    const prevEvents = await eventsOf(stepId(prev));
    const nextEvents = await eventsOf(stepId(next));
    const completed = prevEvents.find((e) => e.activityTaskCompletedEventAttributes);
    const released = releasedAt.get(stepId(prev));
    const sent = grantSentAt.get(stepId(next));
    const granted = nextEvents.find((e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'grant');
    const scheduled = nextEvents.find((e) => e.activityTaskScheduledEventAttributes);
    const started = nextEvents.find((e) => e.activityTaskStartedEventAttributes);
    if (!completed || released === undefined || sent === undefined || !granted || !scheduled || !started) continue;
    legs.exitToLaunchCompleted?.push(eventTime(completed) - prev.end);
    legs.launchCompletedToReleaseAtPool?.push(released - eventTime(completed));
    legs.releaseAtPoolToGrantSent?.push(sent - released);
    legs.grantSentToGrantAtStep?.push(eventTime(granted) - sent);
    legs.grantAtStepToLaunchScheduled?.push(eventTime(scheduled) - eventTime(granted));
    legs.launchScheduledToStarted?.push(eventTime(started) - eventTime(scheduled));
    legs.launchStartedToProcessStart?.push(next.start - eventTime(started));
  }
  return Object.fromEntries(Object.entries(legs).map(([k, v]) => [k, median(v)]));
}
