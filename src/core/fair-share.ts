/**
 * Fair share across teams, after dominant resource fairness (Ghodsi et al., NSDI '11) with
 * progressive filling, and Slurm's fair-share factor for history. Among requests of equal
 * (aged) priority, the team with the smallest share goes first. A team's share is
 *
 *   share(team) = (current(team) + recent(team)) / weight(team)
 *
 * - `current`: the dominant share of its leases: the largest fraction of the cluster's capacity
 *   (GPU, CPU, memory, custom) it holds of any one resource. Within a cycle it grows with every
 *   grant, so when several GPUs free at once, teams with equal shares alternate.
 * - `recent`: the dominant share of its decayed usage (`usage-history.ts`): its resource-seconds,
 *   halved every half-life, over what the cluster could have delivered over the same decayed
 *   window. A team that has used the cluster alone for hours has `recent` near 1, a newcomer 0.
 *   0 when the history is off (half-life 0).
 * - `weight`: set per team (`allot quota set T --weight 2`); 1 unless set.
 */
import { BUILT_IN_RESOURCES, requestVector } from './quota';
import type { QuotaLedger, ResourceVector } from './quota';
import { leaseVector } from './quota';
import type { Lease, NodeSpec, PendingRequest } from './types';
import type { UsageHistory } from './usage-history';

/** A team's weight in fair share: its share is divided by it. */
export interface TeamWeight {
  team: string;
  /** Greater than 0. @default 1 */
  weight: number;
}

