/**
 * What a step's processes really used, sampled by the node agent while it ran, side by side with
 * what the step asked for (Slurm's `seff` is the model): the numbers to right-size requests with.
 */

/** Mean and peak of one measure over a run. */
export interface UsageStat {
  mean: number;
  peak: number;
}

/** What the step asked for, in the units of {@link StepUsage}. */
export interface RequestedResources {
  /** Cores. */
  cpu: number;
  memoryMiB: number;
  /** GPUs, or a share of one. */
  gpu: number;
  /** Memory at which the agent kills the workload, MiB (its request unless it set a higher `memoryLimit`). */
  memoryLimitMiB?: number;
  /** CPU the workload is held to, cores (cgroup `cpu.max`; advisory where the agent cannot set it). */
  cpuLimit?: number;
}

/** Usage of one run of a step. A measure is absent when the node cannot see it (no `nvidia-smi`, say). */
export interface StepUsage {
  /** Number of samples taken. */
  samples: number;
  /** Time between samples, ms. */
  intervalMs: number;
  /** CPU in use, cores (mean: CPU time over wall time). */
  cpuCores?: UsageStat;
  /** Resident memory of the workload's processes (or its cgroup's memory), MiB. */
  memoryMiB?: UsageStat;
  /** Utilization of the step's GPUs (their mean), percent. For a shared GPU, the whole device's. */
  gpuUtilPercent?: UsageStat;
  /** GPU memory held by the workload's processes, MiB. */
  gpuMemoryMiB?: UsageStat;
  /** What the step asked for. */
  requested?: RequestedResources;
  /** How memory was limited: `cgroup` (kernel-enforced), `polling` (the agent watches RSS) or `none`. */
  memoryEnforcement?: 'cgroup' | 'polling' | 'none';
}
