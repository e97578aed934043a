/**
 * What an operator sets on a pool: team quotas, the scheduling policy, and lease and node-health
 * timing. Each takes effect from the next cycle or check; a lowered node-lost time takes effect
 * only once the old one has passed since the change (agents learn the new one meanwhile, and stop
 * cut-off workloads within it).
 */
import type { TeamWeight } from './fair-share';
import type { HealthPolicy } from './health';
import { DEFAULT_HEALTH } from './health';
import type { NamedLimit } from './named-limits';
import type { PoolStateData } from './pool-data';
import type { SchedulingPolicy } from './policy';
import { DEFAULT_POLICY } from './policy';
import type { ResourceVector, TeamQuota } from './quota';
import { leaseVector } from './quota';

/** A pool's settings; owns `teams`, `policy`, `health` and `previousNodeLost`. */
export class PoolSettings {
  constructor(protected readonly data: PoolStateData) {}

  /** Team quotas in force. */
  get teams(): readonly TeamQuota[] {
    return this.data.teams ?? [];
  }

  /** Sets (or replaces) one team's quota. */
  setTeamQuota(quota: TeamQuota): void {
    const teams = (this.data.teams ?? []).filter((t) => t.name !== quota.name);
    teams.push(quota);
    teams.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    this.data.teams = teams;
  }

  /** Removes a team's quota and its weight; returns whether it had either. */
  removeTeamQuota(name: string): boolean {
    const before = (this.data.teams?.length ?? 0) + (this.data.teamWeights?.length ?? 0);
    this.data.teams = (this.data.teams ?? []).filter((t) => t.name !== name);
    if (this.data.teamWeights) {
      this.data.teamWeights = this.data.teamWeights.filter((w) => w.team !== name);
      if (this.data.teamWeights.length === 0) delete this.data.teamWeights;
    }
    return this.data.teams.length + (this.data.teamWeights?.length ?? 0) < before;
  }

  /** Team weights in fair share (a team not listed has weight 1). */
  get teamWeights(): readonly TeamWeight[] {
    return this.data.teamWeights ?? [];
  }

  /** Sets a team's weight in fair share (> 0); a weight of 1 is the default and is not kept. Its quota is unchanged. */
  setTeamWeight(team: string, weight: number): void {
    const weights = (this.data.teamWeights ?? []).filter((w) => w.team !== team);
    if (weight !== 1) weights.push({ team, weight });
    weights.sort((a, b) => (a.team < b.team ? -1 : a.team > b.team ? 1 : 0));
    if (weights.length > 0) this.data.teamWeights = weights;
    else delete this.data.teamWeights;
  }

  /** What each team uses now, as resource vectors. */
  teamUsage(): Record<string, ResourceVector> {
    // No prototype: a team may be named `constructor`.
    const usage = Object.create(null) as Record<string, ResourceVector>;
    for (const lease of this.data.leases) {
      const u = (usage[lease.team] ??= Object.create(null) as ResourceVector);
      for (const [k, v] of Object.entries(leaseVector(lease))) u[k] = (u[k] ?? 0) + v;
    }
    return usage;
  }

  /** Cluster-wide named limits, sorted by name. */
  /** The store agents without one of their own use, if the pool names one. */
  get store(): string | undefined {
    return this.data.store;
  }

  /** Names the pool's store (`undefined`: none). */
  setStore(url: string | undefined): void {
    if (url === undefined) delete this.data.store;
    else this.data.store = url;
  }

  get limits(): readonly NamedLimit[] {
    return this.data.limits ?? [];
  }

  /**
   * Sets (or changes) a named limit. A max lowered below what is in use revokes nothing: no unit
   * of it is granted until holders have released enough.
   */
  setLimit(limit: NamedLimit): void {
    const limits = (this.data.limits ?? []).filter((l) => l.name !== limit.name);
    limits.push({ name: limit.name, max: limit.max });
    limits.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    this.data.limits = limits;
  }

  /**
   * Removes a named limit; returns whether there was one. The caller refuses while leases hold
   * it; queued requests asking for it are rejected (`UnknownLimit`) by the next cycle.
   */
  removeLimit(name: string): boolean {
    const before = this.data.limits?.length ?? 0;
    const limits = (this.data.limits ?? []).filter((l) => l.name !== name);
    if (limits.length > 0) this.data.limits = limits;
    else delete this.data.limits;
    return limits.length < before;
  }

  /** The scheduling policy in force. */
  get policy(): SchedulingPolicy {
    return { ...DEFAULT_POLICY, ...this.data.policy };
  }

  /** Changes the scheduling policy; the next cycle uses it. */
  setPolicy(policy: Partial<SchedulingPolicy>): void {
    this.data.policy = { ...this.data.policy, ...policy };
  }

  /** Lease and node-health timing in force. */
  get health(): HealthPolicy {
    return { ...DEFAULT_HEALTH, ...this.data.health };
  }

  /**
   * Timing the health checks use at `now`: the policy's, except that a lowered node-lost time
   * takes effect only once the old one has passed since the change. Read-only: queries call it.
   */
  healthAt(now: number): HealthPolicy {
    const health = this.health;
    const previous = this.data.previousNodeLost;
    if (!previous || now >= previous.until) return health;
    return { ...health, nodeLostAfterMs: Math.max(health.nodeLostAfterMs, previous.nodeLostAfterMs) };
  }

  /** As `healthAt`, and forgets a lowered node-lost time's old value once it has passed. */
  settleHealth(now: number): HealthPolicy {
    const health = this.healthAt(now);
    if (this.data.previousNodeLost && now >= this.data.previousNodeLost.until) delete this.data.previousNodeLost;
    return health;
  }

  /**
   * Changes lease and node-health timing. Later grants get the new TTL; leases granted before
   * keep theirs (their steps renew at a third of it). A shorter node-lost time counts from when
   * the old one has passed.
   */
  setHealth(policy: Partial<HealthPolicy>, now?: number): void {
    const before = now !== undefined ? this.healthAt(now).nodeLostAfterMs : this.health.nodeLostAfterMs;
    this.data.health = { ...this.data.health, ...policy };
    if (now !== undefined && this.health.nodeLostAfterMs < before) {
      this.data.previousNodeLost = { nodeLostAfterMs: before, until: now + before };
    }
  }
}