/** The cluster's capacity per resource. */
export function clusterCapacity(nodes: readonly NodeSpec[]): ResourceVector {
  const cap: ResourceVector = { gpu: 0, cpu: 0, memory: 0 };
  for (const n of nodes) {
    cap.gpu = (cap.gpu ?? 0) + n.gpus.length * 1000;
    cap.cpu = (cap.cpu ?? 0) + n.cpuMilli;
    cap.memory = (cap.memory ?? 0) + n.memoryMiB;
    for (const [k, v] of Object.entries(n.custom ?? {})) if (!BUILT_IN_RESOURCES.has(k)) cap[k] = (cap[k] ?? 0) + v;
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
  return new Map([...teamAllocations(leases)].map(([team, u]) => [team, dominantShare(u, capacity)]));
}

/** What each team holds now, as resource vectors. */
function teamAllocations(leases: readonly Lease[]): Map<string, ResourceVector> {
  const usage = new Map<string, ResourceVector>();
  for (const l of leases) {
    let u = usage.get(l.team);
    if (!u) usage.set(l.team, (u = {}));
    for (const [k, v] of Object.entries(leaseVector(l))) u[k] = (u[k] ?? 0) + v;
  }
  return usage;
}

/** One team's part in fair share. */
export interface TeamShare {
  team: string;
  /** The share it is ordered by: (current + recent) / weight. */
  share: number;
  /** Dominant share of what it holds now, 0..1. */
  current: number;
  /** Dominant share of its decayed usage, 0..1 (0 without history). */
  recent: number;
  weight: number;
  /** Its decayed usage, unit·s per resource (empty without history). */
  usage: ResourceVector;
}

/**
 * The teams' shares during one cycle: from the leases, the usage history and the weights, raised
 * by each grant (progressive filling).
 */
export class FairShares {
  private readonly capacity: ResourceVector;
  private readonly held: Map<string, ResourceVector>;
  private readonly recent = new Map<string, number>();
  private readonly usage = new Map<string, ResourceVector>();
  private readonly weights = new Map<string, number>();
  private readonly shares = new Map<string, number>();

  constructor(
    leases: readonly Lease[],
    nodes: readonly NodeSpec[],
    history: UsageHistory | undefined,
    weights: readonly TeamWeight[] = [],
  ) {
    this.capacity = clusterCapacity(nodes);
    this.held = teamAllocations(leases);
    for (const w of weights) this.weights.set(w.team, w.weight);
    for (const { team, usage } of history?.teams ?? []) {
      this.usage.set(team, usage);
      this.recent.set(team, dominantShare(usage, history?.capacity ?? {}));
    }
  }

  /** The share a team is ordered by now. */
  shareOf(team: string): number {
    let share = this.shares.get(team);
    if (share === undefined) {
      const current = dominantShare(this.held.get(team) ?? {}, this.capacity);
      share = (current + (this.recent.get(team) ?? 0)) / (this.weights.get(team) ?? 1);
      this.shares.set(team, share);
    }
    return share;
  }

  /** Counts a grant of `vector` to `team`: its share grows at once. */
  granted(team: string, vector: ResourceVector): void {
    let held = this.held.get(team);
    if (!held) this.held.set(team, (held = {}));
    for (const [k, v] of Object.entries(vector)) held[k] = (held[k] ?? 0) + v;
    this.shares.delete(team);
  }

  /** Every team with leases, usage history or a weight, by name. */
  report(): TeamShare[] {
    const names = new Set([...this.held.keys(), ...this.usage.keys(), ...this.weights.keys()]);
    return [...names].sort().map((team) => ({
      team,
      share: this.shareOf(team),
      current: dominantShare(this.held.get(team) ?? {}, this.capacity),
      recent: this.recent.get(team) ?? 0,
      weight: this.weights.get(team) ?? 1,
      usage: this.usage.get(team) ?? {},
    }));
  }
}

/** A request and the keys of its place in line that do not change within a cycle. */
interface Keyed {
  r: PendingRequest;
  /** 0: its team's nominal quota covers it; 1: it would borrow (see `nominalFirst`). */
  borrows: number;
  /** Its priority, aged. */
  priority: number;
}

/**
 * The queue in order with progressive filling. `preemptors` go first as they are. Then, one
 * request at a time, the first of the team heads (each team's first remaining request) by: what
 * its team's nominal quota covers before what would borrow, aged priority, the team's share now,
 * submit time, arrival. `shares` grows as the cycle grants, between one request and the next, so
 * teams with equal shares take turns. `rest` must be in order by aged priority, submit time and
 * arrival within each team.
 */
export function* progressiveOrder(
  preemptors: readonly PendingRequest[],
  rest: readonly PendingRequest[],
  priorityOf: (r: PendingRequest) => number,
  shares: FairShares,
  ledger: QuotaLedger,
): Generator<PendingRequest> {
  yield* preemptors;
  const borrowing = borrowers(rest, ledger);
  const lines = new Map<string, Keyed[]>();
  for (const r of rest) {
    let line = lines.get(r.team);
    if (!line) lines.set(r.team, (line = []));
    line.push({ r, borrows: borrowing.has(r) ? 1 : 0, priority: priorityOf(r) });
  }
  const heads = new Map<string, number>();
  for (const [team, line] of lines) {
    // Stable: within a team, submit time and arrival keep their order.
    line.sort((a, b) => a.borrows - b.borrows || b.priority - a.priority);
    heads.set(team, 0);
  }
  for (;;) {
    let best: Keyed | undefined;
    let bestShare = 0;
    for (const [team, line] of lines) {
      const k = line[heads.get(team) ?? 0];
      if (!k) continue;
      const share = shares.shareOf(team);
      const ahead =
        !best ||
        (k.borrows - best.borrows ||
          best.priority - k.priority ||
          share - bestShare ||
          k.r.submittedAt - best.r.submittedAt ||
          k.r.seq - best.r.seq) < 0;
      if (ahead) {
        best = k;
        bestShare = share;
      }
    }
    if (!best) return;
    heads.set(best.r.team, (heads.get(best.r.team) ?? 0) + 1);
    yield best.r;
  }
}

/**
 * The requests that would borrow, as `nominalFirst` finds them: each team's requests in order
 * count against its nominal quota; one beyond it borrows (a smaller one behind it may not).
 */
function borrowers(ordered: readonly PendingRequest[], ledger: QuotaLedger): Set<PendingRequest> {
  const out = new Set<PendingRequest>();
  if (ledger.empty) return out;
  const demand = new Map<string, ResourceVector>();
  for (const r of ordered) {
    const asked: ResourceVector = { ...demand.get(r.team) };
    for (const [k, n] of Object.entries(requestVector(r.resources, r.replicas ?? 1))) asked[k] = (asked[k] ?? 0) + n;
    if (ledger.withinNominal(r.team, asked)) demand.set(r.team, asked);
    else out.add(r);
  }
  return out;
}
