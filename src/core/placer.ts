/**
 * Placement policies over a `ClusterState`: where one copy of a request goes, and gangs (all copies
 * or none). Two policies:
 * - `fragmentation-aware` (the default): the node and GPU whose expected fragmentation grows the
 *   least under the workload (see `fragmentation.ts`), scored in whole points as FGD's scheduler
 *   plugin does (`fgdPoints`), then as best-fit;
 * - `best-fit`: the node left with the least free resources, as the FGD paper's baseline scores it:
 *   half its free CPU plus half its free GPU after placement, each as a share of the largest node's
 *   capacity; then the fewest free whole GPUs.
 * Every order ends with the node id, so the choice is deterministic. A share of a GPU goes, under
 * best-fit, to the fullest device that still has room.
 */
import type { ClusterState, NodeState } from './cluster';
import { allocationOf, freeGpuMilli, freeWholeGpus } from './cluster';
import { copiesWhenEmpty, fitsNow, shapeKey, shareCandidates, wholeGpuShares } from './fit';
import type { FragmentationModel } from './fragmentation';
import type { Placement } from './placement';
import { isFractional } from './resources';
import type { GpuShare, NodeSpec, ResourceRequest } from './types';

/**
 * How `fragmentation-aware` compares placements: in FGD's whole points (the default), or by the
 * exact change in fragmentation (how pools decided before; kept for their recorded histories).
 */
export type FgdScoring = 'points' | 'exact';

/** A placement policy's name. */
export type PlacementPolicyName = 'fragmentation-aware' | 'best-fit';

/** The placement policies, default first. */
export const PLACEMENT_POLICIES: readonly PlacementPolicyName[] = ['fragmentation-aware', 'best-fit'];

interface Scored {
  gpus: GpuShare[];
  key: number[];
}

/** A node where a shape fits now, and how well. */
interface Ranked {
  node: NodeState;
  scored: Scored;
}

