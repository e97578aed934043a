/**
 * A node's inventory: static from flags (like Slurm's gres.conf), or detected with
 * systeminformation. Flags override detection field by field.
 */
import os from 'node:os';
import si from 'systeminformation';
import type { GpuDevice, Issue, NodeSpec } from '../core';
import { ValidationError, describeValue, parseCpu, parseMemory, QuantityError } from '../core';

/** Inventory flags of `allot agent` and `allot dev`. */
export interface InventoryFlags {
  /** Number of GPUs to declare instead of detecting them. */
  gpus?: number | string;
  /** Model of the declared GPUs. @default "GPU" */
  gpuModel?: string;
  /** Memory of each declared GPU. @default "16Gi" */
  gpuMemory?: string;
  /** CPU to offer. @default detected cores */
  cpu?: string;
  /** Memory to offer. @default detected total memory */
  memory?: string;
  /** Extra node labels. */
  labels?: Record<string, string>;
}

/** Builds a node's inventory from flags, detecting what the flags leave out. */
export async function buildInventory(nodeId: string, flags: InventoryFlags): Promise<NodeSpec> {
  const issues: Issue[] = [];
  const quantity = <T>(field: string, value: unknown, parse: (v: unknown, f: string) => T): T | undefined => {
    if (value === undefined) return undefined;
    try {
      return parse(value, field);
    } catch (err) {
      if (!(err instanceof QuantityError)) throw err;
      issues.push({
        code: err.code,
        path: [`--${kebab(field)}`],
        message: `must be ${err.allowed}, got ${describeValue(value)}`,
      });
      return undefined;
    }
  };
  const cpuMilli = quantity('cpu', flags.cpu, parseCpu);
  const memoryMiB = quantity('memory', flags.memory, parseMemory);
  const gpuMemoryMiB = quantity('gpuMemory', flags.gpuMemory, parseMemory);
  let gpuCount: number | undefined;
  if (flags.gpus !== undefined) {
    const n = typeof flags.gpus === 'string' && /^\d+$/.test(flags.gpus) ? Number(flags.gpus) : flags.gpus;
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0 || n > 1024) {
      issues.push({
        code: 'invalid_quantity',
        path: ['--gpus'],
        message: `must be a whole number of GPUs from 0 to 1024, got ${describeValue(flags.gpus)}`,
      });
    } else gpuCount = n;
  }
  if (issues.length > 0) throw new ValidationError(issues);

  let gpus: GpuDevice[];
  if (gpuCount !== undefined) {
    gpus = Array.from({ length: gpuCount }, (_, index) => ({
      index,
      model: flags.gpuModel ?? 'GPU',
      memoryMiB: gpuMemoryMiB ?? 16 * 1024,
    }));
  } else {
    gpus = await detectGpus();
    if (flags.gpuModel) gpus = gpus.map((g) => ({ ...g, model: flags.gpuModel ?? g.model }));
    if (gpuMemoryMiB !== undefined) gpus = gpus.map((g) => ({ ...g, memoryMiB: gpuMemoryMiB }));
  }
  const detectedCpu = cpuMilli ?? (await detectCpuMilli());
  const detectedMem = memoryMiB ?? (await detectMemoryMiB());
  return { id: nodeId, cpuMilli: detectedCpu, memoryMiB: detectedMem, gpus, labels: { ...flags.labels } };
}

/** NVIDIA GPUs as systeminformation reports them; none on a machine without them. */
export async function detectGpus(): Promise<GpuDevice[]> {
  try {
    const graphics = await si.graphics();
    return graphics.controllers
      .filter((c) => /nvidia/i.test(c.vendor ?? '') && (c.vram ?? 0) > 0)
      .map((c, index) => ({ index, model: c.model || c.name || 'GPU', memoryMiB: c.vram ?? 0 }));
  } catch {
    return [];
  }
}

async function detectCpuMilli(): Promise<number> {
  try {
    const cpu = await si.cpu();
    return (cpu.cores || os.cpus().length) * 1000;
  } catch {
    return os.cpus().length * 1000;
  }
}

async function detectMemoryMiB(): Promise<number> {
  try {
    return Math.floor((await si.mem()).total / (1024 * 1024));
  } catch {
    return Math.floor(os.totalmem() / (1024 * 1024));
  }
}

function kebab(s: string): string {
  return s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}
