/**
 * Node-wide GPU sampling with `nvidia-smi`, shared by every launch on the node: one pair of
 * `nvidia-smi` calls per interval however many steps run, and none while no step needs them.
 */
import type { GpuSnapshot, GpuUsageSource } from '../../activities/monitor';
import { sampleGpus } from './nvidia-smi';

/** Samples the node's GPUs while anyone is subscribed. */
export class GpuSampler implements GpuUsageSource {
  private subscribers = 0;
  private timer: NodeJS.Timeout | undefined;
  private snapshot: (GpuSnapshot & { at: number }) | undefined;
  private inFlight = false;

  /** @param intervalMs time between samples, ms. @default 2000 */
  constructor(private readonly intervalMs = 2000) {}

  subscribe(): () => void {
    this.subscribers += 1;
    if (this.subscribers === 1) {
      void this.take();
      this.timer = setInterval(() => void this.take(), this.intervalMs);
      this.timer.unref();
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.subscribers -= 1;
      if (this.subscribers === 0 && this.timer) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    };
  }

  latest(): GpuSnapshot | undefined {
    return this.snapshot;
  }

  private async take(): Promise<void> {
    if (this.inFlight) return;
    this.inFlight = true;
    try {
      const s = await sampleGpus();
      this.snapshot = s ? { ...s, at: Date.now() } : undefined;
    } finally {
      this.inFlight = false;
    }
  }
}
