/**
 * The accounting record of a step: every lease it held, with team, pipeline, resources, start,
 * end and usage. The step keeps it in its memo (key `allotAccounting`), so it lives in Temporal's
 * visibility store beside the step and `allot usage` reads it with one list query.
 */
import type { StepUsage } from './usage-types';

/** Memo key of the accounting record. */
export const ACCOUNTING_MEMO = 'allotAccounting';

/** One lease a step held. */
export interface AccountedLease {
  leaseId: string;
  nodeId: string;
  /** GPUs held (a share of one GPU for fractional steps). */
  gpu: number;
  /** Cores held. */
  cpu: number;
  memoryMiB: number;
  /** Custom resources held, by name (`{ nvme: 1 }`); absent when none. */
  custom?: Record<string, number>;
  /** Grant time, ms since the epoch. */
  start: number;
  /** Release time; absent while held (or when the step was terminated: its close time ends it). */
  end?: number;
  /** What the workload used while it held the lease, when the agent measured it. */
  usage?: StepUsage;
}

/** A step's accounting record. */
export interface AccountingRecord {
  version: 1;
  pool: string;
  team: string;
  /** The root workflow (pipeline) the step ran in; `null` for a lone step (`allot submit`). */
  pipeline: string | null;
  step: string;
  leases: AccountedLease[];
}
