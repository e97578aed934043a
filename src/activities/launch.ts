/**
 * The `launch` activity: runs a step's workload on this node as its own process group, pinned to
 * the granted GPUs, with its output in a log file; heartbeats its log tail and usage while it
 * runs; enforces its memory and time limits; on cancellation sends SIGTERM to the group and
 * SIGKILL after the grace period.
 *
 * Failures it raises, each a non-retryable `ApplicationFailure` of that type, with
 * {@link LaunchFailureDetails}: `MemoryLimitExceeded` (peak and limit in the message),
 * `TimeLimitExceeded`, `NodeDraining` (the agent is stopping and handed the step back),
 * `NodeFenced` (the agent could not reach Temporal and stopped the workload), `LeaseNotHeld` (the
 * pool no longer holds its lease: the agent stopped it), `StaleLease`, `FencingUnavailable` and
 * `DeviceConflict` (fencing), `LaunchFailed` (the command could not start).
 *
 * When the workload has ended, the agent gives the lease back to the pool at once: after a
 * normal end, and when its step is gone (terminated) or its launch timed out, whose steps cannot.
 */
import { appendFileSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { Lease } from '../core';
import { formatMemory } from '../core';
import { poolWorkflowId, releaseSignal } from '../workflows/messages';
import { LaunchFailure } from '../workflows/failures';
import type { LaunchInput, LaunchResult } from '../workflows/step-types';
import type { StepUsage } from '../workflows/usage-types';
import type { CgroupSupport } from './cgroup';
import { StepCgroup } from './cgroup';
import { DEFAULT_ENV_ALLOWLIST, workloadEnv } from './environment';
import { claimDevices, fence } from './fencing';
import { LOG_TAIL_LINES, tail } from './log-tail';
import { runProcessGroup } from './process-group';
import type { LeaseLedger } from './ledger';
import type { CurrentUsage, GpuUsageSource, WorkloadMonitor } from './monitor';

const MiB = 1024 * 1024;

/** A launch in progress, as the agent's status and metrics see it. */
export interface RunningLaunch {
  input: LaunchInput;
  startedAt: number;
  logFile: string;
  /** Mean and peak so far. */
  usage(): StepUsage;
  /** The latest sample. */
  current(): CurrentUsage;
  /**
   * Stops the workload (SIGTERM, then SIGKILL after `graceMs`) for the agent's own reasons: it
   * cannot reach Temporal (`fenced`), or the pool no longer holds its lease (`not-held`).
   */
  stop(why: 'fenced' | 'not-held', graceMs: number): void;
}

/** How a launch ended, for metrics. */
export type LaunchOutcome =
  'succeeded' | 'failed' | 'memory_limit' | 'time_limit' | 'cancelled' | 'handed_back' | 'launch_failed';

/** What the agent gives its activities. */
export interface AgentContext {
  nodeId: string;
  /** Root of logs, outputs and checkpoints on this node. */
  dataDir: string;
  ledger: LeaseLedger;
  /** Agent variables passed through to workloads. @default DEFAULT_ENV_ALLOWLIST */
  envAllowlist?: string[];
  /** Interval between heartbeats, ms. @default 1000 */
  heartbeatMs?: number;
  /** The pool this agent serves: launches of any other pool are refused. */
  pool?: string;
  /**
   * Asks this agent's pool for a lease (fencing): the lease, or `null` when the pool does not hold
   * it; throws when the pool cannot be asked. Without it, launches are not fenced (tests).
   */
  lookupLease?: (leaseId: string) => Promise<Lease | null>;
  /** Longest a launch waits for the pool to answer its fencing query before it is refused, ms. @default 30000 */
  fencingWaitMs?: number;
  /** Longest a launch waits for devices that a stopping workload still holds, ms. @default 60000 */
  deviceWaitMs?: number;
  /** Device index → the id `CUDA_VISIBLE_DEVICES` takes for it. @default the index itself */
  visibleIds?: Record<number, string>;
  /** Where workloads get cgroups for their limits; without, memory is watched by polling. */
  cgroups?: CgroupSupport;
  /** GPU samples of the node (usage); absent on a node without `nvidia-smi`. */
  gpu?: GpuUsageSource;
  /** Time between usage samples (and memory checks when polling), ms. @default 500 */
  sampleMs?: number;
  /** Launches running now, by lease id; kept up to date when given. */
  running?: Map<string, RunningLaunch>;
  /** Called when a launch that got as far as the ledger ends, with what its workload used. */
  onEnded?: (input: LaunchInput, outcome: LaunchOutcome, usage?: StepUsage) => void;
  /**
   * Aborted when the agent hands its steps back (it is stopping after a drain deadline): running
   * workloads get SIGTERM, then SIGKILL after their grace period, and fail as `NodeDraining`.
   */
  handback?: AbortSignal;
  /** True while the agent drains: new launches are refused (`NodeDraining`) and run elsewhere. */
  draining?: () => boolean;
}

/** Details of the failures the launch raises for a workload it ran. */
export interface LaunchFailureDetails {
  exitCode: number | null;
  signal: string | null;
  runningMs: number;
  logFile: string;
  logTail: string[];
  usage?: StepUsage;
  /** For `MemoryLimitExceeded`: the highest memory seen and the limit, MiB. */
  peakMiB?: number;
  limitMiB?: number;
  /** For `TimeLimitExceeded`: the limit, ms. */
  timeLimitMs?: number;
}

/** A file-system-safe form of a step id. */
export function safeName(id: string): string {
  return id.replace(/[^A-Za-z0-9._-]/g, '_');
}

/** Paths used by one attempt of a step on this node. */
export function stepPaths(
  dataDir: string,
  stepId: string,
  attempt: number,
): { log: string; output: string; checkpoint: string } {
  const step = safeName(stepId);
  return {
    log: path.join(dataDir, 'logs', step, `attempt-${attempt}.log`),
    output: path.join(dataDir, 'outputs', step, `attempt-${attempt}.json`),
    checkpoint: path.join(dataDir, 'checkpoints', step),
  };
}

/** Creates the agent's activities. */
export function createActivities(ctx: AgentContext) {
  return {
    /** Runs a workload to its end (see the module comment). */
    async launch(input: LaunchInput): Promise<LaunchResult> {
      let result: LaunchResult;
      try {
        result = await launch(ctx, input);
      } catch (err) {
        // A step that is gone (terminated) cannot release, and one whose launch timed out waits to
        // hear that its workload has stopped: the workload has ended here, so give the lease back.
        const details = cancellationDetails();
        if (details?.notFound || details?.timedOut) {
          await releaseToPool(input, details.timedOut ? { requeue: true, stopped: true } : {});
        }
        throw err;
      }
      // The workload has ended and the ledger has freed its devices: give the lease back now
      // rather than after the step has heard of the end, so that the next step starts sooner.
      return (await releaseToPool(input)) ? { ...result, released: true } : result;
    },
  };
}

/** The reasons the running activity was cancelled, if it was (and the SDK says). */
function cancellationDetails(): { notFound: boolean; timedOut: boolean } | undefined {
  try {
    const d = Context.current().cancellationDetails;
    return d ? { notFound: d.notFound, timedOut: d.timedOut } : undefined;
  } catch {
    return undefined;
  }
}

/** Why the agent stopped a workload itself, if it did. */
export type Stopped =
  | { why: 'memory'; peakBytes: number }
  | { why: 'time' }
  | { why: 'handback' }
  | { why: 'fenced' }
  | { why: 'not-held' };

async function launch(ctx: AgentContext, input: LaunchInput): Promise<LaunchResult> {
  const activity = Context.current();
  await fence(ctx, input, activity);
  if (ctx.handback?.aborted || ctx.draining?.()) {
    throw ApplicationFailure.nonRetryable(
      `node ${ctx.nodeId} is draining; it starts no new step`,
      LaunchFailure.NodeDraining,
    );
  }
  await claimDevices(ctx, input, activity);
  if (activity.cancellationSignal.aborted) {
    ctx.ledger.free(input.leaseId);
    throw activity.cancellationSignal.reason instanceof Error
      ? activity.cancellationSignal.reason
      : new CancelledFailure('cancelled before the workload started');
  }
  let cgroup: StepCgroup | undefined;
  try {
    const paths = stepPaths(ctx.dataDir, input.stepId, input.attempt);
    for (const p of [path.dirname(paths.log), path.dirname(paths.output), paths.checkpoint])
      mkdirSync(p, { recursive: true });
    rmSync(paths.output, { force: true });
    const devices = input.gpuIndices.map((i) => ctx.visibleIds?.[i] ?? String(i)).join(',');
    const allotEnv: Record<string, string> = {
      CUDA_VISIBLE_DEVICES: devices,
      NVIDIA_VISIBLE_DEVICES: devices === '' ? 'void' : devices,
      ALLOT_STEP_ID: input.stepId,
      ALLOT_STEP_NAME: input.name,
      ALLOT_ATTEMPT: String(input.attempt),
      ALLOT_LEASE_ID: input.leaseId,
      ALLOT_NODE_ID: ctx.nodeId,
      ALLOT_CHECKPOINT_DIR: paths.checkpoint,
      ALLOT_OUTPUT: paths.output,
    };
    if (input.gpuFraction !== undefined) {
      allotEnv.ALLOT_GPU_FRACTION = String(input.gpuFraction);
      allotEnv.CUDA_MPS_ACTIVE_THREAD_PERCENTAGE = String(Math.max(1, Math.round(input.gpuFraction * 100)));
    }
    const env = workloadEnv(process.env, ctx.envAllowlist ?? DEFAULT_ENV_ALLOWLIST, input.env, allotEnv);
    const limitBytes = input.memoryLimitMiB !== undefined ? input.memoryLimitMiB * MiB : undefined;
    if (ctx.cgroups?.available && (limitBytes !== undefined || input.cpuLimitMilli !== undefined)) {
      try {
        cgroup = StepCgroup.create(ctx.cgroups.parent, safeName(input.leaseId), {
          memoryMaxBytes: limitBytes,
          cpuMaxMilli: input.cpuLimitMilli,
        });
      } catch (err) {
        appendFileSync(paths.log, `allot: no cgroup for this step (${(err as Error).message}); watching memory\n`);
      }
    }
    const enforcement = limitBytes === undefined ? 'none' : cgroup ? 'cgroup' : 'polling';
    const logFd = openSync(paths.log, 'a');
    const startedAt = Date.now();
    let exit: { code: number | null; signal: NodeJS.Signals | null; stopped?: Stopped; monitor?: WorkloadMonitor };
    try {
      exit = await runProcessGroup(ctx, input, env, logFd, paths.log, activity, startedAt, cgroup);
    } catch (err) {
      ctx.onEnded?.(input, 'launch_failed');
      throw err;
    } finally {
      closeSync(logFd);
    }
    const runningMs = Date.now() - startedAt;
    const oomKilled = cgroup !== undefined && cgroup.read().oomKills > 0;
    await cgroup?.remove();
    cgroup = undefined;
    const usage: StepUsage | undefined = exit.monitor
      ? {
          ...exit.monitor.usage(),
          ...(input.requested ? { requested: input.requested } : {}),
          memoryEnforcement: enforcement,
        }
      : undefined;
    const report = (outcome: LaunchOutcome): void => ctx.onEnded?.(input, outcome, usage);
    const details = (extra: Partial<LaunchFailureDetails> = {}): LaunchFailureDetails => ({
      exitCode: exit.code,
      signal: exit.signal,
      runningMs,
      logFile: paths.log,
      logTail: tail(paths.log, LOG_TAIL_LINES),
      ...(usage ? { usage } : {}),
      ...extra,
    });

    if (exit.stopped?.why === 'memory' || oomKilled) {
      const peakBytes = Math.max(
        exit.stopped?.why === 'memory' ? exit.stopped.peakBytes : 0,
        exit.monitor?.peakMemoryBytes ?? 0,
        limitBytes !== undefined && oomKilled ? limitBytes : 0,
      );
      const peakMiB = Math.round(peakBytes / MiB);
      const limitMiB = input.memoryLimitMiB ?? 0;
      const used =
        peakMiB > limitMiB
          ? `used ${formatMemory(peakMiB)} of memory (peak), over its limit of ${formatMemory(limitMiB)}`
          : `reached its memory limit of ${formatMemory(limitMiB)} (peak ${formatMemory(peakMiB)})`;
      const message = `step ${input.name} ${used} and was killed; ask for more with resources.memory or memoryLimit (--memory / --memory-limit)`;
      appendFileSync(paths.log, `allot: ${message}\n`);
      report('memory_limit');
      throw ApplicationFailure.create({
        message,
        type: LaunchFailure.MemoryLimitExceeded,
        nonRetryable: true,
        details: [details({ peakMiB, limitMiB })],
      });
    }
    if (activity.cancellationSignal.aborted) {
      report('cancelled');
      const reason: unknown = activity.cancellationSignal.reason;
      // The details (log file, tail, usage) go into the history with the cancellation.
      if (reason instanceof CancelledFailure) throw new CancelledFailure(reason.message, [details()]);
      if (reason instanceof ApplicationFailure) {
        throw ApplicationFailure.create({
          message: reason.message,
          type: reason.type ?? undefined,
          nonRetryable: reason.nonRetryable ?? undefined,
          details: [details()],
        });
      }
      throw reason instanceof Error ? reason : ApplicationFailure.create({ message: 'cancelled', type: 'Cancelled' });
    }
    if (exit.stopped?.why === 'time') {
      const message = `step ${input.name} ran past its time limit of ${formatLimit(input.timeLimitMs ?? 0)} and was stopped`;
      appendFileSync(paths.log, `allot: ${message}\n`);
      report('time_limit');
      throw ApplicationFailure.create({
        message,
        type: LaunchFailure.TimeLimitExceeded,
        nonRetryable: true,
        details: [details({ timeLimitMs: input.timeLimitMs })],
      });
    }
    if (exit.stopped?.why === 'handback') {
      const message = `node ${ctx.nodeId} is stopping; step ${input.name} was stopped and handed back to be run again`;
      appendFileSync(paths.log, `allot: ${message}\n`);
      report('handed_back');
      throw ApplicationFailure.create({
        message,
        type: LaunchFailure.NodeDraining,
        nonRetryable: true,
        details: [details()],
      });
    }
    if (exit.stopped?.why === 'fenced' || exit.stopped?.why === 'not-held') {
      const fenced = exit.stopped.why === 'fenced';
      const message = fenced
        ? `node ${ctx.nodeId} could not reach Temporal; it stopped step ${input.name} so that it can run elsewhere`
        : `pool ${ctx.pool ?? input.pool} no longer holds lease ${input.leaseId}; node ${ctx.nodeId} stopped step ${input.name}`;
      appendFileSync(paths.log, `allot: ${message}\n`);
      report('handed_back');
      throw ApplicationFailure.create({
        message,
        type: fenced ? LaunchFailure.NodeFenced : LaunchFailure.LeaseNotHeld,
        nonRetryable: true,
        details: [details()],
      });
    }
    report(exit.code === 0 ? 'succeeded' : 'failed');
    return {
      exitCode: exit.code,
      signal: exit.signal,
      outputs: readOutputs(paths.output, paths.log),
      runningMs,
      logFile: paths.log,
      logTail: tail(paths.log, LOG_TAIL_LINES),
      ...(usage ? { usage } : {}),
    };
  } finally {
    await cgroup?.remove();
    ctx.ledger.free(input.leaseId);
  }
}

/** Longest wait for the pool to take a release from the agent, ms; past it the step releases. */
const RELEASE_WAIT_MS = 2_000;

/**
 * Signals the pool that a launch's lease is free, with the worker's own client. True when the
 * signal was accepted; otherwise the step releases, as it always did (releasing twice is a no-op).
 */
async function releaseToPool(input: LaunchInput, how: { requeue?: true; stopped?: true } = {}): Promise<boolean> {
  if (input.pool === undefined || input.requestId === undefined) return false;
  let client: Client;
  try {
    client = Context.current().client;
  } catch {
    return false; // No client, as in a MockActivityEnvironment.
  }
  const signalled = client.workflow
    .getHandle(poolWorkflowId(input.pool))
    .signal(releaseSignal, { requestId: input.requestId, ...how })
    .then(
      () => true,
      () => false,
    );
  const timeout = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), RELEASE_WAIT_MS).unref());
  return Promise.race([signalled, timeout]);
}

function formatLimit(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

function readOutputs(file: string, logFile: string): Record<string, unknown> {
  if (!existsSync(file)) return {};
  try {
    const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed))
      return parsed as Record<string, unknown>;
    return { value: parsed };
  } catch (err) {
    appendFileSync(logFile, `allot: ignored $ALLOT_OUTPUT, which is not valid JSON: ${(err as Error).message}\n`);
    return {};
  }
}
