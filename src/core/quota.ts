/**
 * Team quotas, after Kueue's ClusterQueues in one cohort. Each team has a nominal quota per
 * resource and, optionally, a borrowing limit: how much idle quota of the other teams it may use on
 * top of its own (absent: any; 0: none). The teams form one cohort: together they never use more
 * than the sum of their nominal quotas. A team asking within its own nominal quota may reclaim what
 * borrowers took (see `preemption.ts`).
 *
 * Resources are `gpu` (milli-GPU), `cpu` (milli-CPU), `memory` (MiB) and custom names; a resource
 * no team's quota names is not limited. Once any team has a quota, a team without one (`default`,
 * say) has a nominal quota of zero: it runs only on quota the others leave idle, as a borrower,
 * its usage counts in the cohort, and a team reclaiming its own quota may evict its preemptible
 * steps.
 */
import type { Issue } from './errors';
import { describeValue } from './errors';
import { QuantityError, formatCpu, formatGpu, formatMemory, parseCpu, parseGpu, parseMemory } from './quantity';
import type { Lease, PendingRequest, ResourceRequest } from './types';

/** Amounts per resource in integer units: `gpu` milli-GPU, `cpu` milli-CPU, `memory` MiB, custom as is. */
export type ResourceVector = Record<string, number>;

/** One team's quota. */
export interface TeamQuota {
  name: string;
  /** Nominal quota per resource. */
  nominal: ResourceVector;
  /** Most the team may borrow beyond `nominal`, per resource. @default unlimited for every resource */
  borrowingLimit?: ResourceVector;
}

/**
 * The built-in resources' names in a vector. A custom amount of the same name (which the pool
 * still accepts from what it is sent, so that old histories replay) is left out of vectors: it
 * must never replace the GPUs, CPU or memory a request asks for in quotas, usage or fair share.
 */
export const BUILT_IN_RESOURCES: ReadonlySet<string> = new Set(['gpu', 'cpu', 'memory']);

/** What a request takes, as a vector (all replicas). */
export function requestVector(r: ResourceRequest, replicas = 1): ResourceVector {
  const v: ResourceVector = { gpu: r.gpuMilli * replicas, cpu: r.cpuMilli * replicas, memory: r.memoryMiB * replicas };
  for (const [k, n] of Object.entries(r.custom ?? {})) if (!BUILT_IN_RESOURCES.has(k)) v[k] = n * replicas;
  return v;
}

/** What a lease holds, as a vector. */
export function leaseVector(l: Pick<Lease, 'cpuMilli' | 'memoryMiB' | 'gpus' | 'custom'>): ResourceVector {
  let gpu = 0;
  for (const g of l.gpus) gpu += g.milli;
  const v: ResourceVector = { gpu, cpu: l.cpuMilli, memory: l.memoryMiB };
  for (const [k, n] of Object.entries(l.custom ?? {})) if (!BUILT_IN_RESOURCES.has(k)) v[k] = n;
  return v;
}

/** Formats an amount of a resource for people: `gpu 8`, `cpu 500m`, `memory 8Gi`, `licenses 2`. */
export function formatAmount(resource: string, amount: number): string {
  if (resource === 'gpu') return formatGpu(amount);
  if (resource === 'cpu') return formatCpu(amount);
  if (resource === 'memory') return formatMemory(amount);
  return String(amount);
}

/** Why a request does not fit its team's quota now. */
export interface QuotaShortfall {
  message: string;
  /** True when the team stays within its nominal quota: it may reclaim from borrowers. */
  withinNominal: boolean;
}

/** Usage per team against the quotas; updated as a cycle grants and evicts. */
export class QuotaLedger {
  private readonly teams = new Map<string, TeamQuota>();
  private readonly usage = new Map<string, ResourceVector>();
  private readonly cohortNominal: ResourceVector = {};
  private readonly cohortUsage: ResourceVector = {};
  /** The quota of a team without one: zero of every resource a quota names, borrowing without limit. */
  private readonly none: TeamQuota;

  constructor(teams: readonly TeamQuota[] = []) {
    for (const t of teams) {
      this.teams.set(t.name, t);
      for (const [k, v] of Object.entries(t.nominal)) this.cohortNominal[k] = (this.cohortNominal[k] ?? 0) + v;
    }
    this.none = { name: '', nominal: Object.fromEntries(Object.keys(this.cohortNominal).map((k) => [k, 0])) };
  }

  /** A team's quota: its own, or a zero one when other teams have quotas; `undefined` without quotas. */
  private quotaOf(team: string): TeamQuota | undefined {
    return this.teams.get(team) ?? (this.teams.size > 0 ? this.none : undefined);
  }

  /** True when no team has a quota. */
  get empty(): boolean {
    return this.teams.size === 0;
  }

  /** A team's usage (all resources, quota or not). */
  usageOf(team: string): ResourceVector {
    return this.usage.get(team) ?? {};
  }

  /** Adds (sign 1) or removes (sign -1) a team's usage. */
  add(team: string, v: ResourceVector, sign: 1 | -1 = 1): void {
    let u = this.usage.get(team);
    if (!u) this.usage.set(team, (u = {}));
    for (const [k, n] of Object.entries(v)) {
      u[k] = (u[k] ?? 0) + sign * n;
      if (this.cohortNominal[k] !== undefined) this.cohortUsage[k] = (this.cohortUsage[k] ?? 0) + sign * n;
    }
  }