/** Best first: by score, then node id. */
function byRank(a: Ranked, b: Ranked): number {
  const c = compare(a.scored.key, b.scored.key);
  if (c !== 0) return c;
  const x = a.node.spec.id;
  const y = b.node.spec.id;
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Changes the cluster log holds before rankings are built anew. */
const MAX_CHANGE_LOG = 50_000;

/** Node states whose scores a shape keeps. */
const MAX_STATE_SCORES = 100_000;

/** The GPUs of each inventory as a key: index, model and memory, in device order. */
const deviceKeys = new WeakMap<NodeSpec, string>();

/** Each node state's key, as of its version: every shape's ranking asks for it. */
const stateKeys = new WeakMap<NodeState, { version: number; key: string }>();

/** Everything a score depends on: the devices, and what is free on them and on the node. */
function stateKey(n: NodeState): string {
  const known = stateKeys.get(n);
  if (known && known.version === n.version) return known.key;
  let devices = deviceKeys.get(n.spec);
  if (devices === undefined) {
    devices = n.spec.gpus.map((d) => `${d.index}:${d.model}:${d.memoryMiB}`).join(',');
    deviceKeys.set(n.spec, devices);
  }
  const key = `${devices}|${n.freeCpuMilli}|${n.freeMemoryMiB}|${n.gpuFree.join(',')}|${n.gpuMemoryFree.join(',')}`;
  stateKeys.set(n, { version: n.version, key });
  return key;
}

const EPSILON = 1e-9;

/** Chooses nodes and GPUs for requests on one cluster view. */
export class Placer {
  private readonly eligible = new Map<string, NodeState[]>();
  private readonly scale: Scale;
  private readonly fragmentation = new WeakMap<NodeState, { version: number; value: number }>();
  /** Per shape: scores by node state (`stateKey`). */
  private readonly stateScores = new Map<string, Map<string, Scored>>();
  /** Per shape: where it fits now, best first, and how far into the cluster's change log. */
  private readonly rankings = new Map<string, { nodes: Ranked[]; seen: number }>();

  constructor(
    readonly cluster: ClusterState,
    readonly policy: PlacementPolicyName,
    /** The expected workload; required by `fragmentation-aware`, which falls back to best-fit without it. */
    readonly model?: FragmentationModel,
    readonly scoring: FgdScoring = 'points',
  ) {
    let cpu = 1;
    let gpu = 1;
    for (const n of cluster.nodes) {
      cpu = Math.max(cpu, n.spec.cpuMilli);
      gpu = Math.max(gpu, n.spec.gpus.length * 1000);
    }
    this.scale = { cpu, gpu };
  }

  /** Nodes (ready or not) that could hold one copy of the request if they were empty. */
  eligibleNodes(r: ResourceRequest, key = shapeKey(r)): NodeState[] {
    let list = this.eligible.get(key);
    if (!list) {
      list = this.cluster.nodes.filter((n) => copiesWhenEmpty(n.spec, r) > 0);
      this.eligible.set(key, list);
    }
    return list;
  }

  /** How many copies the empty cluster could hold at once (for gangs' feasibility). */
  copiesWhenEmpty(r: ResourceRequest): number {
    let sum = 0;
    for (const n of this.eligibleNodes(r)) sum += copiesWhenEmpty(n.spec, r);
    return sum;
  }

  /** The best place for one copy of the request now, or `undefined`. Does not allocate. */
  placeOne(r: ResourceRequest, key = shapeKey(r)): Placement | undefined {
    const best = this.ranking(r, key)[0];
    // Scores are shared between nodes in the same state: the placement gets its own shares.
    return best && { nodeId: best.node.spec.id, gpus: best.scored.gpus.map((g) => ({ ...g })) };
  }

  /**
   * The nodes where one copy of the shape fits now, best first. Kept per shape across calls:
   * only the nodes changed since (from the cluster's change log) are placed again.
   */
  private ranking(r: ResourceRequest, key: string): Ranked[] {
    const log = this.cluster.changeLog();
    if (log.length > MAX_CHANGE_LOG) {
      // Rankings are cheaper to build again than a long log is to keep.
      log.length = 0;
      this.rankings.clear();
    }
    let ranking = this.rankings.get(key);
    if (!ranking) {
      const nodes: Ranked[] = [];
      for (const n of this.eligibleNodes(r, key))
        if (fitsNow(n, r)) nodes.push({ node: n, scored: this.score(n, r, key) });
      nodes.sort(byRank);
      this.rankings.set(key, (ranking = { nodes, seen: log.length }));
      return nodes;
    }
    if (ranking.seen < log.length) {
      const changed = new Set(log.slice(ranking.seen));
      ranking.seen = log.length;
      const nodes = ranking.nodes.filter((e) => !changed.has(e.node));
      for (const n of changed) {
        if (copiesWhenEmpty(n.spec, r) === 0 || !fitsNow(n, r)) continue;
        const entry: Ranked = { node: n, scored: this.score(n, r, key) };
        let lo = 0;
        let hi = nodes.length;
        while (lo < hi) {
          const mid = (lo + hi) >>> 1;
          if (byRank(nodes[mid] as Ranked, entry) < 0) lo = mid + 1;
          else hi = mid;
        }
        nodes.splice(lo, 0, entry);
      }
      ranking.nodes = nodes;
    }
    return ranking.nodes;
  }

  /**
   * GPUs for one copy on this node state now (best-fit within the node), or `undefined`. Does not
   * allocate; the state may be a scratch copy apart from the cluster.
   */
  placeOnState(n: NodeState, r: ResourceRequest): Placement | undefined {
    if (!fitsNow(n, r)) return undefined;
    return { nodeId: n.spec.id, gpus: scoreBestFit(n, r, this.scale).gpus };
  }

  /**
   * Places `replicas` copies, all or none. On success the copies are allocated in the cluster and
   * returned; on failure the cluster is left as it was.
   */
  placeGang(r: ResourceRequest, replicas: number): Placement[] | undefined {
    const key = shapeKey(r);
    const placed: Placement[] = [];
    for (let i = 0; i < replicas; i++) {
      const p = this.placeOne(r, key);
      if (!p) {
        for (const q of placed) this.cluster.release(allocationOf(q.nodeId, r, q.gpus));
        return undefined;
      }
      this.cluster.allocate(allocationOf(p.nodeId, r, p.gpus));
      placed.push(p);
    }
    return placed;
  }

  private score(n: NodeState, r: ResourceRequest, key: string): Scored {
    // Nodes of one kind in the same state score alike: a cluster has many of them.
    let byState = this.stateScores.get(key);
    if (!byState) this.stateScores.set(key, (byState = new Map()));
    else if (byState.size > MAX_STATE_SCORES) byState.clear();
    const state = stateKey(n);
    let scored = byState.get(state);
    if (!scored) {
      scored =
        this.policy === 'fragmentation-aware' && this.model ? this.scoreFgd(n, r) : scoreBestFit(n, r, this.scale);
      byState.set(state, scored);
    }
    return scored;
  }

  private scoreFgd(n: NodeState, r: ResourceRequest): Scored {
    const model = this.model as FragmentationModel;
    let cached = this.fragmentation.get(n);
    if (!cached || cached.version !== n.version) {
      cached = { version: n.version, value: model.fragmentation(n) };
      this.fragmentation.set(n, cached);
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
      const delta = model.fragmentation(n, after, cpuAfter, memAfter) - before;
      // Ties (equal points): the node best-fit prefers, then the fullest device (shares pack,
      // whole GPUs stay free).
      let deviceFreeAfter = 0;
      for (const g of gpus) deviceFreeAfter += after[n.positionOf.get(g.index) ?? 0] ?? 0;
      const score = this.scoring === 'points' ? -fgdPoints(delta) : delta;
      const scored: Scored = { gpus, key: [score, bestFitKey(n, r, gpus, this.scale)[0] ?? 0, deviceFreeAfter] };
      if (!best || compare(scored.key, best.key) < 0) best = scored;
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

/** The largest node's CPU and GPU capacity, which best-fit scores relate to. */
interface Scale {
  cpu: number;
  gpu: number;
}

function scoreBestFit(n: NodeState, r: ResourceRequest, scale: Scale): Scored {
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

function bestFitKey(n: NodeState, r: ResourceRequest, gpus: readonly GpuShare[], scale: Scale): number[] {
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

function compare(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (Math.abs(d) > EPSILON) return d;
  }
  return 0;
}
