/**
 * Placement: which node, and which GPUs on it, can take a request right now.
 *
 * Invariants: a whole GPU is placed only on a device with nothing else on it; shares of a GPU are
 * placed only where the device's milli-GPU and memory stay within capacity; CPU and memory never
 * exceed the node's capacity.
 */
import { copiesWhenEmpty, gpuMatches, labelsMatch } from './fit';
import { formatCpu, formatGpu, formatMemory } from './quantity';
import { isFractional, wholeGpus } from './resources';
import type { GpuDevice, GpuShare, Lease, NodeSpec, ResourceRequest } from './types';

export { gpuMatches, labelsMatch } from './fit';

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
export function addLease(usage: NodeUsage, lease: Pick<Lease, 'cpuMilli' | 'memoryMiB' | 'gpus'>): void {
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

/**
 * The GPU shares the request would get on this node given its usage, or `undefined` if it does
 * not fit now. Whole GPUs take the lowest free indices; a share of a GPU goes to the fullest
 * device that still has room (packing), or else to the lowest free one.
 */
export function fitOnNode(node: NodeSpec, usage: NodeUsage, request: ResourceRequest): GpuShare[] | undefined {
  if (!labelsMatch(node, request)) return undefined;
  if (usage.cpuMilli + request.cpuMilli > node.cpuMilli) return undefined;
  if (usage.memoryMiB + request.memoryMiB > node.memoryMiB) return undefined;
  if (request.gpuMilli === 0) return [];
  const eligible = node.gpus.filter((d) => gpuMatches(d, request));
  if (isFractional(request)) {
    let best: GpuDevice | undefined;
    let bestUsed = -1;
    for (const d of eligible) {
      const used = usage.gpuMilli[d.index] ?? 0;
      const memUsed = usage.gpuMemoryMiB[d.index] ?? 0;
      if (used + request.gpuMilli > 1000) continue;
      if (memUsed + request.gpuMemoryMiB > d.memoryMiB) continue;
      if (used > bestUsed) {
        best = d;
        bestUsed = used;
      }
    }
    return best ? [{ index: best.index, milli: request.gpuMilli, memoryMiB: request.gpuMemoryMiB }] : undefined;
  }
  const n = wholeGpus(request);
  const free = eligible.filter((d) => (usage.gpuMilli[d.index] ?? 0) === 0 && (usage.gpuMemoryMiB[d.index] ?? 0) === 0);
  if (free.length < n) return undefined;
  return free
    .sort((a, b) => a.index - b.index)
    .slice(0, n)
    .map((d) => ({ index: d.index, milli: 1000, memoryMiB: d.memoryMiB }));
}

/** A chosen node and the GPU shares on it. */
export interface Placement {
  nodeId: string;
  gpus: GpuShare[];
}

/**
 * Best-fit placement over candidate nodes: the node left with the fewest free GPUs, then the
 * least free CPU, then the smallest id (a total order, so the choice is deterministic).
 */
export function placeBestFit(
  nodes: readonly NodeSpec[],
  usage: ReadonlyMap<string, NodeUsage>,
  request: ResourceRequest,
): Placement | undefined {
  let best: { placement: Placement; key: [number, number, string] } | undefined;
  for (const node of nodes) {
    const u = usage.get(node.id) ?? emptyUsage();
    const gpus = fitOnNode(node, u, request);
    if (!gpus) continue;
    const usedGpus = node.gpus.filter((d) => (u.gpuMilli[d.index] ?? 0) > 0).length;
    const freeGpusAfter = node.gpus.length - usedGpus - gpus.filter((g) => (u.gpuMilli[g.index] ?? 0) === 0).length;
    const freeCpuAfter = node.cpuMilli - u.cpuMilli - request.cpuMilli;
    const key: [number, number, string] = [freeGpusAfter, freeCpuAfter, node.id];
    if (!best || compareKey(key, best.key) < 0) best = { placement: { nodeId: node.id, gpus }, key };
  }
  return best?.placement;
}

function compareKey(a: [number, number, string], b: [number, number, string]): number {
  if (a[0] !== b[0]) return a[0] - b[0];
  if (a[1] !== b[1]) return a[1] - b[1];
  return a[2] < b[2] ? -1 : a[2] > b[2] ? 1 : 0;
}

/**
 * Why a request can never be placed on any of these nodes, even when they are empty; `undefined`
 * when at least one node could hold it. The message names the resource, the amount asked and the
 * largest capacity on offer.
 */
export function unschedulableReason(nodes: readonly NodeSpec[], request: ResourceRequest): string | undefined {
  if (nodes.some((n) => copiesWhenEmpty(n, request) > 0)) return undefined;
  const labelled = nodes.filter((n) => labelsMatch(n, request));
  if (labelled.length === 0) {
    return `no node has labels ${JSON.stringify(request.labels)}`;
  }
  const maxCpu = Math.max(...labelled.map((n) => n.cpuMilli));
  if (request.cpuMilli > maxCpu) {
    return `asked for cpu ${formatCpu(request.cpuMilli)}, but the largest node has cpu ${formatCpu(maxCpu)}`;
  }
  const maxMem = Math.max(...labelled.map((n) => n.memoryMiB));
  if (request.memoryMiB > maxMem) {
    return `asked for memory ${formatMemory(request.memoryMiB)}, but the largest node has memory ${formatMemory(maxMem)}`;
  }
  for (const [name, amount] of Object.entries(request.custom ?? {})) {
    const most = Math.max(...labelled.map((n) => n.custom?.[name] ?? 0));
    if (amount > most) {
      return most === 0
        ? `asked for ${name} ${amount}, but no node offers ${name}`
        : `asked for ${name} ${amount}, but the largest node has ${name} ${most}`;
    }
  }
  const matching = labelled.map((n) => n.gpus.filter((d) => gpuMatches(d, request)).length);
  const maxGpus = Math.max(...matching);
  const constraint = describeGpuConstraint(request);
  if (maxGpus === 0) {
    return `asked for gpu ${formatGpu(request.gpuMilli)}${constraint}, but no node has such a GPU`;
  }
  const need = Math.max(1, wholeGpus(request));
  if (need > maxGpus) {
    return `asked for gpu ${formatGpu(request.gpuMilli)}${constraint}, but the largest node has gpu ${maxGpus}${constraint}`;
  }
  return `asked for ${formatCpu(request.cpuMilli)} cpu, ${formatMemory(request.memoryMiB)} memory and gpu ${formatGpu(request.gpuMilli)}${constraint} together, but no single node has all of them`;
}

function describeGpuConstraint(request: ResourceRequest): string {
  const parts: string[] = [];
  if (request.gpuModels.length > 0) parts.push(`model ${request.gpuModels.join('|')}`);
  if (request.gpuMemoryMiB > 0) parts.push(`at least ${formatMemory(request.gpuMemoryMiB)} each`);
  return parts.length > 0 ? ` (${parts.join(', ')})` : '';
}
