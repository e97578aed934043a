/**
 * Victims for a request that does not fit, after Kueue and Slurm. Candidates are the running,
 * preemptible, not already preempted allocations (a gang counts as one) that either
 * - have a lower priority than the request (equal priority never preempts): lower in the request's
 *   own priority, and lower in the priorities the queue is ordered by (the request's aged by its
 *   waiting, each lease's as it was when granted; see `priority.ts`). Aging moves a request up
 *   the queue, but never lets it evict work of its own priority or above, which would then queue
 *   ahead of it and take the room back; or
 * - belong to another team that borrows quota, when the request's team reclaims within its own
 *   nominal quota (at any priority, as Kueue's `reclaimWithinCohort: Any`).
 * With quotas, a victim of another team is taken only while that team still borrows once the
 * victims chosen before it are gone (as Kueue): queued again, it then asks beyond its team's
 * quota, and queues behind what teams' own quotas cover (see `nominalFirst`).
 * They are taken in order: borrowing teams first, then lower priority first, then the most recently
 * started, then request id. A gang fits when all its copies do, a spread gang's each on a node of
 * its own (see `Placer.placeGang`). The set is minimal: greedy until the request fits, then any
 * victim not needed is dropped. When the request would not fit even with every candidate gone,
 * nobody is evicted.
 */
import type { ClusterState } from './cluster';
import { allocationOf, applyAllocation, scratchCopy } from './cluster';
import { fitsNow } from './fit';
import type { Placer } from './placer';
import { leasePriority } from './priority';
import type { QuotaLedger, ResourceVector } from './quota';
import { leaseVector } from './quota';
import { replicaPlacement } from './shape';
import type { Lease, PendingRequest } from './types';

/** The allocations of one granted request (several for a gang). */
export interface LeaseGroup {
  requestId: string;
  label: string;
  team: string;
  /** The priority it preempts and is preempted with: its own, aged by what it waited before the grant. */
  priority: number;
  /** Its own priority, not aged. */
  basePriority: number;
  /** Who runs it: the owner's workflow id, or the request id for other owners. */
  ownerKey: string;
  grantedAt: number;
  preemptible: boolean;
  leases: Lease[];
}

/** Who runs a lease, as `PendingRequest.evicted` names it. */
export function leaseOwnerKey(l: Pick<Lease, 'owner' | 'requestId'>): string {
  return l.owner.kind === 'workflow' ? l.owner.workflowId : l.requestId;
}

/** Groups leases by request id, in a deterministic order; `agingIntervalMs` ages their priorities. */
export function groupLeases(leases: readonly Lease[], agingIntervalMs = 0): LeaseGroup[] {
  const groups = new Map<string, LeaseGroup>();
  for (const l of leases) {
    let g = groups.get(l.requestId);
    if (!g) {
      g = {
        requestId: l.requestId,
        label: l.label,
        team: l.team,
        priority: leasePriority(l, agingIntervalMs),
        basePriority: l.priority,
        ownerKey: leaseOwnerKey(l),
        grantedAt: l.grantedAt,
        preemptible: l.preemptible === true,
        leases: [],
      };
      groups.set(l.requestId, g);
    }
    g.leases.push(l);
  }
  return [...groups.values()];
}

/** What victim search works on; it leaves cluster and ledger as it found them. */
export interface PreemptionContext {
  cluster: ClusterState;
  placer: Placer;
  ledger: QuotaLedger;
  /** Running groups that may be chosen (not already preempted). */
  groups: readonly LeaseGroup[];
}

/** True when the request fits quota and nodes in the context's current state. */
export function admissible(ctx: PreemptionContext, request: PendingRequest, vector: ResourceVector): boolean {
  if (ctx.ledger.shortfall(request.team, vector)) return false;
  const placed = ctx.placer.placeGang(request.resources, request.replicas ?? 1, replicaPlacement(request));
  if (!placed) return false;
  for (const p of placed) ctx.cluster.release(allocationOf(p.nodeId, request.resources, p.gpus));
  return true;
}

/** Removes (sign -1) or restores (sign 1) a group's resources in the working state. */
export function applyGroup(ctx: Pick<PreemptionContext, 'cluster' | 'ledger'>, g: LeaseGroup, sign: 1 | -1): void {
  const quotas = !ctx.ledger.empty;
  for (const l of g.leases) {
    if (sign < 0) ctx.cluster.release(l);
    else ctx.cluster.allocate(l);
    // Without quotas, no decision reads usage.
    if (quotas) ctx.ledger.add(l.team, leaseVector(l), sign);
  }
}

/**
 * The minimal victim set that lets the request in, or `undefined` when none does. `priority` is
 * the request's priority now, aged by its waiting (see `requestPriority`).
 */
