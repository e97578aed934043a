/**
 * Each team's recent usage for fair share, as Slurm's fair-share factor counts it: resource-seconds
 * that decay with a half-life. One vector per team plus the time it is valid at, so the pool
 * carries it across continue-as-new at a bounded size, and a decayed capacity: what the cluster
 * could have delivered over the same decayed window, which normalises the usage.
 *
 * `accrueUsage` is the one place usage is counted: the pool (`PoolState`) and the simulator both
 * call it before any lease is granted or given back, so between two calls the leases held are
 * fixed and the integral is exact:
 *
 *   usage(t1) = usage(t0) · 2^(−(t1−t0)/H) + Σ_leases amount · ∫_{max(t0, granted)}^{t1} 2^(−(t1−t)/H) dt
 *
 * where H is the half-life and ∫_s^{t1} 2^(−(t1−t)/H) dt = (H / ln 2) · (1 − 2^(−(t1−s)/H)).
 * Capacity accrues the same way from the nodes' inventory. Amounts are in the core's units per
 * second: milli-GPU·s, milli-CPU·s, MiB·s, custom·s.
 */
import { dominantShare } from './fair-share';
import type { ResourceVector } from './quota';
import { leaseVector } from './quota';
import type { Lease } from './types';

/** Each team's decayed usage and the cluster's decayed capacity, valid at `at`. */
export interface UsageHistory {
  /** Time (ms) the amounts are valid at. */
  at: number;
  /** What the cluster could have delivered, decayed as usage is: unit·s per resource. */
  capacity: ResourceVector;
  /** Each team's decayed usage, unit·s per resource (milli-GPU·s, milli-CPU·s, MiB·s, custom·s), by team name. */
  teams: { team: string; usage: ResourceVector }[];
}

/** A team whose decayed usage is below this fraction of the decayed capacity, for every resource, is forgotten. */
export const NEGLIGIBLE_USAGE = 1e-6;

/** Most teams the history keeps (the largest users); the rest count as having used nothing. */
export const MAX_HISTORY_TEAMS = 1_000;

/** `∫_s^{t} 2^(−(t−x)/H) dx` in seconds, for a span of `spanMs` ending at `t`. */
function decayedSeconds(spanMs: number, halfLifeMs: number): number {
  if (!(spanMs > 0)) return 0;
  // A half-life too long for a number of ms never decays: the plain span (the formula gives NaN).
  if (halfLifeMs === Infinity) return spanMs / 1000;
  // (H / ln 2) · (1 − 2^(−span/H)), with expm1 for spans much shorter than H.
  return (-(halfLifeMs / Math.LN2) * Math.expm1((-spanMs / halfLifeMs) * Math.LN2)) / 1000;
}

/**
 * The history at `now`: the one at `history.at` decayed, plus what `leases` (held throughout
 * since then, or since they were granted) and `capacity` (the cluster's, throughout) add. A half-
 * life of 0 keeps no history (`undefined`). Teams whose usage became negligible drop out.
 */
export function accrueUsage(
  history: UsageHistory | undefined,
  leases: readonly Lease[],
  capacity: ResourceVector,
  now: number,
  halfLifeMs: number,
): UsageHistory | undefined {
  if (!(halfLifeMs > 0)) return undefined;
  // A history carried without a valid time (garbled state) starts again rather than poisoning every amount.
  if (!history || !Number.isFinite(history.at)) return { at: now, capacity: {}, teams: [] };
  const span = now - history.at;
  if (span <= 0) return history;
  const decay = Math.pow(2, -span / halfLifeMs);
  const byTeam = new Map<string, ResourceVector>();
  for (const { team, usage } of history.teams ?? []) {
    const u: ResourceVector = {};
    for (const [k, v] of Object.entries(usage ?? {})) if (finite(v)) u[k] = v * decay;
    byTeam.set(team, u);
  }
  const cap: ResourceVector = {};
  for (const [k, v] of Object.entries(history.capacity ?? {})) if (finite(v)) cap[k] = v * decay;
  const full = decayedSeconds(span, halfLifeMs);
  for (const [k, v] of Object.entries(capacity)) cap[k] = (cap[k] ?? 0) + v * full;
  for (const lease of leases) {
    const seconds = lease.grantedAt <= history.at ? full : decayedSeconds(now - lease.grantedAt, halfLifeMs);
    if (seconds <= 0) continue;
    let u = byTeam.get(lease.team);
    if (!u) byTeam.set(lease.team, (u = {}));
    for (const [k, v] of Object.entries(leaseVector(lease))) if (v > 0) u[k] = (u[k] ?? 0) + v * seconds;
  }
  const teams = [...byTeam]
    .map(([team, usage]) => ({ team, usage, share: dominantShare(usage, cap) }))
    .filter((t) => t.share >= NEGLIGIBLE_USAGE)
    .sort((a, b) => b.share - a.share || (a.team < b.team ? -1 : a.team > b.team ? 1 : 0))
    .slice(0, MAX_HISTORY_TEAMS)
    .sort((a, b) => (a.team < b.team ? -1 : a.team > b.team ? 1 : 0))
    .map(({ team, usage }) => ({ team, usage }));
  return { at: now, capacity: cap, teams };
}

/**
 * Whether a carried amount can be counted: NaN (which JSON carries as null) or a non-number would
 * make every sum it enters NaN, and every team would drop out of the history for good.
 */
function finite(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0;
}
