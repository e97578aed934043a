/**
 * Figure 3, scale: acquire latency and the pool's workflow-task time with 100, 1,000 and 10,000
 * requests queued (and 5,000 between). The pool has one node whose only GPU is held, and the
 * queue fills with requests for a GPU; probes are acquires that can be granted at once (CPU only, top priority),
 * sent one at a time as client Updates and released again. Their round trip is the acquire
 * latency; the pool's workflow tasks meanwhile give its task time.
 *
 * The baseline's counterpart is enqueueing: with the same number of activities in the backlog of
 * a hardware task queue, the time from starting a workload's workflow to its activity being
 * scheduled (its place in the queue), and that workflow's task time.
 */
import type { Client } from '@temporalio/client';
import { parseResources } from '../../src/core';
import type { AcquireInput, ResourceRequest } from '../../src/core';
import { acquireSignal, acquireUpdate, releaseUpdate, requestQuery } from '../../src/workflows/messages';
import { eventTime, fetchEvents, runsOf, workflowTaskTimes } from '../lib/history';
import { payloadsOverLimit } from '../lib/sdk-log';
import type { Load, Summary } from '../lib/stats';
import { LoadSampler, ratio, sleep, summarize } from '../lib/stats';
import type { BenchWorld } from '../lib/world';
import { poolWorkflowId } from '../lib/world';

/** Options of the scale figure. */
export interface ScaleOptions {
  /** Queue lengths to measure at. @default [100, 1000, 5000, 10000] */
  levels?: number[];
  /** Probes per level. @default 20 */
  probes?: number;
}

/** One queue length; `error` instead of figures when the pool could not hold that many. */
export type ScaleLevel = { queued: number; error: string; load: Load } | ScaleMeasured;

/** One queue length, measured. */
export interface ScaleMeasured {
  queued: number;
  /** Round trip of an acquire Update that is granted at once, ms. */
  acquire: Summary;
  /** The pool's workflow tasks while probing, ms. */
  poolTask: Summary;
  /** Baseline: start of a workload's workflow to its activity scheduled, with as many in the backlog, ms. */
  nativeEnqueue: Summary;
  /** Baseline: that workflow's task time, ms. */
  nativeTask: Summary;
  /** acquire p50 / native enqueue p50. */
  ratioP50: number | null;
  /** How long filling the queue to this level took, s. */
  fillSeconds: number;
  load: Load;
}

/** The figure. */
export interface ScaleFigure {
  levels: ScaleLevel[];
  /** acquire p50 at the largest level measured / at the smallest. */
  growth: number | null;
  /** The pool's runs while filling (it continues as new as its history grows). */
  poolRuns: number;
}

function request(resources: ResourceRequest, id: string, priority = 0): AcquireInput {
  return { requestId: id, owner: { kind: 'client', name: 'bench' }, resources, priority, label: id };
}

function resourcesOf(spec: Record<string, unknown>): ResourceRequest {
  const { request: r, issues } = parseResources(spec);
  if (!r) throw new Error(`bad bench request: ${JSON.stringify(issues)}`);
  return r;
}

/** Sends `ids` as acquire signals, `concurrency` at a time. */
async function fill(client: Client, pool: string, ids: string[], resources: ResourceRequest): Promise<void> {
  fillStarted = Date.now();
  const handle = client.workflow.getHandle(poolWorkflowId(pool));
  let next = 0;
  const send = async (): Promise<void> => {
    while (next < ids.length) {
      const id = ids[next++] as string;
      await handle.signal(acquireSignal, request(resources, id));
    }
  };
  await Promise.all([...Array.from({ length: 16 }, send), watch(client, pool, () => next >= ids.length)]);
  // Signals are applied in batches: wait until the last ones are queued.
  const tail = ids.slice(-16);
  for (;;) {
    await stuck(client, pool);
    const seen = await Promise.all(tail.map((id) => handle.query(requestQuery, id).catch(() => null)));
    if (seen.every((s) => s !== null)) return;
    await sleep(200);
  }
}

/**
 * Fails when the pool cannot continue as new because its state is over the payload limit: its
 * workflow task then fails again and again, and it makes no progress, whatever is sent.
 */
async function stuck(client: Client, pool: string): Promise<void> {
  const over = payloadsOverLimit[payloadsOverLimit.length - 1];
  if (over && over.at >= fillStarted) {
    throw new Error(
      `the pool's continue-as-new state is ${(over.size / 2 ** 20).toFixed(2)} MiB, over Temporal's payload limit of ${(over.limit / 2 ** 20).toFixed(0)} MiB: its workflow task fails`,
    );
  }
  const described = await client.workflow.getHandle(poolWorkflowId(pool)).describe();
  const attempt = described.raw.pendingWorkflowTask?.attempt ?? 0;
  if (attempt >= 3) throw new Error(`the pool's workflow task has failed ${attempt - 1} times in a row`);
}

let fillStarted = 0;

/** Checks the pool every second while signals are sent, until `done()`. */
async function watch(client: Client, pool: string, done: () => boolean): Promise<void> {
  while (!done()) {
    await stuck(client, pool);
    await sleep(1000);
  }
}

