/**
 * Whether a request fits a node: statically (on the empty node: labels, GPU model and memory,
 * capacity; and why it fits no node at all), and now (given what is free, in a cycle's
 * `NodeState` or in a node's `NodeUsage`). Also the GPU shares a fit would take.
 *
 * Invariants: a whole GPU goes only to a device with nothing on it; a share of a GPU goes only
 * where the device's milli-GPU and memory stay within capacity; CPU and memory never exceed the
 * node's capacity.
 */
import type { NodeState } from './cluster';
import type { NodeUsage } from './node-usage';
import { formatCpu, formatGpu, formatMemory } from './quantity';
import { isFractional, wholeGpus } from './resources';
import { shapeKey } from './shape';
import type { GpuDevice, GpuShare, NodeSpec, ResourceRequest } from './types';

/** True when the device can serve the request's model and memory constraints. */
export function gpuMatches(device: GpuDevice, request: ResourceRequest): boolean {
  if (request.gpuModels.length > 0 && !request.gpuModels.includes(device.model)) return false;
  return device.memoryMiB >= request.gpuMemoryMiB;
}

/** True when the node's labels satisfy the request's selector. */
export function labelsMatch(node: NodeSpec, request: ResourceRequest): boolean {
  for (const [k, v] of Object.entries(request.labels)) if (node.labels[k] !== v) return false;
  return true;
}

/** `copiesWhenEmpty` so far, per inventory and shape: inventories are replaced, never changed. */
const copiesMemo = new WeakMap<NodeSpec, Map<string, number>>();

/** How many copies of the request an empty node could hold at once (0: never fits there). */
export function copiesWhenEmpty(spec: NodeSpec, r: ResourceRequest): number {
  let byShape = copiesMemo.get(spec);
  if (!byShape) copiesMemo.set(spec, (byShape = new Map()));
  const key = shapeKey(r);
  let copies = byShape.get(key);
  if (copies === undefined) byShape.set(key, (copies = countCopiesWhenEmpty(spec, r)));
  return copies;
}

function countCopiesWhenEmpty(spec: NodeSpec, r: ResourceRequest): number {
  if (!labelsMatch(spec, r)) return 0;
  let copies = Number.MAX_SAFE_INTEGER;
  const limit = (capacity: number, need: number): void => {
    if (need > 0) copies = Math.min(copies, Math.floor(capacity / need));
  };
  limit(spec.cpuMilli, r.cpuMilli);
  limit(spec.memoryMiB, r.memoryMiB);
  for (const [k, v] of Object.entries(r.custom ?? {})) limit(spec.custom?.[k] ?? 0, v);
  if (r.gpuMilli > 0) {
    const eligible = spec.gpus.filter((d) => gpuMatches(d, r));
    if (isFractional(r)) {
      let shares = 0;
      for (const d of eligible) {
        const byMemory = r.gpuMemoryMiB > 0 ? Math.floor(d.memoryMiB / r.gpuMemoryMiB) : Number.MAX_SAFE_INTEGER;
        shares += Math.min(Math.floor(1000 / r.gpuMilli), byMemory);
      }
      copies = Math.min(copies, shares);
    } else limit(eligible.length, wholeGpus(r));
  }
  return copies === Number.MAX_SAFE_INTEGER ? 1 : copies;
}

/** Cheap test of whether the node has room for the request now (GPU devices checked too). */
export function fitsNow(n: NodeState, r: ResourceRequest): boolean {
  if (!n.ready) return false;
  if (n.freeCpuMilli < r.cpuMilli || n.freeMemoryMiB < r.memoryMiB) return false;
  if (r.custom) for (const [k, v] of Object.entries(r.custom)) if ((n.customFree[k] ?? 0) < v) return false;
  if (r.gpuMilli === 0) return true;
  const fractional = isFractional(r);
  const need = fractional ? 1 : wholeGpus(r);
  let found = 0;
  for (let i = 0; i < n.spec.gpus.length && found < need; i++) {
    if (deviceTakes(n, i, r, fractional)) found++;
  }
  return found >= need;
}

/** Whether device `i` of the node can take (its share of) the request now. */
export function deviceTakes(n: NodeState, i: number, r: ResourceRequest, fractional = isFractional(r)): boolean {
  const d = n.spec.gpus[i];
  if (!d || !gpuMatches(d, r)) return false;
  const free = n.gpuFree[i] ?? 0;
  const memFree = n.gpuMemoryFree[i] ?? 0;
  if (fractional) return free >= r.gpuMilli && memFree >= r.gpuMemoryMiB;
  return free === 1000 && memFree === d.memoryMiB;
}

/** The whole GPUs a request takes on a node: the lowest free eligible indices. Assumes `fitsNow`. */
export function wholeGpuShares(n: NodeState, r: ResourceRequest): GpuShare[] {
  const need = wholeGpus(r);
  const out: GpuShare[] = [];
  for (const i of n.byIndex) {
    if (out.length === need) break;
    if (deviceTakes(n, i, r, false)) {
      const d = n.spec.gpus[i];
      if (d) out.push({ index: d.index, milli: 1000, memoryMiB: d.memoryMiB });
    }
  }
  return out;
}

/** Positions of the devices that could take a share of one GPU now, one per distinct device state. */
export function shareCandidates(n: NodeState, r: ResourceRequest): number[] {
  const seen = new Set<string>();
  const out: number[] = [];
  for (let i = 0; i < n.spec.gpus.length; i++) {
    if (!deviceTakes(n, i, r, true)) continue;
    const key = `${n.spec.gpus[i]?.model}|${n.gpuFree[i]}|${n.gpuMemoryFree[i]}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(i);
  }
  return out;
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
