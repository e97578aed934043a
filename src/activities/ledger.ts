/**
 * The agent's local ledger of which lease holds which GPU. It is the last line of defence against
 * double-booking: a launch whose devices are held by another lease is refused even if the pool
 * granted it.
 */

/** A lease's claim on the devices of this node. */
export interface DeviceClaim {
  leaseId: string;
  stepId: string;
  /** Milli-GPU per device index. */
  gpus: { index: number; milli: number }[];
}

/** Raised when a launch would take a device that another lease holds. */
export class DeviceConflictError extends Error {
  readonly code = 'DeviceConflict';
  constructor(message: string) {
    super(message);
    this.name = 'DeviceConflictError';
  }
}

/** In-memory ledger of device claims on one node. */
export class LeaseLedger {
  private readonly claims = new Map<string, DeviceClaim>();

  /** Records a claim, or throws when it would overfill a device. Claiming the same lease twice is a no-op. */
  claim(claim: DeviceClaim): void {
    if (this.claims.has(claim.leaseId)) return;
    for (const g of claim.gpus) {
      const held = [...this.claims.values()].filter((c) => c.gpus.some((h) => h.index === g.index));
      const used = held.reduce((sum, c) => sum + (c.gpus.find((h) => h.index === g.index)?.milli ?? 0), 0);
      if (used + g.milli > 1000) {
        throw new DeviceConflictError(
          `GPU ${g.index} is held by lease ${held.map((c) => `${c.leaseId} (step ${c.stepId})`).join(', ')}; ` +
            `refusing lease ${claim.leaseId}, which would overbook it`,
        );
      }
    }
    this.claims.set(claim.leaseId, claim);
  }

  /** Drops a lease's claim. */
  free(leaseId: string): void {
    this.claims.delete(leaseId);
  }

  /** Current claims, for status and reconciliation. */
  list(): DeviceClaim[] {
    return [...this.claims.values()];
  }
}
