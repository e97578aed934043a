/**
 * Watches one running workload: samples its CPU, resident memory, GPU utilization and GPU memory,
 * keeps mean and peak of each, and enforces its memory limit where the kernel does not (no
 * cgroup): past the limit it calls `onMemoryExceeded`, once, and the caller kills the group.
 */
import type { StepUsage, UsageStat } from '../workflows/usage-types';
import type { StepCgroup } from './cgroup';
import type { ProcessStat } from './proc';
import { CpuMeter, workloadProcesses } from './proc';

const MiB = 1024 * 1024;

/** A GPU sample of the node, as `nvidia-smi` gives it. */
export interface GpuSnapshot {
  gpus: { index: number; utilizationPercent?: number }[];
  processes: { pid: number; usedMiB?: number }[];
}

/** Node-wide GPU sampling, shared by the launches running on the node. */
export interface GpuUsageSource {
  /** Starts sampling for one more workload; the returned function stops it when no one needs it. */
  subscribe(): () => void;
  /** The latest sample, if one was taken. */
  latest(): GpuSnapshot | undefined;
}

/** The workload's use right now. */
export interface CurrentUsage {
  cpuCores?: number;
  memoryMiB?: number;
  gpuUtilPercent?: number;
  gpuMemoryMiB?: number;
}

/** What the monitor watches. */
export interface MonitorOptions {
  /** First process of the workload, leader of its process group. */
  rootPid: number;
  /** Time between samples, ms. */
  intervalMs: number;
  /** Memory limit, bytes; enforced here unless a cgroup enforces it. */
  memoryLimitBytes?: number;
  /** The workload's cgroup: memory and CPU are read from it, and the kernel enforces the limit. */
  cgroup?: StepCgroup;
  /** GPU samples of the node; absent on a node without `nvidia-smi`. */
  gpu?: GpuUsageSource;
  /** `nvidia-smi` indices of the workload's GPUs (empty: no GPU measures). */
  gpuIndices: number[];
  /** Called once when the workload's memory passes its limit (polling only). */
  onMemoryExceeded: (peakBytes: number) => void;
}

class Stat {
  private sum = 0;
  private n = 0;
  peak = 0;
  add(v: number): void {
    this.sum += v;
    this.n += 1;
    if (v > this.peak) this.peak = v;
  }
  get count(): number {
    return this.n;
  }
  result(mean = this.n > 0 ? this.sum / this.n : 0): UsageStat | undefined {
    return this.n > 0 ? { mean: round(mean), peak: round(this.peak) } : undefined;
  }
}

function round(v: number): number {
  return Math.round(v * 100) / 100;
}

/** Samples a workload until stopped. */
export class WorkloadMonitor {
  private readonly cpu = new Stat();
  private readonly memory = new Stat();
  private readonly gpuUtil = new Stat();
  private readonly gpuMemory = new Stat();
  private readonly cpuMeter = new CpuMeter();
  private cpuSeconds = 0;
  private lastCgroupCpu: { at: number; seconds: number } | undefined;
  private startedAt = Date.now();
  private timer: NodeJS.Timeout | undefined;
  private releaseGpu: (() => void) | undefined;
  private samples = 0;
  private current: CurrentUsage = {};
  private exceeded = false;
  /** Highest memory seen, bytes. */
  peakMemoryBytes = 0;

  constructor(private readonly options: MonitorOptions) {}

  /** Takes a first sample now, then one every interval. */
  start(): void {
    this.startedAt = Date.now();
    if (this.options.gpu && this.options.gpuIndices.length > 0) this.releaseGpu = this.options.gpu.subscribe();
    this.sample();
    this.timer = setInterval(() => this.sample(), this.options.intervalMs);
  }

  /** Stops sampling. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.releaseGpu?.();
    this.releaseGpu = undefined;
    const peak = this.options.cgroup?.read().peakBytes;
    if (peak !== undefined && peak > this.peakMemoryBytes) this.peakMemoryBytes = peak;
  }

  /** The latest sample. */
  latest(): CurrentUsage {
    return this.current;
  }

