/**
 * Cluster-wide named limits, like Slurm's licenses, Airflow's pools and Argo's semaphores: a pool
 * keeps a count of units per name (`feature-store`, max 4), and a request asks for some by name
 * (`{ 'feature-store': 1 }`). The rules, which the pool and the simulator share through `decide()`
 * and `applyDecisions()`:
 *
 * 1. What is in use is what the leases hold: whatever frees a lease (a release, a revocation, a
 *    preemption completing, a lost node) frees its units. A gang holds its units once, on the
 *    lease of its first copy (replica 0).
 * 2. Units are acquired all-or-nothing with the node resources, in the same decision: a grant takes
 *    them; a request whose units are not free waits (`LimitExhausted`) and blocks no request that
 *    does not ask for that limit.
 * 3. Units go in queue order: once a request waits for its limits in a cycle, a later request asking
 *    for any of them waits behind it, so small asks cannot starve a large one. A request its team's
 *    quota keeps from starting (even by reclaiming) waits for the quota and takes no place in line.
 * 4. Preemption never frees units: a request short of a limit waits and evicts nothing. A request
 *    that waits for its victims to stop (`Preempting`) keeps its units in the cycle, so that no
 *    later request takes them and the eviction stays useful. Backfill takes free units only, and
 *    none of a limit that a blocked request ahead asks for: that request keeps its line and its
 *    reserved room.
 * 5. A request naming a limit the pool does not have is rejected (`UnknownLimit`), and so is one
 *    asking for more than a limit's max when it arrives (`Unschedulable`: raise the max first, then
 *    submit). A queued request whose limit is removed is rejected (`UnknownLimit`).
 * 6. A max lowered below what is in use revokes nothing: no request gets units of it until its
 *    holders have released enough. A max lowered below what a queued request asks rejects nothing
 *    either: the request waits (`LimitExhausted`, saying the max is below its ask) until the max is
 *    raised again, and takes no place in the limit's line meanwhile, so the requests behind it that
 *    fit the new max go on. Setting a max to 0 so drains a limit without losing a queued step.
 */
import { TEAM_NAME } from './admin';
import type { Issue } from './errors';
import { describeValue } from './errors';
import type { Reason } from './reasons';
import type { Lease, PendingRequest } from './types';

/** A named limit of a pool: at most `max` units held at once by all leases together. */
export interface NamedLimit {
  /** 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit. */
  name: string;
  /** Units in all; a whole number >= 0. */
  max: number;
}

/** A limit as `allot limit list` and `allot status` show it. */
export interface LimitStatus extends NamedLimit {
  /** Units the leases hold now (may exceed a lowered `max` until holders release). */
  inUse: number;
  /** The requests holding units, with how many each. */
  holders: { requestId: string; label: string; amount: number }[];
  /** Queued requests asking for units of it. */
  waiting: number;
}

/** What a limit may be called (as a team). */
export const LIMIT_NAME = TEAM_NAME;

/** Most units a limit may have, or a request ask for. */
export const MAX_LIMIT_UNITS = 1_000_000;

/** Most limits a pool may have, or one request name. */
export const MAX_LIMITS = 64;

const NAME_RULE = "1-63 letters, digits, '.', '_' or '-', starting with a letter or digit";

/** Checks a `setLimit` input `{ name, max }`; returns every problem. */
export function validateNamedLimit(value: unknown): Issue[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return [
      {
        code: 'invalid_type',
        path: [],
        message: `limit must be an object like {"name": "feature-store", "max": 4}, got ${describeValue(value)}`,
      },
    ];
  }
  const v = value as Partial<NamedLimit>;
  const issues: Issue[] = [];
  for (const key of Object.keys(v)) {
    if (key !== 'name' && key !== 'max')
      issues.push({ code: 'unknown_field', path: [key], message: 'is not a field of a limit; allowed are name, max' });
  }
  if (typeof v.name !== 'string' || !LIMIT_NAME.test(v.name)) {
    issues.push({
      code: 'invalid_name',
      path: ['name'],
      message: `must be ${NAME_RULE}, got ${describeValue(v.name)}`,
    });
  }
  if (typeof v.max !== 'number' || !Number.isSafeInteger(v.max) || v.max < 0 || v.max > MAX_LIMIT_UNITS) {
    issues.push({
      code: 'invalid_quantity',
      path: ['max'],
      message: `must be a whole number from 0 to ${MAX_LIMIT_UNITS}, got ${describeValue(v.max)}`,
    });
  }
  return issues;
}

