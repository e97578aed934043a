/**
 * What is in use on each node, summed from its leases: the static picture that status reports and
 * node templates are checked against (a scheduling cycle uses the mutable `ClusterState` instead).
 */
import type { Lease } from './types';

/** What is in use on a node, derived from its leases. */
export interface NodeUsage {
  cpuMilli: number;
  memoryMiB: number;
  /** Milli-GPU in use per GPU index. */
  gpuMilli: Record<number, number>;
  /** GPU memory in use per GPU index (MiB). */
  gpuMemoryMiB: Record<number, number>;
}

/** An empty usage record. */
export function emptyUsage(): NodeUsage {
  return { cpuMilli: 0, memoryMiB: 0, gpuMilli: {}, gpuMemoryMiB: {} };
}

/** Adds a lease's resources to a usage record, in place. */
function addLease(usage: NodeUsage, lease: Pick<Lease, 'cpuMilli' | 'memoryMiB' | 'gpus'>): void {
  usage.cpuMilli += lease.cpuMilli;
  usage.memoryMiB += lease.memoryMiB;
  for (const g of lease.gpus) {
    usage.gpuMilli[g.index] = (usage.gpuMilli[g.index] ?? 0) + g.milli;
    usage.gpuMemoryMiB[g.index] = (usage.gpuMemoryMiB[g.index] ?? 0) + g.memoryMiB;
  }
}

/** Usage per node id, from a list of leases. */
export function usageByNode(leases: readonly Lease[]): Map<string, NodeUsage> {
  const usage = new Map<string, NodeUsage>();
  for (const lease of leases) {
    let u = usage.get(lease.nodeId);
    if (!u) usage.set(lease.nodeId, (u = emptyUsage()));
    addLease(u, lease);
  }
  return usage;
}
