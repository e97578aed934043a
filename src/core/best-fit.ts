/**
 * The best-fit score of a placement, as the FGD paper's baseline scores it: the node left with the
 * least free resources, half its free CPU plus half its free GPU after placement, each as a share
 * of the largest node's capacity; then the fewest free whole GPUs. A share of a GPU goes to the
 * fullest device that still has room. Scores are keys compared element by element, smaller first.
 */
import type { NodeState } from './cluster';
import { freeGpuMilli, freeWholeGpus } from './cluster';
import { shareCandidates, wholeGpuShares } from './fit';
import { isFractional } from './resources';
import type { GpuShare, ResourceRequest } from './types';

/** GPUs for one copy on a node, and how good a choice they are (a smaller key is better). */
export interface Scored {
  gpus: GpuShare[];
  key: number[];
}

/** The largest node's CPU (milli) and GPU (milli) capacity, which best-fit scores relate to. */
export interface Scale {
  cpu: number;
  gpu: number;
}

/** The scale of a cluster: its largest node's CPU and GPU capacity (at least 1 each). */
export function scaleOf(nodes: readonly NodeState[]): Scale {
  let cpu = 1;
  let gpu = 1;
  for (const n of nodes) {
    cpu = Math.max(cpu, n.spec.cpuMilli);
    gpu = Math.max(gpu, n.spec.gpus.length * 1000);
  }
  return { cpu, gpu };
}

/** Best-fit's GPUs and score for one copy on a node where it fits now. */
export function scoreBestFit(n: NodeState, r: ResourceRequest, scale: Scale): Scored {
  let gpus: GpuShare[] = [];
  if (isFractional(r)) {
    // The fullest device that still has room: shares pack onto partly used GPUs.
    let bestPos = -1;
    for (const i of shareCandidates(n, r)) {
      if (bestPos < 0 || (n.gpuFree[i] ?? 0) < (n.gpuFree[bestPos] ?? 0)) bestPos = i;
    }
    if (bestPos >= 0)
      gpus = [{ index: n.spec.gpus[bestPos]?.index ?? bestPos, milli: r.gpuMilli, memoryMiB: r.gpuMemoryMiB }];
  } else if (r.gpuMilli > 0) gpus = wholeGpuShares(n, r);
  return { gpus, key: bestFitKey(n, r, gpus, scale) };
}

/** Best-fit's key for these GPUs on a node: what is left free, then the free whole GPUs left. */
export function bestFitKey(n: NodeState, r: ResourceRequest, gpus: readonly GpuShare[], scale: Scale): number[] {
  let wholeTaken = 0;
  let milli = 0;
  for (const g of gpus) {
    milli += g.milli;
    const p = n.positionOf.get(g.index);
    if (p !== undefined && n.gpuFree[p] === 1000) wholeTaken++;
  }
  const left = (0.5 * (n.freeCpuMilli - r.cpuMilli)) / scale.cpu + (0.5 * (freeGpuMilli(n) - milli)) / scale.gpu;
  return [left, freeWholeGpus(n) - wholeTaken];
}

/** Differences smaller than this are ties. */
const EPSILON = 1e-9;

/** Compares score keys element by element (a missing element counts as 0); negative: `a` is better. */
export function compareScores(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (Math.abs(d) > EPSILON) return d;
  }
  return 0;
}
