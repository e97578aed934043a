/**
 * Fragmentation-aware placement, after FGD: "Beware of Fragmentation: Scheduling GPU-Sharing
 * Workloads with Fragmentation Gradient Descent" (Weng et al., USENIX ATC '23).
 *
 * A node's fragmentation for a task class is the free GPU capacity that class could not use there:
 * all of it when the class does not fit the node at all (CPU, memory, model or GPUs lacking; and
 * for CPU-only classes, which use no GPU), otherwise the free share of each device too small for
 * one GPU's worth of the class. The node's expected fragmentation weighs the classes by their
 * popularity in the workload. A task goes where its placement increases the expected
 * fragmentation the least, scored in whole points as FGD's scheduler plugin does (`fgdPoints`),
 * then as best-fit.
 */
import type { Scale, Scored } from './best-fit';
import { bestFitKey, compareScores } from './best-fit';
import type { NodeState } from './cluster';
import { shareCandidates, wholeGpuShares } from './fit';
import { isFractional } from './resources';
import { shapeKey } from './shape';
import type { GpuShare, NodeSpec, ResourceRequest } from './types';

/** One kind of task in the expected workload, with its popularity. */
export interface TaskClass {
  cpuMilli: number;
  memoryMiB: number;
  /** Milli-GPU: a share of one GPU (< 1000) or whole GPUs (a multiple of 1000). */
  gpuMilli: number;
  /** Acceptable GPU models; empty means any. */
  gpuModels: string[];
  /** Popularity; weights are normalised to sum to 1. */
  weight: number;
}

/** How many of the most popular task classes describe the workload. @default 0.95 of tasks */
export const DEFAULT_CLASS_COVERAGE = 0.95;

/** The expected workload, and memoised fragmentation of node states under it. */
export class FragmentationModel {
  readonly classes: readonly TaskClass[];
  private readonly memo = new Map<string, number>();
  /** Each node state's fragmentation, as of its version. */
  private readonly byState = new WeakMap<NodeState, { version: number; value: number }>();

  constructor(classes: readonly TaskClass[]) {
    const total = classes.reduce((s, c) => s + c.weight, 0);
    this.classes = total > 0 ? classes.map((c) => ({ ...c, weight: c.weight / total })) : [];
  }

  /**
   * The workload as the most popular request shapes among `requests`, covering `coverage` of them
   * (FGD's "typical pods").
   */
  static fromRequests(requests: Iterable<ResourceRequest>, coverage = DEFAULT_CLASS_COVERAGE): FragmentationModel {
    const counts = new Map<string, TaskClass>();
    let total = 0;
    for (const r of requests) {
      const key = shapeKey(r);
      const c = counts.get(key);
      if (c) c.weight++;
      else
        counts.set(key, {
          cpuMilli: r.cpuMilli,
          memoryMiB: r.memoryMiB,
          gpuMilli: r.gpuMilli,
          gpuModels: r.gpuModels,
          weight: 1,
        });
      total++;
    }
    // Most popular first; ties by shape key so that the choice is deterministic.
    const sorted = [...counts.entries()].sort((a, b) => b[1].weight - a[1].weight || (a[0] < b[0] ? -1 : 1));
    const chosen: TaskClass[] = [];
    let covered = 0;
    for (const [, c] of sorted) {
      if (covered >= coverage * total) break;
      chosen.push(c);
      covered += c.weight;
    }
    return new FragmentationModel(chosen);
  }

  /** Expected fragmentation (milli-GPU) of a node, optionally as if `gpuFree`/CPU/memory were other values. */
  fragmentation(
    n: NodeState,
    gpuFree = n.gpuFree,
    freeCpuMilli = n.freeCpuMilli,
    freeMemoryMiB = n.freeMemoryMiB,
  ): number {
    const { models, uniform, prefix } = modelsOf(n.spec);
    // On a node of one GPU model, the order of the devices does not matter.
    const frees = uniform ? sortedCopy(gpuFree) : gpuFree;
    const key = `${prefix}|${freeCpuMilli}|${freeMemoryMiB}|${frees.join(',')}`;
    const hit = this.memo.get(key);
    if (hit !== undefined) return hit;
    let total = 0;
    for (const c of this.classes)
      total += c.weight * classFragmentation(c, models, gpuFree, freeCpuMilli, freeMemoryMiB);
    if (this.memo.size > 500_000) this.memo.clear();
    this.memo.set(key, total);
    return total;
  }

