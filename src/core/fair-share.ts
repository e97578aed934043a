/**
 * Dominant resource fairness (Ghodsi et al., NSDI '11): a team's share is the largest fraction of
 * the cluster's capacity it uses of any one resource (GPU, CPU, memory, custom). Teams with smaller
 * shares go first when fair share is on.
 */
import type { ResourceVector } from './quota';
import { leaseVector } from './quota';
import type { Lease, NodeSpec } from './types';

/** The cluster's capacity per resource. */
export function clusterCapacity(nodes: readonly NodeSpec[]): ResourceVector {
  const cap: ResourceVector = { gpu: 0, cpu: 0, memory: 0 };
  for (const n of nodes) {
    cap.gpu = (cap.gpu ?? 0) + n.gpus.length * 1000;
    cap.cpu = (cap.cpu ?? 0) + n.cpuMilli;
    cap.memory = (cap.memory ?? 0) + n.memoryMiB;
    for (const [k, v] of Object.entries(n.custom ?? {})) cap[k] = (cap[k] ?? 0) + v;
  }
  return cap;
}

/** A usage vector's dominant share of the capacity, 0..1 (resources with no capacity are ignored). */
export function dominantShare(usage: ResourceVector, capacity: ResourceVector): number {
  let share = 0;
  for (const [k, used] of Object.entries(usage)) {
    const cap = capacity[k] ?? 0;
    if (cap > 0) share = Math.max(share, used / cap);
  }
  return share;
}

/** Each team's dominant share, from the leases it holds. */
export function teamShares(leases: readonly Lease[], capacity: ResourceVector): Map<string, number> {
  const usage = new Map<string, ResourceVector>();
  for (const l of leases) {
    let u = usage.get(l.team);
    if (!u) usage.set(l.team, (u = {}));
    for (const [k, v] of Object.entries(leaseVector(l))) u[k] = (u[k] ?? 0) + v;
  }
  return new Map([...usage].map(([team, u]) => [team, dominantShare(u, capacity)]));
}
