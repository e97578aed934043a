/**
 * Why a request waits or was rejected, as a code in the manner of Slurm's `Reason` column; the
 * message beside it says the same in words.
 */

/** The reason codes of waiting and rejected requests. */
export const REASONS = {
  /** Queued and not yet considered by a scheduling cycle. */
  Pending: 'Pending',
  /** Not enough free resources now; first in line. */
  Resources: 'Resources',
  /** Waiting behind a request that is first in line. */
  Priority: 'Priority',
  /** Over its team's quota (or the cohort's). */
  QuotaExhausted: 'QuotaExhausted',
  /** Waiting for preempted work to stop. */
  Preempting: 'Preempting',
  /** No node fits it now, but a node template does: waiting for a new node. */
  WaitingForCapacity: 'WaitingForCapacity',
  /** No node has registered. */
  NoNodes: 'NoNodes',
  /** No node or quota could ever satisfy it (a rejection). */
  Unschedulable: 'Unschedulable',
  /** A named limit it asks for has no units free now, or a request ahead in line waits for them. */
  LimitExhausted: 'LimitExhausted',
  /** It asks for a named limit the pool does not have (a rejection). */
  UnknownLimit: 'UnknownLimit',
  /** Its team is not known to a pool with quotas (a rejection). */
  UnknownTeam: 'UnknownTeam',
  /** The pool's queue is full (a rejection; a step asks again later). */
  QueueFull: 'QueueFull',
} as const;

/** A reason code: one of `REASONS`. */
export type Reason = (typeof REASONS)[keyof typeof REASONS];
