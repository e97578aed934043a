/**
 * Whether a request fits a node: statically (on the empty node: labels, GPU model and memory,
 * capacity) and now (given what is free). Also the GPU shares a fit would take.
 *
 * Invariants: a whole GPU goes only to a device with nothing on it; a share of a GPU goes only
 * where the device's milli-GPU and memory stay within capacity.
 */
import type { NodeState } from './cluster';
import { isFractional, wholeGpus } from './resources';
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

/**
 * Keys computed so far, per request object: a queue is scheduled again and again, and one string
 * per request (with its hash cached by the engine) is cheaper than building and hashing a new one
 * each cycle. Requests are never changed once parsed.
 */
const shapeKeys = new WeakMap<ResourceRequest, string>();

/** Distinct keys kept by `intern`; past this many it starts afresh (equal keys stay equal text). */
const INTERN_LIMIT = 50_000;
const interned = new Map<string, string>();

/**
 * One string object per distinct key text. Maps keyed by interned keys find them by identity
 * instead of comparing text (keys built by concatenation are compared character by character).
 */
export function intern(key: string): string {
  const known = interned.get(key);
  if (known !== undefined) return known;
  if (interned.size >= INTERN_LIMIT) interned.clear();
  interned.set(key, key);
  return key;
}

/** A key equal for requests that place the same way (same shape and constraints). */
export function shapeKey(r: ResourceRequest): string {
  let key = shapeKeys.get(r);
  if (key === undefined) {
    const labels = Object.keys(r.labels).length > 0 ? JSON.stringify(r.labels) : '';
    const custom = r.custom ? JSON.stringify(r.custom) : '';
    key = intern(
      `${r.cpuMilli}|${r.memoryMiB}|${r.gpuMilli}|${r.gpuMemoryMiB}|${JSON.stringify(r.gpuModels)}|${labels}|${custom}`,
    );
    shapeKeys.set(r, key);
  }
  return key;
}

/** A key equal for requests with the same static constraints (labels, GPU model and memory). */
export function constraintKey(r: ResourceRequest): string {
  const labels = Object.keys(r.labels).length > 0 ? JSON.stringify(r.labels) : '';
  return `${r.gpuMemoryMiB}|${JSON.stringify(r.gpuModels)}|${labels}`;
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
