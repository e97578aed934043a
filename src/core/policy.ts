/**
 * The scheduling policy: the knobs a pool or a simulation turns. Every field has a default, so
 * `decide(snapshot)` works with none given.
 */
import type { PlacementPolicyName } from './placer';

/** How the scheduler chooses. */
export interface SchedulingPolicy {
  /** Where work goes. @default 'fragmentation-aware' */
  placement: PlacementPolicyName;
  /** Whether higher-priority and reclaiming requests may evict preemptible work. @default true */
  preemption: boolean;
  /** Whether later requests may start ahead of a blocked one when they end before its reserved start. @default true */
  backfill: boolean;
  /** Whether teams with smaller dominant resource shares go first among equal priorities. @default false */
  fairShare: boolean;
  /**
   * Fair share counts each team's recent usage, halved every this many ms; 0 counts current
   * leases only (see `fair-share.ts`). @default 604800000 (7 days)
   */
  fairShareHalfLifeMs: number;
  /** How long (ms) a preempted step has to stop before its resources are taken back. @default 30000 */
  gracePeriodMs: number;
  /** Aging: one priority point per this many ms waited; 0 turns aging off. @default 3600000 (one hour) */
  agingIntervalMs: number;
  /** Most requests behind a blocked one that backfill examines per cycle (Slurm's bf_max_job_test). @default 100 */
  backfillDepth: number;
}

/** The policy used where none is given. */
export const DEFAULT_POLICY: Readonly<SchedulingPolicy> = {
  placement: 'fragmentation-aware',
  preemption: true,
  backfill: true,
  fairShare: false,
  fairShareHalfLifeMs: 604_800_000,
  gracePeriodMs: 30_000,
  agingIntervalMs: 3_600_000,
  backfillDepth: 100,
};
