/**
 * One attempt of a gang step: every replica launched on its own node at once, with the variables
 * that let them find each other, and ended as one. Replica 0's agent first names the address and
 * a free port where replica 0 will listen (`MASTER_ADDR`, `MASTER_PORT`). When any replica fails
 * or exits non-zero, the others are cancelled at once (SIGTERM, their grace period, SIGKILL); a
 * preemption or revocation of the gang cancels every replica, as for a single step.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  proxyActivities,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { AllotActivities, LaunchFailureDetails } from '../activities';
import type { Lease } from '../core';
import { NODE_UNRESPONSIVE } from './failures';
import { nodeTaskQueue } from './messages';
import { SEARCH_ATTRIBUTES as SA } from './search-attributes';
import { failureFacts, launchActivities, launchGrace, launchInput } from './step-attempt';
import type { LaunchFailureFacts } from './step-outcome';
import type { StepRun } from './step-run';
import type { LaunchResult, ReplicaResult } from './step-types';

/** How one replica's launch ended. */
export type ReplicaEnd = { launched: LaunchResult } | { failed: unknown; facts: LaunchFailureFacts };

/** How a gang's attempt ended: each replica's end, by rank, and the rank whose end stopped the others. */
export interface GangEnd {
  ends: ReplicaEnd[];
  /** The first replica that failed or exited non-zero before anything else stopped the gang. */
  cause?: number;
  /** The rendezvous on replica 0's node failed: no replica was launched. */
  rendezvousFailed?: { err: unknown; facts: LaunchFailureFacts };
}

/** `replica 1 (node gpu-b)`: how messages name a replica. */
export function replicaName(rank: number, lease: Lease | undefined): string {
  return `replica ${rank}${lease ? ` (node ${lease.nodeId})` : ''}`;
}

/** Launches every replica of the gang on its lease and waits for all, renewing the leases meanwhile. */
export async function launchGang(run: StepRun, leases: Lease[], attempt: number): Promise<GangEnd> {
  const { progress } = run;
  const first = leases[0] as Lease;
  progress.nodeId = first.nodeId;
  progress.gpuIndices = first.gpus.map((g) => g.index);
  progress.replicas = leases.map((l) => ({ nodeId: l.nodeId, gpuIndices: l.gpus.map((g) => g.index) }));
  progress.startedAt = Date.now();
  progress.reason = undefined;
  progress.message = undefined;
  const nodes = [...new Set(leases.map((l) => l.nodeId))];
  upsertSearchAttributes([
    { key: SA.AllotNode, value: nodes.join(',') },
    { key: SA.AllotGpus, value: leases.map((l) => `${l.nodeId}:${l.gpus.map((g) => g.index).join(',')}`).join(' ') },
  ]);
  run.setState('running');
  run.startRenewing(first);
  const graceMs = launchGrace(run, first);
  const ends: ReplicaEnd[] = [];
  const gang: GangEnd = { ends };
  const scope = new CancellationScope();
  run.launchScope = scope;
  try {
    await scope.run(async () => {
      const { gangRendezvous } = proxyActivities<AllotActivities>({
        taskQueue: nodeTaskQueue(first.nodeId),
        scheduleToStartTimeout: '1 minute',
        startToCloseTimeout: '30 seconds',
        retry: { maximumAttempts: 1 },
      });
      let master: { address: string; port: number };
      try {
        master = await gangRendezvous();
      } catch (err) {
        const facts = failureFacts(run, first, err, graceMs);
        facts.infrastructure ??= {
          reason: NODE_UNRESPONSIVE,
          message: `${replicaName(0, first)} could not name a port for the gang: ${facts.message}`,
        };
        gang.rendezvousFailed = { err, facts };
        return;
      }
      await Promise.all(
        leases.map(async (lease, rank) => {
          const { launch } = launchActivities(run, lease.nodeId);
          const gangLaunch = {
            id: progress.requestId,
            rank,
            size: leases.length,
            masterAddr: master.address,
            masterPort: master.port,
          };
          let end: ReplicaEnd;
          try {
            end = { launched: await launch(launchInput(run, lease, attempt, graceMs, gangLaunch)) };
          } catch (err) {
            end = { failed: err, facts: failureFacts(run, lease, err, graceMs) };
          }
          ends[rank] = end;
          const bad = 'failed' in end || end.launched.exitCode !== 0;
          // Together, always: the first replica to fail stops the others.
          if (bad && gang.cause === undefined && !run.told.interrupted && !run.cancelled) {
            gang.cause = rank;
            scope.cancel();
          }
        }),
      );
    });
  } finally {
    run.launchScope = undefined;
  }
  return gang;
}

/** The details a failed or cancelled launch carries (its workload's exit, log and usage), if any. */
function failureDetails(err: unknown): Partial<LaunchFailureDetails> | undefined {
  const cause = err instanceof ActivityFailure ? err.cause : undefined;
  const details = cause instanceof ApplicationFailure || cause instanceof CancelledFailure ? cause.details : undefined;
  const first: unknown = details?.[0];
  return typeof first === 'object' && first !== null ? (first as Partial<LaunchFailureDetails>) : undefined;
}

/**
 * The replica that lost its node or agent, if one did: the others' failures follow from it (a
 * distributed program fails as soon as a peer is gone), so the gang queues again as a single step
 * that lost its node would, rather than fail.
 */
export function lostReplica(ends: readonly (ReplicaEnd | undefined)[]): number | undefined {
  const i = ends.findIndex((e) => e !== undefined && 'failed' in e && e.facts.infrastructure !== undefined);
  return i >= 0 ? i : undefined;
}

/** Each replica's node, GPUs and end, by rank, for the step's result. */
export function replicaResults(leases: readonly Lease[], ends: readonly (ReplicaEnd | undefined)[]): ReplicaResult[] {
  return leases.map((lease, rank) => {
    const end = ends[rank];
    const base = { rank, nodeId: lease.nodeId, gpuIndices: lease.gpus.map((g) => g.index) };
    if (end && 'launched' in end) {
      const l = end.launched;
      return {
        ...base,
        exitCode: l.exitCode,
        signal: l.signal,
        runningMs: l.runningMs,
        logFile: l.logFile,
        logTail: l.logTail,
      };
    }
    const error = !end ? 'never launched' : end.facts.cancellation ? 'stopped with the gang' : end.facts.message;
    // A launch that failed or was stopped still says where its log is and how its workload ended.
    const d = end ? failureDetails(end.failed) : undefined;
    return {
      ...base,
      exitCode: d?.exitCode ?? null,
      signal: d?.signal ?? null,
      ...(d?.runningMs !== undefined ? { runningMs: d.runningMs } : {}),
      ...(d?.logFile ? { logFile: d.logFile } : {}),
      ...(d?.logTail ? { logTail: d.logTail } : {}),
      error,
    };
  });
}
