/**
 * The `launch` activity: runs a step's workload on this node as its own process group, pinned to
 * the granted GPUs, with its output in a log file; heartbeats its log tail and usage while it
 * runs; enforces its memory and time limits; on cancellation sends SIGTERM to the group and
 * SIGKILL after the grace period.
 *
 * Failures it raises, each a non-retryable `ApplicationFailure` of that type, with
 * {@link LaunchFailureDetails} (see outcome.ts): `MemoryLimitExceeded` (peak and limit in the message),
 * `TimeLimitExceeded`, `NodeDraining` (the agent is stopping and handed the step back),
 * `NodeFenced` (the agent could not reach Temporal and stopped the workload), `LeaseNotHeld` (the
 * pool no longer holds its lease: the agent stopped it), `StaleLease`, `FencingUnavailable` and
 * `DeviceConflict` (fencing), `LaunchFailed` (the command could not start).
 *
 * When the workload has ended, the agent gives the lease back to the pool at once: after a
 * normal end, and when its step is gone (terminated) or its launch timed out, whose steps cannot.
 */
import { appendFileSync, closeSync, mkdirSync, openSync, rmSync } from 'node:fs';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { poolWorkflowId, releaseSignal } from '../workflows/messages';
import { LaunchFailure } from '../workflows/failures';
import type { LaunchInput, LaunchResult } from '../workflows/step-types';
import { StepCgroup } from './cgroup';
import type { AgentContext, Stopped } from './context';
import { stepEnvironment } from './environment';
import { claimDevices, fence } from './fencing';
import type { WorkloadMonitor } from './monitor';
import { workloadOutcome } from './outcome';
import { runProcessGroup } from './process-group';

const MiB = 1024 * 1024;

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
    const env = stepEnvironment(ctx, input, paths);
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
      exit = await runProcessGroup({
        ctx,
        input,
        env,
        log: { fd: logFd, file: paths.log },
        activity,
        startedAt,
        cgroup,
      });
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
    return workloadOutcome(ctx, input, activity, { ...exit, runningMs, oomKilled, enforcement, paths });
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
