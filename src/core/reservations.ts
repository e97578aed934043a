/**
 * What a scheduling cycle sees of the cluster and the quotas, in three views:
 *
 * - **now**: what every lease holds, victims still stopping included, plus this cycle's grants;
 * - **future**: what is held once every victim chosen so far has stopped, plus the room and quota
 *   reserved for the requests that wait for them (`Preempting`), in queue order;
 * - **grant**: the smaller of the two, resource by resource. A grant must fit it: room that is
 *   free now but reserved for a preemptor ahead is not given away, and room that victims still
 *   hold goes to no one before they stop.
 *
 * Victims are chosen on the future view, so those already stopping count before anyone new is
 * evicted, and several preemptors in one cycle each see what the ones before them reserved.
 *
 * Invariant: the grant view never has more free than either of the other two.
 */
import type { Allocation, NodeState } from './cluster';
import { ClusterState } from './cluster';
import type { ResourceVector, TeamQuota } from './quota';
import { QuotaLedger, leaseVector } from './quota';
import type { Lease, NodeRecord } from './types';

/** The views of one cycle; the now and future views are built on first use. */
export class CycleViews {
  /** Where grants are placed. */
  readonly grant: ClusterState;
  /** Quota usage now (stopping victims included), with this cycle's grants. */
  readonly nowLedger: QuotaLedger;
  private futureCluster: ClusterState | undefined;
  private futureQuota: QuotaLedger | undefined;
  private nowCluster: ClusterState | undefined;
  /** This cycle's grants, to replay onto views built later. */
  private readonly grants: { allocations: readonly Allocation[]; team: string; v: ResourceVector }[] = [];
  private changed = false;

  constructor(
    private readonly nodes: readonly NodeRecord[],
    private readonly leases: readonly Lease[],
    /** Request ids of the leases whose victims are stopping (preempted in an earlier cycle). */
    private readonly stopping: ReadonlySet<string>,
    private readonly teams: readonly TeamQuota[] | undefined,
  ) {
    this.grant = ClusterState.from(nodes, leases);
    this.nowLedger = new QuotaLedger(teams);
    if (!this.nowLedger.empty) for (const l of leases) this.nowLedger.add(l.team, leaseVector(l));
  }

  /** True when no victim stops and nothing is reserved: the three views are one. */
  get simple(): boolean {
    return this.stopping.size === 0 && !this.changed;
  }

  /** The future view of the cluster. */
  get future(): ClusterState {
    if (!this.futureCluster) {
      this.futureCluster = ClusterState.from(
        this.nodes,
        this.leases.filter((l) => !this.stopping.has(l.requestId)),
      );
      for (const g of this.grants) for (const a of g.allocations) this.futureCluster.allocate(a);
    }
    return this.futureCluster;
  }

  /** The future view of quota usage. */
  get futureLedger(): QuotaLedger {
    if (!this.futureQuota) {
      this.futureQuota = new QuotaLedger(this.teams);
      if (!this.futureQuota.empty) {
        for (const l of this.leases) if (!this.stopping.has(l.requestId)) this.futureQuota.add(l.team, leaseVector(l));
        for (const g of this.grants) this.futureQuota.add(g.team, g.v);
      }
    }
    return this.futureQuota;
  }

  private get now(): ClusterState {
    if (!this.nowCluster) {
      this.nowCluster = ClusterState.from(this.nodes, this.leases);
      for (const g of this.grants) for (const a of g.allocations) this.nowCluster.allocate(a);
    }
    return this.nowCluster;
  }

  /** A grant, already allocated in the grant view by its placer: the other views take it too. */
  recordGrant(allocations: readonly Allocation[], team: string, v: ResourceVector): void {
    for (const a of allocations) {
      this.nowCluster?.allocate(a);
      this.futureCluster?.allocate(a);
    }
    if (!this.nowLedger.empty) {
      this.nowLedger.add(team, v);
      this.futureQuota?.add(team, v);
    }
    this.grants.push({ allocations, team, v });
  }

  /**
   * Room a preemptor reserves: its placement in the future view (allocated there by that view's
   * placer) and the quota it will use. The grant view shrinks to match.
   */
  recordReservation(allocations: readonly Allocation[], team: string, v: ResourceVector): void {
    this.changed = true;
    if (!this.nowLedger.empty) this.futureLedger.add(team, v);
    for (const a of allocations) this.sync(a.nodeId);
  }

  /** Victims chosen now: gone from the future view, while they still hold their room now. */
  recordEviction(leases: readonly Lease[]): void {
    this.changed = true;
    for (const l of leases) {
      this.future.release(l);
      if (!this.nowLedger.empty) this.futureLedger.add(l.team, leaseVector(l), -1);
      this.sync(l.nodeId);
    }
  }

  /**
   * Why `team` may not have `v` of quota now, or `undefined` when it may: a grant must fit the
   * quotas both now and once the preemptions under way are done. `later`: it is short even once
   * they are done (otherwise only victims still stopping stand in its way).
   */
  quotaShortfall(
    team: string,
    v: ResourceVector,
  ): { message: string; withinNominal: boolean; later: boolean } | undefined {
    if (this.nowLedger.empty) return undefined;
    const withinNominal = (this.simple ? this.nowLedger : this.futureLedger).withinNominal(team, v);
    const now = this.nowLedger.shortfall(team, v);
    const later = this.simple ? now : this.futureLedger.shortfall(team, v);
    if (now) return { message: now.message, withinNominal, later: later !== undefined };
    if (!later) return undefined;
    return {
      message: `${later.message}, counting what requests that wait for preemptions will use`,
      withinNominal,
      later: true,
    };
  }

  /** The grant view's node becomes the smaller of now and future, resource by resource. */
  private sync(nodeId: string): void {
    const n = this.now.node(nodeId);
    const f = this.future.node(nodeId);
    if (!n || !f) return;
    this.grant.overwrite(nodeId, (g: NodeState) => {
      g.freeCpuMilli = Math.min(n.freeCpuMilli, f.freeCpuMilli);
      g.freeMemoryMiB = Math.min(n.freeMemoryMiB, f.freeMemoryMiB);
      for (let i = 0; i < g.gpuFree.length; i++) {
        g.gpuFree[i] = Math.min(n.gpuFree[i] ?? 0, f.gpuFree[i] ?? 0);
        g.gpuMemoryFree[i] = Math.min(n.gpuMemoryFree[i] ?? 0, f.gpuMemoryFree[i] ?? 0);
      }
      for (const k of new Set([...Object.keys(n.customFree), ...Object.keys(f.customFree)]))
        g.customFree[k] = Math.min(n.customFree[k] ?? 0, f.customFree[k] ?? 0);
    });
  }
}
