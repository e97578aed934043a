/**
 * A mutable view of what is free on each node, built from a snapshot's nodes and leases. Placement
 * policies read it; a scheduling cycle (or the simulator's packing mode) allocates into it and
 * releases from it as it goes.
 *
 * Invariant: `allocate` followed by `release` of the same allocation restores the node exactly.
 */
import type { GpuShare, Lease, NodeRecord, NodeSpec, ResourceRequest } from './types';

/** Free capacity of one node. */
export interface NodeState {
  spec: NodeSpec;
  /** Whether new work may be placed here (status `Ready`). */
  ready: boolean;
  freeCpuMilli: number;
  freeMemoryMiB: number;
  /** Free milli-GPU per device, in the order of `spec.gpus`. */
  gpuFree: number[];
  /** Free GPU memory (MiB) per device, in the order of `spec.gpus`. */
  gpuMemoryFree: number[];
  /** Free custom resources by name. */
  customFree: Record<string, number>;
  /** Incremented on every change; caches of scores key on it. */
  version: number;
  /** Position in `spec.gpus` of each GPU index. */
  positionOf: Map<number, number>;
  /** Positions in `spec.gpus`, by ascending GPU index. */
  byIndex: number[];
}

/** Resources taken by one allocation on one node. */
export interface Allocation {
  nodeId: string;
  cpuMilli: number;
  memoryMiB: number;
  gpus: readonly GpuShare[];
  custom?: Readonly<Record<string, number>>;
}

/** The free capacity of every node, by id. */
export class ClusterState {
  readonly nodes: NodeState[];
  private readonly byId = new Map<string, NodeState>();

  constructor(records: readonly NodeRecord[]) {
    this.nodes = records.map((r) => {
      const state: NodeState = {
        spec: r.spec,
        ready: r.status === 'Ready',
        freeCpuMilli: r.spec.cpuMilli,
        freeMemoryMiB: r.spec.memoryMiB,
        gpuFree: r.spec.gpus.map(() => 1000),
        gpuMemoryFree: r.spec.gpus.map((d) => d.memoryMiB),
        customFree: { ...(r.spec.custom ?? {}) },
        version: 0,
        positionOf: new Map(r.spec.gpus.map((d, i) => [d.index, i])),
        byIndex: r.spec.gpus
          .map((d, i) => ({ index: d.index, i }))
          .sort((a, b) => a.index - b.index)
          .map((x) => x.i),
      };
      this.byId.set(r.spec.id, state);
      return state;
    });
  }

  /** A cluster view with these leases already allocated (leases on unknown nodes are ignored). */
  static from(records: readonly NodeRecord[], leases: readonly Lease[]): ClusterState {
    const cluster = new ClusterState(records);
    for (const lease of leases) cluster.allocate(lease);
    return cluster;
  }

  /** The node with this id, if known. */
  node(id: string): NodeState | undefined {
    return this.byId.get(id);
  }

  /** Takes an allocation's resources from its node. */
  allocate(a: Allocation): void {
    this.apply(a, -1);
  }

  /** Gives an allocation's resources back to its node. */
  release(a: Allocation): void {
    this.apply(a, 1);
  }

  /**
   * Every node changed since the first call, in order and with repeats: placement keeps its
   * rankings of nodes current from it. Whoever reads it may empty it, and must then forget what
   * it read before.
   */
  changeLog(): NodeState[] {
    return (this.changes ??= []);
  }

  private changes: NodeState[] | undefined;

  /** Sets a node's free capacity by hand (`set` writes the fields), as a change like any other. */
  overwrite(nodeId: string, set: (n: NodeState) => void): void {
    const n = this.byId.get(nodeId);
    if (!n) return;
    set(n);
    n.version++;
    this.changes?.push(n);
  }

  private apply(a: Allocation, sign: 1 | -1): void {
    const n = this.byId.get(a.nodeId);
    if (!n) return;
    applyAllocation(n, a, sign);
    this.changes?.push(n);
  }
}

/** Takes (sign -1) or gives back (sign 1) an allocation's resources on a node's state. */
export function applyAllocation(n: NodeState, a: Allocation, sign: 1 | -1): void {
  n.freeCpuMilli += sign * a.cpuMilli;
  n.freeMemoryMiB += sign * a.memoryMiB;
  for (const g of a.gpus) {
    const p = n.positionOf.get(g.index);
    if (p === undefined) continue;
    n.gpuFree[p] = (n.gpuFree[p] ?? 0) + sign * g.milli;
    n.gpuMemoryFree[p] = (n.gpuMemoryFree[p] ?? 0) + sign * g.memoryMiB;
  }
  if (a.custom) for (const [k, v] of Object.entries(a.custom)) n.customFree[k] = (n.customFree[k] ?? 0) + sign * v;
  n.version++;
}

/** A copy of a node's state to try changes on, apart from the cluster. */
export function scratchCopy(n: NodeState): NodeState {
  return {
    ...n,
    gpuFree: [...n.gpuFree],
    gpuMemoryFree: [...n.gpuMemoryFree],
    customFree: { ...n.customFree },
  };
}

/** The allocation a request would make on a node with these GPU shares. */
export function allocationOf(nodeId: string, request: ResourceRequest, gpus: readonly GpuShare[]): Allocation {
  const a: Allocation = { nodeId, cpuMilli: request.cpuMilli, memoryMiB: request.memoryMiB, gpus };
  if (request.custom) a.custom = request.custom;
  return a;
}

/** Free whole GPUs on a node: devices with nothing allocated on them. */
export function freeWholeGpus(n: NodeState): number {
  let count = 0;
  for (let i = 0; i < n.gpuFree.length; i++) {
    if (n.gpuFree[i] === 1000 && n.gpuMemoryFree[i] === n.spec.gpus[i]?.memoryMiB) count++;
  }
  return count;
}

/** Total free milli-GPU on a node. */
export function freeGpuMilli(n: NodeState): number {
  let sum = 0;
  for (const f of n.gpuFree) sum += f;
  return sum;
}