/** Checks what a request or step asks of named limits (`{ "feature-store": 1 }`); returns every problem. */
export function validateRequestLimits(value: unknown, path: (string | number)[]): Issue[] {
  if (value === undefined) return [];
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return [
      {
        code: 'invalid_type',
        path,
        message: `must be an object of whole numbers like { "feature-store": 1 }, got ${describeValue(value)}`,
      },
    ];
  }
  const issues: Issue[] = [];
  const entries = Object.entries(value);
  if (entries.length > MAX_LIMITS) {
    issues.push({ code: 'too_many', path, message: `names ${entries.length} limits, at most ${MAX_LIMITS} allowed` });
  }
  for (const [name, amount] of entries) {
    if (!LIMIT_NAME.test(name)) {
      issues.push({
        code: 'invalid_name',
        path: [...path, name],
        message: `is not a limit name: must be ${NAME_RULE}`,
      });
    } else if (typeof amount !== 'number' || !Number.isSafeInteger(amount) || amount < 1 || amount > MAX_LIMIT_UNITS) {
      issues.push({
        code: 'invalid_quantity',
        path: [...path, name],
        message: `must be a whole number of units from 1 to ${MAX_LIMIT_UNITS}, got ${describeValue(amount)}`,
      });
    }
  }
  return issues;
}

/** Units held per limit by the leases, by name (no prototype: a limit may be named `constructor`). */
export function limitUsage(leases: readonly Lease[]): Record<string, number> {
  const used = Object.create(null) as Record<string, number>;
  for (const l of leases) {
    if (!l.limits) continue;
    for (const [name, n] of Object.entries(l.limits)) used[name] = (used[name] ?? 0) + n;
  }
  return used;
}

/** Why a request can never get its limits (`UnknownLimit`, `Unschedulable`), or `undefined`. */
export function limitNever(
  limits: readonly NamedLimit[],
  asked: Readonly<Record<string, number>>,
  pool = 'the pool',
): { reason: Reason; message: string } | undefined {
  for (const [name, n] of Object.entries(asked)) {
    const limit = limits.find((l) => l.name === name);
    if (!limit) return { reason: 'UnknownLimit', message: unknownLimitMessage(name, limits, pool) };
    if (n > limit.max)
      return {
        reason: 'Unschedulable',
        message: `asks for ${n} of limit ${name}, more than its max ${limit.max}; raise it with \`allot limit set ${name} --max ${n}\``,
      };
  }
  return undefined;
}

/** `limit "x" does not exist in pool p; limits: a, b`: the message of an `UnknownLimit` rejection. */
export function unknownLimitMessage(name: string, limits: readonly NamedLimit[], pool: string): string {
  const known = limits.map((l) => l.name).join(', ') || 'none';
  return `limit ${JSON.stringify(name)} does not exist in ${pool}; limits: ${known}; add it with \`allot limit set ${name} --max N\``;
}

/**
 * The units of one scheduling cycle: free per limit, and the limits a request has waited for in
 * this cycle (rule 3). Usage is counted from the leases on first use, so a cycle in which no
 * request asks for a limit does no work here.
 */
export class LimitLedger {
  /** Units held per limit: by the leases, and by this cycle's grants and preemptors. */
  private used: Record<string, number> | undefined;
  /** Per limit, the first request of the cycle that waited for it. */
  private readonly waitedFor = new Map<string, PendingRequest>();
  /** Per limit, units kept in this cycle for requests that wait for their victims, and their labels. */
  private readonly kept = new Map<string, { units: number; labels: string[] }>();

  constructor(
    private readonly limits: readonly NamedLimit[],
    private readonly leases: readonly Lease[],
  ) {}

  /** Why a queued request can never get its limits (one was removed), or `undefined` (rule 5). */
  never(request: PendingRequest): { reason: Reason; message: string } | undefined {
    if (!request.limits) return undefined;
    const unknown = Object.keys(request.limits).find((name) => !this.limits.some((l) => l.name === name));
    return unknown === undefined
      ? undefined
      : { reason: 'UnknownLimit', message: unknownLimitMessage(unknown, this.limits, 'the pool') };
  }

  /**
   * Why a queued request waits for a max lowered below its ask since it was queued, or `undefined`:
   * it waits out of the limit's line, so the requests behind it that fit the new max go on (rule 6).
   */
  overMax(request: PendingRequest): string | undefined {
    for (const [name, n] of Object.entries(request.limits ?? {})) {
      if (n > this.maxOf(name))
        return `${this.describe(name, this.usedUnits())}; it asks for ${n}, more than the max, lowered since it was queued; it waits until \`allot limit set ${name} --max ${n}\` or more`;
    }
    return undefined;
  }