  /**
   * FGD's GPUs and score for one copy on a node where it fits now: the most points (`fgdPoints`:
   * the least growth in fragmentation), then best-fit's score, then the fullest device (shares
   * pack, whole GPUs stay free).
   */
  score(n: NodeState, r: ResourceRequest, scale: Scale): Scored {
    let cached = this.byState.get(n);
    if (!cached || cached.version !== n.version) {
      cached = { version: n.version, value: this.fragmentation(n) };
      this.byState.set(n, cached);
    }
    const before = cached.value;
    const cpuAfter = n.freeCpuMilli - r.cpuMilli;
    const memAfter = n.freeMemoryMiB - r.memoryMiB;
    const options: GpuShare[][] = isFractional(r)
      ? shareCandidates(n, r).map((i) => [
          { index: n.spec.gpus[i]?.index ?? i, milli: r.gpuMilli, memoryMiB: r.gpuMemoryMiB },
        ])
      : [r.gpuMilli === 0 ? [] : wholeGpuShares(n, r)];
    let best: Scored | undefined;
    for (const gpus of options) {
      const after = [...n.gpuFree];
      for (const g of gpus) {
        const p = n.positionOf.get(g.index);
        if (p !== undefined) after[p] = (after[p] ?? 0) - g.milli;
      }
      const delta = this.fragmentation(n, after, cpuAfter, memAfter) - before;
      let deviceFreeAfter = 0;
      for (const g of gpus) deviceFreeAfter += after[n.positionOf.get(g.index) ?? 0] ?? 0;
      const scored: Scored = { gpus, key: [-fgdPoints(delta), bestFitKey(n, r, gpus, scale)[0] ?? 0, deviceFreeAfter] };
      if (!best || compareScores(scored.key, best.key) < 0) best = scored;
    }
    return best ?? { gpus: [], key: [Infinity] };
  }
}

/**
 * FGD's score of a placement, as the paper's scheduler plugin computes it (the simulator released
 * with Weng et al., ATC '23): the decrease in expected fragmentation, in GPUs, through a sigmoid,
 * as a whole number of the scheduler framework's 0..100 points. Placements whose fragmentation
 * grows by nearly the same amount (about 0.04 GPU apart near zero, more further out) score alike
 * and go to the tie-breaks, so tiny differences (often from the rarest task classes) do not decide.
 */
export function fgdPoints(deltaMilli: number): number {
  // A change of zero up to rounding (the same classes fit before and after) is exactly 50 points.
  const d = Math.abs(deltaMilli) < 1e-6 ? 0 : deltaMilli;
  return Math.trunc(100 / (1 + Math.exp(d / 1000)));
}

/** A node's GPU models, whether they are all one, and their part of a memo key. */
interface NodeModels {
  models: string[];
  uniform: boolean;
  prefix: string;
}

/** GPU models per node inventory: inventories are never changed once registered. */
const nodeModels = new WeakMap<NodeSpec, NodeModels>();

function modelsOf(spec: NodeSpec): NodeModels {
  let m = nodeModels.get(spec);
  if (!m) {
    const models = spec.gpus.map((d) => d.model);
    const uniform = models.every((x) => x === models[0]);
    m = { models, uniform, prefix: uniform ? `${models[0]}*${models.length}` : models.join(',') };
    nodeModels.set(spec, m);
  }
  return m;
}

/** A sorted copy of a short list (a node's devices): insertion sort, without a comparator call per step. */
function sortedCopy(values: readonly number[]): number[] {
  const out = values.slice();
  for (let i = 1; i < out.length; i++) {
    const v = out[i] as number;
    let j = i - 1;
    while (j >= 0 && (out[j] as number) > v) {
      out[j + 1] = out[j] as number;
      j--;
    }
    out[j + 1] = v;
  }
  return out;
}

function classFragmentation(
  c: TaskClass,
  models: readonly string[],
  gpuFree: readonly number[],
  freeCpuMilli: number,
  freeMemoryMiB: number,
): number {
  let left = 0;
  for (const f of gpuFree) left += f;
  if (left === 0) return 0;
  if (c.gpuMilli === 0 || freeCpuMilli < c.cpuMilli || freeMemoryMiB < c.memoryMiB) return left;
  const perGpu = Math.min(c.gpuMilli, 1000);
  const need = c.gpuMilli >= 1000 ? c.gpuMilli / 1000 : 1;
  let usable = 0;
  let fragment = 0;
  for (let i = 0; i < gpuFree.length; i++) {
    const f = gpuFree[i] ?? 0;
    const eligible = c.gpuModels.length === 0 || c.gpuModels.includes(models[i] ?? '');
    if (eligible && f >= perGpu) usable++;
    else fragment += f;
  }
  return usable >= need ? fragment : left;
}
