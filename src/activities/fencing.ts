/**
 * Fencing: before a workload starts, the agent checks with its own pool that the launch's lease is
 * current and is exactly what the launch says: granted by this agent's pool, for this node, to this
 * step and request, on these GPUs (whole or the same share), with this CPU, memory and custom
 * resources. A launch that fails any check is refused as `StaleLease`; one the pool cannot be asked
 * about in time is refused as `FencingUnavailable` (it never runs on a grant nobody could confirm).
 */
import type { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Lease } from '../core';
import { LaunchFailure } from '../workflows/failures';
import type { LaunchInput } from '../workflows/step-types';
import type { AgentContext } from './context';
import { DeviceConflictError } from './ledger';

/** Why the lease does not cover the launch, or `undefined` when it does. */
export function leaseMismatch(
  input: LaunchInput,
  lease: Lease | null,
  nodeId: string,
  pool: string,
): string | undefined {
  const refuse = (why: string): string =>
    `lease ${input.leaseId} is not held by pool ${pool} for step ${input.stepId} on node ${nodeId}: ${why}; refusing a stale launch`;
  if (input.pool !== pool) {
    return refuse(`the launch names pool ${JSON.stringify(input.pool ?? null)}, and this agent serves pool ${pool}`);
  }
  if (lease === null) return refuse('the pool holds no such lease');
  if (lease.nodeId !== nodeId) return refuse(`the pool holds it for node ${lease.nodeId}`);
  if (lease.owner.kind !== 'workflow' || lease.owner.workflowId !== input.stepId) {
    const owner = lease.owner.kind === 'workflow' ? lease.owner.workflowId : `client ${lease.owner.name}`;
    return refuse(`the pool holds it for ${owner}`);
  }
  if (input.requestId !== undefined && lease.requestId !== input.requestId) {
    return refuse(`the pool holds it for request ${lease.requestId}, not ${input.requestId}`);
  }
  const granted = lease.gpus.map((g) => `${g.index}:${g.milli}`).sort();
  const share = input.gpuFraction !== undefined ? Math.round(input.gpuFraction * 1000) : 1000;
  const asked = input.gpuIndices.map((i) => `${i}:${share}`).sort();
  if (granted.join(',') !== asked.join(',')) {
    return refuse(
      `the pool granted GPUs ${describeGpus(lease.gpus)}, and the launch asks for ${describeGpus(input.gpuIndices.map((index) => ({ index, milli: share })))}`,
    );
  }
  if (input.custom !== undefined && describeCustom(input.custom) !== describeCustom(lease.custom)) {
    return refuse(
      `the pool granted custom resources ${describeCustom(lease.custom)}, and the launch asks for ${describeCustom(input.custom)}`,
    );
  }
  const requested = input.requested;
  if (requested) {
    const cpuMilli = Math.round(requested.cpu * 1000);
    if (cpuMilli !== lease.cpuMilli)
      return refuse(`the pool granted ${lease.cpuMilli}m CPU, and the launch asks for ${cpuMilli}m`);
    if (requested.memoryMiB !== lease.memoryMiB) {
      return refuse(
        `the pool granted ${lease.memoryMiB}Mi of memory, and the launch asks for ${requested.memoryMiB}Mi`,
      );
    }
  }
  return undefined;
}

function describeCustom(custom: Readonly<Record<string, number>> | undefined): string {
  const held = Object.entries(custom ?? {}).filter(([, n]) => n > 0);
  return held.length === 0
    ? 'none'
    : held
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([k, n]) => `${k}=${n}`)
        .join(',');
}

function describeGpus(gpus: readonly { index: number; milli: number }[]): string {
  if (gpus.length === 0) return 'none';
  return gpus.map((g) => (g.milli < 1000 ? `${g.index} (${g.milli / 1000} of it)` : String(g.index))).join(', ');
}

