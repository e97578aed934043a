/**
 * Packing mode: the experiment of the FGD paper (Weng et al., USENIX ATC '23). Tasks arrive in
 * trace order (starting over at the top when the trace runs out) and never leave; each is placed
 * at once or fails. Arrival stops when the GPUs requested reach the cluster's capacity. At 70, 80,
 * 90 and 100% of capacity requested, the share of GPU capacity left unallocated is recorded.
 */
import type { NodeSpec, PlacementPolicyName, ResourceRequest } from '../core';
import { ClusterState, FragmentationModel, Placer, allocationOf, shapeKey } from '../core';

/** Where packing mode measures, as shares of GPU capacity requested. */
export const PACKING_ARRIVALS = [0.7, 0.8, 0.9, 1.0] as const;

/** One policy's outcome. */
export interface PackingResult {
  policy: PlacementPolicyName;
  arrived: number[];
  /** Share of GPU capacity unallocated at each arrival level, 0..1. */
  unallocatedGpuShare: number[];
  /** Tasks that arrived, were placed, and failed to place. */
  tasks: { arrived: number; placed: number; failed: number };
}

/** Runs packing mode for one placement policy. */
export function runPacking(
  nodes: readonly NodeSpec[],
  tasks: readonly ResourceRequest[],
  policy: PlacementPolicyName,
  arrivals: readonly number[] = PACKING_ARRIVALS,
): PackingResult {
  const cluster = new ClusterState(nodes.map((spec) => ({ spec, status: 'Ready' as const, registeredAt: 0 })));
  const model = policy === 'fragmentation-aware' ? FragmentationModel.fromRequests(tasks, 1) : undefined;
  const placer = new Placer(cluster, policy, model);
  const capacity = nodes.reduce((s, n) => s + n.gpus.length * 1000, 0);
  const keys = tasks.map(shapeKey);
  const result: PackingResult = {
    policy,
    arrived: [...arrivals],
    unallocatedGpuShare: [],
    tasks: { arrived: 0, placed: 0, failed: 0 },
  };
  if (capacity === 0 || !tasks.some((t) => t.gpuMilli > 0)) return result;
  let requested = 0;
  let allocated = 0;
  let next = 0;
  for (let i = 0; next < arrivals.length; i++) {
    const k = i % tasks.length;
    const task = tasks[k] as ResourceRequest;
    requested += task.gpuMilli;
    result.tasks.arrived++;
    const p = placer.placeOne(task, keys[k]);
    if (p) {
      cluster.allocate(allocationOf(p.nodeId, task, p.gpus));
      allocated += task.gpuMilli;
      result.tasks.placed++;
    } else result.tasks.failed++;
    while (next < arrivals.length && requested >= (arrivals[next] ?? 1) * capacity) {
      result.unallocatedGpuShare.push((capacity - allocated) / capacity);
      next++;
    }
  }
  return result;
}