  /** True when the team uses more than its nominal quota of some resource. */
  isBorrowing(team: string): boolean {
    const quota = this.quotaOf(team);
    if (!quota) return false;
    const u = this.usageOf(team);
    return Object.entries(quota.nominal).some(([k, n]) => (u[k] ?? 0) > n);
  }

  /** True when the team, with `v` added, stays within its nominal quota for every resource it names. */
  withinNominal(team: string, v: ResourceVector): boolean {
    const quota = this.quotaOf(team);
    if (!quota) return true;
    const u = this.usageOf(team);
    return Object.entries(quota.nominal).every(([k, n]) => (u[k] ?? 0) + (v[k] ?? 0) <= n);
  }

  /** Why `v` never fits the team's quota, even with nothing running; `undefined` if it could. */
  neverFits(team: string, v: ResourceVector): string | undefined {
    const quota = this.quotaOf(team);
    if (!quota) return undefined;
    for (const [k, n] of Object.entries(quota.nominal)) {
      const need = v[k] ?? 0;
      const limit = n + (quota.borrowingLimit?.[k] ?? Infinity);
      const cap = Math.min(limit, this.cohortNominal[k] ?? 0);
      if (need > cap) {
        const why =
          cap === limit
            ? `its quota of ${formatAmount(k, n)} ${k}${quota.borrowingLimit?.[k] !== undefined ? ` plus a borrowing limit of ${formatAmount(k, quota.borrowingLimit[k] ?? 0)}` : ''}`
            : `the ${formatAmount(k, cap)} ${k} of all teams' quotas together`;
        return `asks for ${k} ${formatAmount(k, need)}, more than team ${team} may ever use: ${why}`;
      }
    }
    return undefined;
  }

  /** Why `v` does not fit the team's quota now; `undefined` when it fits. */
  shortfall(team: string, v: ResourceVector): QuotaShortfall | undefined {
    const quota = this.quotaOf(team);
    if (!quota) return undefined;
    const u = this.usageOf(team);
    const withinNominal = this.withinNominal(team, v);
    for (const [k, n] of Object.entries(quota.nominal)) {
      const need = v[k] ?? 0;
      if (need === 0) continue;
      const used = u[k] ?? 0;
      const limit = quota.borrowingLimit?.[k];
      if (limit !== undefined && used + need > n + limit) {
        const may = limit === 0 ? 'may not borrow' : `may borrow at most ${formatAmount(k, limit)} more`;
        return {
          withinNominal,
          message: `team ${team} uses ${formatAmount(k, used)} of ${formatAmount(k, n)} ${k} and ${may}; it asks for ${formatAmount(k, need)}`,
        };
      }
      const cohortUsed = this.cohortUsage[k] ?? 0;
      const cohortCap = this.cohortNominal[k] ?? 0;
      if (cohortUsed + need > cohortCap) {
        return {
          withinNominal,
          message: `team ${team} asks for ${k} ${formatAmount(k, need)}, but the teams together use ${formatAmount(k, cohortUsed)} of their ${formatAmount(k, cohortCap)} ${k} quota`,
        };
      }
    }
    return undefined;
  }
}

/**
 * The queue with every request that its team's nominal quota covers ahead of those that would
 * borrow, at any priority, as Kueue orders a cycle: a team is owed its own quota before anyone
 * borrows it, and it reclaims that quota from borrowers at any priority, so a borrower granted
 * first (a reclaimer's victim queued again, say) would only be evicted again. Each team's requests
 * that its quota covers count against it in their order, from `ledger`'s usage (one that would
 * borrow leaves room for a smaller one behind it); the order is otherwise kept.
 */
export function nominalFirst(ordered: readonly PendingRequest[], ledger: QuotaLedger): PendingRequest[] {
  if (ledger.empty) return [...ordered];
  const demand = new Map<string, ResourceVector>();
  const own: PendingRequest[] = [];
  const borrowing: PendingRequest[] = [];
  for (const r of ordered) {
    // What the team's requests ahead that its quota covers ask for, and this one.
    const before = demand.get(r.team) ?? {};
    const asked: ResourceVector = { ...before };
    const v = requestVector(r.resources, r.replicas ?? 1);
    for (const [k, n] of Object.entries(v)) asked[k] = (asked[k] ?? 0) + n;
    if (ledger.withinNominal(r.team, asked)) {
      demand.set(r.team, asked);
      own.push(r);
    } else borrowing.push(r);
  }
  return [...own, ...borrowing];
}

/** User-facing quota amounts: `{ gpu: 4, cpu: "32", memory: "256Gi", licenses: 2 }`. */
export function parseResourceVector(value: unknown, path: (string | number)[], issues: Issue[]): ResourceVector {
  const out: ResourceVector = {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    issues.push({
      code: 'invalid_type',
      path,
      message: `must be an object like { "gpu": 4, "cpu": "32", "memory": "256Gi" }, got ${describeValue(value)}`,
    });
    return out;
  }
  for (const [k, raw] of Object.entries(value)) {
    try {
      if (k === 'gpu') {
        const milli = parseGpu(raw, k);
        out[k] = milli;
      } else if (k === 'cpu') out[k] = parseCpu(raw, k);
      else if (k === 'memory') out[k] = parseMemory(raw, k);
      else if (typeof raw === 'number' && Number.isSafeInteger(raw) && raw >= 0) out[k] = raw;
      else throw new QuantityError(k, raw, 'a whole number >= 0 (custom resource)');
    } catch (err) {
      if (!(err instanceof QuantityError)) throw err;
      issues.push({ code: err.code, path: [...path, k], message: `must be ${err.allowed}, got ${describeValue(raw)}` });
    }
  }
  return out;
}