/** Runs the figure. */
export async function scaleFigure(
  world: BenchWorld,
  stage: (what: string) => void,
  options: ScaleOptions = {},
): Promise<ScaleFigure> {
  const levels = options.levels ?? [100, 1_000, 5_000, 10_000];
  const probes = options.probes ?? 20;
  const pool = world.id('scale');
  await world.startPool(pool);
  const agent = await world.addAgent(pool, world.id('scale-node'), 1);
  const handle = world.client.workflow.getHandle(poolWorkflowId(pool));
  const gpu = resourcesOf({ gpu: 1, cpu: '100m', memory: '64Mi' });
  const cpuOnly = resourcesOf({ gpu: 0, cpu: '100m', memory: '64Mi' });
  const blocker = await handle.executeUpdate(acquireUpdate, { args: [request(gpu, 'blocker')] });
  if (blocker.status !== 'granted') throw new Error(`the blocker was not granted: ${JSON.stringify(blocker)}`);

  // The baseline's hardware queue has no worker: its activities stay in the backlog.
  const nativeQueue = world.id('native-scale-node');
  let backlog = 0;
  let queued = 0;
  const results: ScaleLevel[] = [];
  for (const level of levels) {
    stage(`scale: filling the pool's queue to ${level.toLocaleString('en-US')} and the baseline's backlog alike`);
    const load = new LoadSampler();
    const t0 = Date.now();
    const ids = Array.from({ length: level - queued }, (_, i) => `q${queued + i}`);
    try {
      await fill(world.client, pool, ids, gpu);
    } catch (err) {
      const error = `${(err as Error).message}; ${await whyStuck(world.client, pool)}`;
      stage(`scale: the pool could not take ${level.toLocaleString('en-US')} queued requests: ${error}`);
      await handle.terminate('benchmark: the pool is stuck').catch(() => undefined);
      results.push({ queued: level, error, load: load.stop() });
      break;
    }
    queued = level;
    const fillSeconds = Math.round((Date.now() - t0) / 100) / 10;
    while (backlog < level) {
      const count = Math.min(2_000, level - backlog);
      const feeder = await world.client.workflow.start('nativeBacklogFeeder', {
        taskQueue: world.controlQueue,
        workflowId: `${nativeQueue}/feeder-${backlog}`,
        args: [{ taskQueue: nativeQueue, count }],
      });
      // Wait until its activities are scheduled.
      for (;;) {
        const d = await feeder.describe();
        if ((d.raw.pendingActivities?.length ?? 0) >= count) break;
        await sleep(200);
      }
      backlog += count;
    }

    stage(`scale: ${probes} probes at ${level.toLocaleString('en-US')} queued`);
    const acquire: number[] = [];
    const from = Date.now();
    for (let i = 0; i < probes; i++) {
      const id = `probe-${level}-${i}`;
      const t = performance.now();
      const outcome = await handle.executeUpdate(acquireUpdate, { args: [request(cpuOnly, id, 1000)] });
      acquire.push(performance.now() - t);
      if (outcome.status !== 'granted') throw new Error(`probe ${id} was not granted: ${JSON.stringify(outcome)}`);
      await handle.executeUpdate(releaseUpdate, { args: [id] });
    }
    const to = Date.now();
    const poolTask: number[] = [];
    for (const run of await runsOf(world.client, poolWorkflowId(pool))) {
      const events = await fetchEvents(world.client, poolWorkflowId(pool), run.runId);
      for (const w of workflowTaskTimes(events)) if (w.at >= from && w.at <= to) poolTask.push(w.ms);
    }

    const nativeEnqueue: number[] = [];
    const nativeTask: number[] = [];
    for (let i = 0; i < probes; i++) {
      const t = Date.now();
      const h = await world.client.workflow.start('nativeWorkload', {
        taskQueue: world.controlQueue,
        workflowId: `${nativeQueue}/probe-${level}-${i}`,
        args: [{ taskQueue: nativeQueue, command: ['true'] }],
      });
      let events = await fetchEvents(world.client, h.workflowId);
      while (!events.some((e) => e.activityTaskScheduledEventAttributes)) {
        await sleep(2);
        events = await fetchEvents(world.client, h.workflowId);
      }
      const scheduled = events.find((e) => e.activityTaskScheduledEventAttributes);
      if (scheduled) nativeEnqueue.push(eventTime(scheduled) - t);
      nativeTask.push(...workflowTaskTimes(events).map((w) => w.ms));
      await h.terminate('probe measured');
    }
    const a = summarize(acquire);
    const n = summarize(nativeEnqueue);
    results.push({
      queued: level,
      acquire: a,
      poolTask: summarize(poolTask),
      nativeEnqueue: n,
      nativeTask: summarize(nativeTask),
      ratioP50: ratio(a.p50, n.p50),
      fillSeconds,
      load: load.stop(),
    });
  }
  await world.stop(agent.worker);
  const measured = results.filter((r): r is ScaleMeasured => !('error' in r));
  const first = measured[0];
  const last = measured[measured.length - 1];
  return {
    levels: results,
    growth: ratio(last?.acquire.p50, first?.acquire.p50),
    poolRuns: (await runsOf(world.client, poolWorkflowId(pool))).length,
  };
}

/** What keeps a pool from making progress: its failing workflow task, if any. */
async function whyStuck(client: Client, pool: string): Promise<string> {
  const described = await client.workflow.getHandle(poolWorkflowId(pool)).describe();
  const attempt = described.raw.pendingWorkflowTask?.attempt ?? 0;
  const events = await fetchEvents(client, poolWorkflowId(pool));
  const failed = [...events].reverse().find((e) => e.workflowTaskFailedEventAttributes);
  const message = failed?.workflowTaskFailedEventAttributes?.failure?.message;
  return attempt > 1 || message
    ? `its workflow task fails (attempt ${attempt}): ${message ?? 'unknown'}`
    : `${described.historyLength} events in its current run`;
}