  /**
   * Why the request must wait for its limits now (`LimitExhausted`, in words), or `undefined` when
   * they are free. A request that waits closes the limits it is short of to later requests.
   */
  short(request: PendingRequest): string | undefined {
    if (!request.limits) return undefined;
    const used = this.usedUnits();
    for (const name of Object.keys(request.limits)) {
      const ahead = this.waitedFor.get(name);
      if (ahead) return `${this.describe(name, used)}; ${ahead.label} is ahead in line for it`;
    }
    let why: string | undefined;
    for (const [name, n] of Object.entries(request.limits)) {
      if ((used[name] ?? 0) + n <= this.maxOf(name)) continue;
      why ??= `${this.describe(name, used)}${n > 1 ? ` (asks for ${n})` : ''}`;
    }
    // Waiting, it is in line for every limit it asks for, not only the one that is short.
    if (why !== undefined) for (const name of Object.keys(request.limits)) this.waitedFor.set(name, request);
    return why;
  }

  /**
   * Puts a request that blocks the line, or holds a reservation in it, in line for its limits:
   * backfill behind it takes none of their units. Otherwise a backfilled step would leave it short
   * of a limit in the next cycle, where it waits for the limit, blocks nothing, and later steps
   * with no time limit take the room reserved for it (rule 4).
   */
  inLine(request: PendingRequest): void {
    if (!request.limits) return;
    for (const name of Object.keys(request.limits)) if (!this.waitedFor.has(name)) this.waitedFor.set(name, request);
  }

  /** Takes the request's units: it was granted, or waits for its victims to stop (rule 4). */
  take(request: PendingRequest): void {
    if (!request.limits) return;
    const used = this.usedUnits();
    for (const [name, n] of Object.entries(request.limits)) used[name] = (used[name] ?? 0) + n;
  }

  /**
   * Keeps the request's units while it waits for its victims to stop (rule 4): taken as by a grant,
   * but held by no lease, so that reasons tell them apart from units in use.
   */
  keep(request: PendingRequest): void {
    if (!request.limits) return;
    this.take(request);
    for (const [name, n] of Object.entries(request.limits)) {
      const k = this.kept.get(name) ?? { units: 0, labels: [] };
      k.units += n;
      k.labels.push(request.label);
      this.kept.set(name, k);
    }
  }

  /** `feature-store 4 of 4 in use`, or `feature-store 3 of 4 in use, 1 kept for big while its victims stop`. */
  private describe(name: string, used: Record<string, number>): string {
    const k = this.kept.get(name);
    const inUse = (used[name] ?? 0) - (k?.units ?? 0);
    const kept = k
      ? `, ${k.units} kept for ${k.labels.join(', ')} while ${k.labels.length > 1 ? 'their' : 'its'} victims stop`
      : '';
    return `${name} ${inUse} of ${this.maxOf(name)} in use${kept}`;
  }

  private maxOf(name: string): number {
    return this.limits.find((l) => l.name === name)?.max ?? 0;
  }

  private usedUnits(): Record<string, number> {
    return (this.used ??= limitUsage(this.leases));
  }
}

/** Every limit with its use, holders and waiting requests, for `allot limit list` and `allot status`. */
export function limitStatus(
  limits: readonly NamedLimit[],
  leases: readonly Lease[],
  queue: readonly PendingRequest[],
): LimitStatus[] {
  return limits.map((l) => {
    const holders = leases
      .filter((x) => (x.limits?.[l.name] ?? 0) > 0)
      .map((x) => ({ requestId: x.requestId, label: x.label, amount: x.limits?.[l.name] ?? 0 }));
    return {
      name: l.name,
      max: l.max,
      inUse: holders.reduce((s, h) => s + h.amount, 0),
      holders,
      waiting: queue.filter((r) => (r.limits?.[l.name] ?? 0) > 0).length,
    };
  });
}

/**
 * The invariant, in words: each limit whose leases hold more than its max, where a lease among
 * them is `fresh` (by default, any). With a max lowered below use, pass the leases granted since
 * the lowering as fresh: the old holders may keep what they hold, but nothing new may be granted.
 */
export function limitBreaches(
  limits: readonly NamedLimit[],
  leases: readonly Lease[],
  fresh: (lease: Lease) => boolean = () => true,
): string[] {
  const used = limitUsage(leases);
  const out: string[] = [];
  for (const l of limits) {
    const n = used[l.name] ?? 0;
    if (n <= l.max) continue;
    const holders = leases.filter((x) => (x.limits?.[l.name] ?? 0) > 0);
    if (!holders.some(fresh)) continue;
    out.push(`limit ${l.name} has ${n} units held of ${l.max}, by ${holders.map((x) => x.leaseId).join(', ')}`);
  }
  for (const name of Object.keys(used)) {
    if (!limits.some((l) => l.name === name)) out.push(`limit ${name} is held but does not exist`);
  }
  return out;
}
