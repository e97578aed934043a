/**
 * The agent's local ledger of which lease holds which GPU, and which process group runs for it.
 * It is the last line of defence against double-booking: a launch whose devices are held by
 * another lease is refused even if the pool granted it. With a file, it survives the agent: a
 * restarted agent finds the process groups its previous life left behind.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { LaunchFailure } from '../workflows/failures';

/** A lease's claim on the devices of this node. */
export interface DeviceClaim {
  leaseId: string;
  stepId: string;
  /** Milli-GPU per device index. */
  gpus: { index: number; milli: number }[];
  /** Process group of the workload, once started. */
  pgid?: number;
}

/** Raised when a launch would take a device that another lease holds. */
export class DeviceConflictError extends Error {
  readonly code = LaunchFailure.DeviceConflict;
  /**
   * @param sameLease true when the lease itself runs another step (a forged grant), which waiting
   *   never resolves; false when another lease holds the devices.
   */
  constructor(
    message: string,
    readonly sameLease = false,
  ) {
    super(message);
    this.name = 'DeviceConflictError';
  }
}

/** Ledger of device claims on one node, optionally kept in a file. */
export class LeaseLedger {
  private readonly claims = new Map<string, DeviceClaim>();

  /** @param file where to keep the ledger; without one it lives in memory only. */
  constructor(private readonly file?: string) {}

  /**
   * Records a claim, or throws when it would overfill a device. The same step claiming its lease
   * twice is a no-op; another step claiming that lease (a forged or stale grant) is refused.
   */
  claim(claim: DeviceClaim): void {
    const existing = this.claims.get(claim.leaseId);
    if (existing) {
      if (existing.stepId === claim.stepId) return;
      throw new DeviceConflictError(
        `lease ${claim.leaseId} already runs step ${existing.stepId} on this node; refusing it for step ${claim.stepId}`,
        true,
      );
    }
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
    this.claims.set(claim.leaseId, { ...claim });
    this.save();
  }

  /** Records the process group running for a lease. */
  setProcessGroup(leaseId: string, pgid: number): void {
    const claim = this.claims.get(leaseId);
    if (!claim) return;
    claim.pgid = pgid;
    this.save();
  }

  /** Drops a lease's claim. */
  free(leaseId: string): void {
    if (this.claims.delete(leaseId)) this.save();
  }

  /** Current claims, for status and reconciliation. */
  list(): DeviceClaim[] {
    return [...this.claims.values()];
  }

  /**
   * Claims left in the file by a previous life of the agent. Their launches died with it, so
   * the caller kills what is left of their process groups.
   */
  takeOrphans(): DeviceClaim[] {
    if (!this.file || !existsSync(this.file)) return [];
    let orphans: DeviceClaim[] = [];
    try {
      const parsed: unknown = JSON.parse(readFileSync(this.file, 'utf8'));
      if (Array.isArray(parsed)) orphans = parsed as DeviceClaim[];
    } catch {
      orphans = [];
    }
    this.save();
    return orphans;
  }

  private save(): void {
    if (!this.file) return;
    mkdirSync(path.dirname(this.file), { recursive: true });
    const tmp = `${this.file}.tmp`;
    writeFileSync(tmp, JSON.stringify(this.list()));
    renameSync(tmp, this.file);
  }
}