  /** Mean and peak so far. */
  usage(): StepUsage {
    const elapsed = (Date.now() - this.startedAt) / 1000;
    const memory = this.memory.result();
    return {
      samples: this.samples,
      intervalMs: this.options.intervalMs,
      ...(this.cpu.count > 0 || this.cpuSeconds > 0
        ? {
            cpuCores: {
              mean: round(elapsed > 0 ? this.cpuSeconds / elapsed : 0),
              peak: round(this.cpu.peak),
            },
          }
        : {}),
      ...(memory ? { memoryMiB: { mean: memory.mean, peak: round(this.peakMemoryBytes / MiB) } } : {}),
      ...(this.gpuUtil.result() ? { gpuUtilPercent: this.gpuUtil.result() } : {}),
      ...(this.gpuMemory.result() ? { gpuMemoryMiB: this.gpuMemory.result() } : {}),
    };
  }

  /** Takes one sample. */
  sample(): void {
    const now = Date.now();
    const cgroup = this.options.cgroup?.read();
    const processes: ProcessStat[] = workloadProcesses(this.options.rootPid);
    const current: CurrentUsage = {};
    if (processes.length === 0 && !cgroup) return;
    this.samples += 1;

    // CPU: the cgroup's counter where there is one (it includes processes that have exited).
    if (cgroup?.cpuSeconds !== undefined) {
      if (this.lastCgroupCpu) {
        const used = Math.max(0, cgroup.cpuSeconds - this.lastCgroupCpu.seconds);
        this.cpuSeconds += used;
        const dt = (now - this.lastCgroupCpu.at) / 1000;
        if (dt > 0) current.cpuCores = used / dt;
      } else this.cpuSeconds += cgroup.cpuSeconds;
      this.lastCgroupCpu = { at: now, seconds: cgroup.cpuSeconds };
    } else {
      const { cores, cpuSeconds } = this.cpuMeter.update(processes, now);
      this.cpuSeconds += cpuSeconds;
      current.cpuCores = cores;
    }
    if (current.cpuCores !== undefined) this.cpu.add(current.cpuCores);

    // Memory: the cgroup's charge, or the resident memory of the processes.
    const bytes = cgroup?.memoryBytes ?? processes.reduce((s, p) => s + p.rssBytes, 0);
    current.memoryMiB = round(bytes / MiB);
    this.memory.add(current.memoryMiB);
    if (bytes > this.peakMemoryBytes) this.peakMemoryBytes = bytes;
    if (cgroup?.peakBytes !== undefined && cgroup.peakBytes > this.peakMemoryBytes) {
      this.peakMemoryBytes = cgroup.peakBytes;
    }
    const limit = this.options.memoryLimitBytes;
    if (!this.options.cgroup && limit !== undefined && bytes > limit && !this.exceeded) {
      this.exceeded = true;
      this.options.onMemoryExceeded(this.peakMemoryBytes);
    }

    // GPUs: the device utilization of the step's GPUs, and the GPU memory of its processes.
    const gpu = this.options.gpuIndices.length > 0 ? this.options.gpu?.latest() : undefined;
    if (gpu) {
      const utils = gpu.gpus
        .filter((g) => this.options.gpuIndices.includes(g.index) && g.utilizationPercent !== undefined)
        .map((g) => g.utilizationPercent as number);
      if (utils.length > 0) {
        current.gpuUtilPercent = round(utils.reduce((s, u) => s + u, 0) / utils.length);
        this.gpuUtil.add(current.gpuUtilPercent);
      }
      const pids = new Set(processes.map((p) => p.pid));
      const mine = gpu.processes.filter((p) => pids.has(p.pid) && p.usedMiB !== undefined);
      current.gpuMemoryMiB = mine.reduce((s, p) => s + (p.usedMiB ?? 0), 0);
      this.gpuMemory.add(current.gpuMemoryMiB);
    }
    this.current = current;
  }
}