/** Interval of heartbeats while the pool has not yet confirmed a launch's lease, ms. */
const FENCING_HEARTBEAT_MS = 5_000;

/** Longest a launch waits for the pool's answer to its fencing query, ms. */
export const FENCING_WAIT_MS = 30_000;

/**
 * Longest a launch waits for GPUs that another lease still holds on this node, ms: a victim the
 * pool has already taken back may take its grace period, and a little more, to stop.
 */
export const DEVICE_WAIT_MS = 60_000;

/** Waits `ms`, or less when the activity is cancelled. */
export function pause(activity: Context, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      activity.cancellationSignal.removeEventListener('abort', done);
      resolve();
    }
    activity.cancellationSignal.addEventListener('abort', done, { once: true });
  });
}

/** Fencing (see `fencing.ts`): refuses the launch unless this agent's pool holds exactly its lease. */
export async function fence(ctx: AgentContext, input: LaunchInput, activity: Context): Promise<void> {
  const lookup = ctx.lookupLease;
  if (!lookup) return;
  const pool = ctx.pool ?? '';
  if (input.pool !== pool) {
    throw ApplicationFailure.nonRetryable(
      leaseMismatch(input, null, ctx.nodeId, pool) ?? 'stale launch',
      LaunchFailure.StaleLease,
    );
  }
  // A busy pool answers its query late (seconds, at saturation): heartbeat meanwhile, or the
  // launch times out. One that does not answer at all refuses the launch: nothing runs on a grant
  // no one could confirm.
  const beat = setInterval(() => activity.heartbeat({ attempt: input.attempt }), FENCING_HEARTBEAT_MS);
  const deadline = Date.now() + (ctx.fencingWaitMs ?? FENCING_WAIT_MS);
  let lease: Lease | null | undefined;
  let lastError = '';
  try {
    for (let wait = 250; lease === undefined; wait = Math.min(wait * 2, 4_000)) {
      try {
        lease = await lookup(input.leaseId);
      } catch (err) {
        lastError = err instanceof Error ? err.message : String(err);
        if (Date.now() + wait > deadline || activity.cancellationSignal.aborted) break;
        await pause(activity, wait);
      }
    }
  } finally {
    clearInterval(beat);
  }
  if (lease === undefined) {
    throw ApplicationFailure.nonRetryable(
      `pool ${pool} did not confirm lease ${input.leaseId} within ${Math.round((ctx.fencingWaitMs ?? FENCING_WAIT_MS) / 1000)} s (${lastError}); ` +
        'refusing to run on a grant it cannot confirm',
      LaunchFailure.FencingUnavailable,
    );
  }
  const why = leaseMismatch(input, lease, ctx.nodeId, pool);
  if (why) throw ApplicationFailure.nonRetryable(why, LaunchFailure.StaleLease);
}

/**
 * Claims the launch's devices in the ledger. Devices another lease still holds are waited for a
 * while (a victim the pool took back may still be stopping), then refused as `DeviceConflict`.
 */
export async function claimDevices(ctx: AgentContext, input: LaunchInput, activity: Context): Promise<void> {
  const claim = {
    leaseId: input.leaseId,
    stepId: input.stepId,
    gpus: input.gpuIndices.map((index) => ({
      index,
      milli: input.gpuFraction !== undefined ? Math.round(input.gpuFraction * 1000) : 1000,
    })),
  };
  const deadline = Date.now() + (ctx.deviceWaitMs ?? DEVICE_WAIT_MS);
  for (;;) {
    try {
      ctx.ledger.claim(claim);
      return;
    } catch (err) {
      if (!(err instanceof DeviceConflictError)) throw err;
      if (err.sameLease || Date.now() >= deadline || activity.cancellationSignal.aborted) {
        throw ApplicationFailure.nonRetryable(err.message, err.code);
      }
      activity.heartbeat({ attempt: input.attempt, waitingFor: err.message });
      await pause(activity, 250);
    }
  }
}
