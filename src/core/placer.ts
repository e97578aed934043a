/**
 * Where requests go on one `ClusterState`: one copy, or every copy of a gang (all or none), each
 * on its own node (`spread`) or wherever it fits best (`pack`). Two
 * policies score a copy on each node where it fits now:
 * - `fragmentation-aware` (the default): FGD's score (see `fragmentation.ts`);
 * - `best-fit`: the node left with the least free resources (see `best-fit.ts`).
 * The placer ranks the nodes by score, then by node id, so the choice is deterministic, and keeps
 * each shape's ranking current as the cluster changes.
 */
import type { Scale, Scored } from './best-fit';
import { compareScores, scaleOf, scoreBestFit } from './best-fit';
import type { ClusterState, NodeState } from './cluster';
import { allocationOf } from './cluster';
import { copiesWhenEmpty, fitsNow } from './fit';
import type { FragmentationModel } from './fragmentation';
import { shapeKey } from './shape';
import type { GpuShare, NodeSpec, ReplicaPlacement, ResourceRequest } from './types';

/** A chosen node and the GPU shares on it. */
export interface Placement {
  nodeId: string;
  gpus: GpuShare[];
}

/** A placement policy's name. */
export type PlacementPolicyName = 'fragmentation-aware' | 'best-fit';

/** The placement policies, default first. */
export const PLACEMENT_POLICIES: readonly PlacementPolicyName[] = ['fragmentation-aware', 'best-fit'];

/** A node where a shape fits now, and how well. */
interface Ranked {
  node: NodeState;
  scored: Scored;
}

/** Best first: by score, then node id. */
function byRank(a: Ranked, b: Ranked): number {
  const c = compareScores(a.scored.key, b.scored.key);
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

/** Chooses nodes and GPUs for requests on one cluster view. */
export class Placer {
  private readonly eligible = new Map<string, NodeState[]>();
  private readonly scale: Scale;
  /** Per shape: scores by node state (`stateKey`). */
  private readonly stateScores = new Map<string, Map<string, Scored>>();
  /** Per shape: where it fits now, best first, and how far into the cluster's change log. */
  private readonly rankings = new Map<string, { nodes: Ranked[]; seen: number }>();

  constructor(
    readonly cluster: ClusterState,
    readonly policy: PlacementPolicyName,
    /** The expected workload; required by `fragmentation-aware`, which falls back to best-fit without it. */
    readonly model?: FragmentationModel,
  ) {
    this.scale = scaleOf(cluster.nodes);
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

  /** How many copies the empty cluster could hold at once (for gangs' feasibility); spread, one per node. */
  copiesWhenEmpty(r: ResourceRequest, placement: ReplicaPlacement): number {
    const nodes = this.eligibleNodes(r);
    if (placement === 'spread') return nodes.length;
    let sum = 0;
    for (const n of nodes) sum += copiesWhenEmpty(n.spec, r);
    return sum;
  }

  /**
   * The best place for one copy of the request now, or `undefined`; `skip` names nodes it may not
   * use. Does not allocate.
   */
  placeOne(r: ResourceRequest, key = shapeKey(r), skip?: ReadonlySet<string>): Placement | undefined {
    const ranking = this.ranking(r, key);
    const best = skip && skip.size > 0 ? ranking.find((e) => !skip.has(e.node.spec.id)) : ranking[0];
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
   * Places `replicas` copies, all or none: with `spread` each on a node of its own (the best one
   * the gang has not used yet), with `pack` each wherever it fits best. On success the copies are
   * allocated in the cluster and returned; on failure the cluster is left as it was.
   */
  placeGang(r: ResourceRequest, replicas: number, placement: ReplicaPlacement): Placement[] | undefined {
    const key = shapeKey(r);
    const placed: Placement[] = [];
    const used = placement === 'spread' ? new Set<string>() : undefined;
    for (let i = 0; i < replicas; i++) {
      const p = this.placeOne(r, key, used);
      if (!p) {
        for (const q of placed) this.cluster.release(allocationOf(q.nodeId, r, q.gpus));
        return undefined;
      }
      this.cluster.allocate(allocationOf(p.nodeId, r, p.gpus));
      placed.push(p);
      used?.add(p.nodeId);
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
        this.policy === 'fragmentation-aware' && this.model
          ? this.model.score(n, r, this.scale)
          : scoreBestFit(n, r, this.scale);
      byState.set(state, scored);
    }
    return scored;
  }
}