export function findVictims(
  ctx: PreemptionContext,
  request: PendingRequest,
  vector: ResourceVector,
  priority = request.priority,
): LeaseGroup[] | undefined {
  const reclaims = !ctx.ledger.empty && ctx.ledger.withinNominal(request.team, vector);
  const quotaShort = ctx.ledger.shortfall(request.team, vector) !== undefined;
  const usefulNodes = new Set(ctx.placer.eligibleNodes(request.resources).map((n) => n.spec.id));
  const borrowing = new Map<string, boolean>();
  const borrows = (team: string): boolean => {
    let b = borrowing.get(team);
    if (b === undefined) borrowing.set(team, (b = ctx.ledger.isBorrowing(team)));
    return b;
  };
  const candidates = ctx.groups.filter((g) => {
    if (!g.preemptible || g.requestId === request.requestId) return false;
    // A step is evicted once for a request, no more (see `PendingRequest.evicted`).
    if (request.evicted?.includes(g.ownerKey)) return false;
    const otherTeam = !ctx.ledger.empty && g.team !== request.team;
    if (otherTeam && !borrows(g.team)) return false;
    const byPriority = g.priority < priority && g.basePriority < request.priority;
    const byReclaim = reclaims && otherTeam;
    if (!byPriority && !byReclaim) return false;
    return quotaShort || g.leases.some((l) => usefulNodes.has(l.nodeId));
  });
  if (candidates.length === 0) return undefined;
  const borrower = new Map(candidates.map((g) => [g, Number(borrows(g.team))]));
  candidates.sort(
    (a, b) =>
      (borrower.get(b) ?? 0) - (borrower.get(a) ?? 0) ||
      a.priority - b.priority ||
      b.grantedAt - a.grantedAt ||
      (a.requestId < b.requestId ? -1 : a.requestId > b.requestId ? 1 : 0),
  );
  if (!quotaShort && (request.replicas ?? 1) === 1) return victimsOnOneNode(ctx, request, vector, candidates);
  return greedyThenMinimal(ctx, request, vector, candidates);
}

/** Whether a victim of another team may still be taken: its team borrows, with the victims chosen so far gone. */
function stillBorrows(ctx: PreemptionContext, request: PendingRequest, g: LeaseGroup): boolean {
  return ctx.ledger.empty || g.team === request.team || ctx.ledger.isBorrowing(g.team);
}

function applyQuota(ctx: PreemptionContext, g: LeaseGroup, sign: 1 | -1): void {
  for (const l of g.leases) ctx.ledger.add(l.team, leaseVector(l), sign);
}

/**
 * For one copy that lacks only node resources: the cheapest victim set on any single node (fewest
 * victims, then the lowest top priority among them, then node order), each found greedily in the
 * candidate order and made minimal.
 */
function victimsOnOneNode(
  ctx: PreemptionContext,
  request: PendingRequest,
  vector: ResourceVector,
  candidates: readonly LeaseGroup[],
): LeaseGroup[] | undefined {
  const byNode = new Map<string, LeaseGroup[]>();
  for (const g of candidates) {
    if (g.leases.length !== 1) continue;
    const nodeId = g.leases[0]?.nodeId ?? '';
    let list = byNode.get(nodeId);
    if (!list) byNode.set(nodeId, (list = []));
    list.push(g);
  }
  let best: { victims: LeaseGroup[]; top: number } | undefined;
  for (const n of ctx.placer.eligibleNodes(request.resources)) {
    const list = byNode.get(n.spec.id);
    if (!n.ready || !list) continue;
    // Only this node matters here: try evictions on a copy of it, not on the cluster and ledger.
    const node = scratchCopy(n);
    const fitsHere = (): boolean => fitsNow(node, request.resources);
    const evict = (g: LeaseGroup, sign: 1 | -1): void => {
      for (const l of g.leases) applyAllocation(node, l, sign);
    };
    const taken: LeaseGroup[] = [];
    for (const g of list) {
      if (fitsHere()) break;
      if (!stillBorrows(ctx, request, g)) continue;
      evict(g, 1);
      if (!ctx.ledger.empty) applyQuota(ctx, g, -1);
      taken.push(g);
    }
    if (!ctx.ledger.empty) for (const g of taken) applyQuota(ctx, g, 1);
    if (!fitsHere() || taken.length === 0) continue;
    const needed = minimal(taken, fitsHere, (g, back) => evict(g, back ? -1 : 1));
    const top = Math.max(...needed.map((g) => g.priority));
    if (!best || needed.length < best.victims.length || (needed.length === best.victims.length && top < best.top)) {
      best = { victims: needed, top };
    }
  }
  if (!best) return greedyThenMinimal(ctx, request, vector, candidates);
  return best.victims;
}

/**
 * Drops victims not needed, latest chosen first (the last one always is needed); the needed ones
 * stay removed. `put(g, true)` puts a victim back in the working state, `put(g, false)` removes it.
 */
function minimal(
  victims: readonly LeaseGroup[],
  fits: () => boolean,
  put: (g: LeaseGroup, back: boolean) => void,
): LeaseGroup[] {
  const needed: LeaseGroup[] = [];
  for (let i = victims.length - 1; i >= 0; i--) {
    const g = victims[i] as LeaseGroup;
    if (i === victims.length - 1) {
      needed.push(g);
      continue;
    }
    put(g, true);
    if (fits()) continue;
    put(g, false);
    needed.push(g);
  }
  return needed.reverse();
}

function greedyThenMinimal(
  ctx: PreemptionContext,
  request: PendingRequest,
  vector: ResourceVector,
  candidates: readonly LeaseGroup[],
): LeaseGroup[] | undefined {
  const victims: LeaseGroup[] = [];
  let fits = false;
  for (const g of candidates) {
    if (!stillBorrows(ctx, request, g)) continue;
    applyGroup(ctx, g, -1);
    victims.push(g);
    if (admissible(ctx, request, vector)) {
      fits = true;
      break;
    }
  }
  if (!fits) {
    for (const g of victims) applyGroup(ctx, g, 1);
    return undefined;
  }
  // Drop any victim the request does not need, latest chosen first (the last one always is needed).
  const needed = minimal(
    victims,
    () => admissible(ctx, request, vector),
    (g, back) => applyGroup(ctx, g, back ? 1 : -1),
  );
  for (const g of needed) applyGroup(ctx, g, 1);
  return needed;
}
