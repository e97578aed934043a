/**
 * Fencing: before a workload starts, the agent checks with its own pool that the launch's lease is
 * current and is exactly what the launch says: granted by this agent's pool, for this node, to this
 * step and request, on these GPUs (whole or the same share), with this CPU and memory. A launch
 * that fails any check is refused as `StaleLease`; one the pool cannot be asked about in time is
 * refused as `FencingUnavailable` (it never runs on a grant nobody could confirm).
 */
import type { Lease } from '../core';
import type { LaunchInput } from '../workflows/step-types';

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

function describeGpus(gpus: readonly { index: number; milli: number }[]): string {
  if (gpus.length === 0) return 'none';
  return gpus.map((g) => (g.milli < 1000 ? `${g.index} (${g.milli / 1000} of it)` : String(g.index))).join(', ');
}
