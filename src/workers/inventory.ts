/**
 * A node's inventory: static from flags (like Slurm's gres.conf), or detected with
 * systeminformation and nvidia-smi. Flags override detection field by field; `--label k=v` adds
 * labels.
 */
import os from 'node:os';
import si from 'systeminformation';
import type { Issue, NodeSpec } from '../core';
import { ValidationError, describeValue, parseCpu, parseCustomPairs, parseMemory, QuantityError } from '../core';
import type { DetectedGpu } from './detect/gpus';
import { detectGpus, schedulableGpus } from './detect/gpus';

/** Inventory flags of `allot agent` and `allot dev`. */
export interface InventoryFlags {
  /** Number of GPUs to declare instead of detecting them. */
  gpus?: number | string;
  /** Model of the GPUs (declared or detected). @default "GPU" when declared, the detected model otherwise */
  gpuModel?: string;
  /** Memory of each GPU (declared or detected). @default "16Gi" when declared, the detected memory otherwise */
  gpuMemory?: string;
  /** CPU to offer. @default detected cores */
  cpu?: string;
  /** Memory to offer. @default detected total memory */
  memory?: string;
  /** Extra node labels. */
  labels?: Record<string, string>;
  /** Custom resources the node offers, as `NAME=N` (`--resource nvme=2`, like Slurm gres). @default none */
  resources?: string[];
}

/** A node's inventory, with how its devices are named to workloads. */
export interface Inventory {
  spec: NodeSpec;
  /** Device index → the id `CUDA_VISIBLE_DEVICES` takes for it (the index, or a `MIG-...` UUID). */
  visibleIds: Record<number, string>;
  /** What detection found, when GPUs were detected rather than declared. */
  detected?: DetectedGpu[];
}

/** Builds a node's inventory from flags, detecting what the flags leave out. */
export async function buildInventory(nodeId: string, flags: InventoryFlags): Promise<NodeSpec> {
  return (await detectInventory(nodeId, flags)).spec;
}

/** Like {@link buildInventory}, with the device names and what was detected. */
export async function detectInventory(nodeId: string, flags: InventoryFlags): Promise<Inventory> {
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
  if (flags.gpuModel !== undefined && (flags.gpuModel.trim() === '' || flags.gpuModel.includes('|'))) {
    issues.push({
      code: 'invalid_type',
      path: ['--gpu-model'],
      message: `must be one model name such as A100 (no "|"), got ${describeValue(flags.gpuModel)}`,
    });
  }
  const custom = parseCustomPairs(flags.resources, ['--resource'], issues);
  if (issues.length > 0) throw new ValidationError(issues);

  let inventory: Omit<Inventory, 'spec'> & { gpus: NodeSpec['gpus'] };
  if (gpuCount !== undefined) {
    const gpus = Array.from({ length: gpuCount }, (_, index) => ({
      index,
      model: flags.gpuModel ?? 'GPU',
      memoryMiB: gpuMemoryMiB ?? 16 * 1024,
    }));
    inventory = { gpus, visibleIds: Object.fromEntries(gpus.map((g) => [g.index, String(g.index)])) };
  } else {
    const detected = await detectGpus();
    const { devices, visibleIds } = schedulableGpus(detected);
    let gpus = devices;
    if (flags.gpuModel) gpus = gpus.map((g) => ({ ...g, model: flags.gpuModel ?? g.model }));
    if (gpuMemoryMiB !== undefined) gpus = gpus.map((g) => ({ ...g, memoryMiB: gpuMemoryMiB }));
    inventory = { gpus, visibleIds, detected };
  }
  const [detectedCpu, detectedMem] = await Promise.all([cpuMilli ?? detectCpuMilli(), memoryMiB ?? detectMemoryMiB()]);
  const { gpus, ...rest } = inventory;
  return {
    spec: {
      id: nodeId,
      cpuMilli: detectedCpu,
      memoryMiB: detectedMem,
      gpus,
      labels: { ...flags.labels },
      ...(custom ? { custom } : {}),
    },
    ...rest,
  };
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

/** The custom resources a node offers, for start-up lines: `nvme 2, lic 1`; empty when none. */
export function describeCustom(spec: Pick<NodeSpec, 'custom'>): string {
  return Object.entries(spec.custom ?? {})
    .map(([name, n]) => `${name} ${n}`)
    .join(', ');
}

/** One line per detected GPU, for the agent's start-up message. */
export function describeDetected(detected: DetectedGpu[]): string[] {
  return detected.map((g) => {
    const base = `GPU ${g.index}: ${g.name} (${g.model}), ${Math.round(g.memoryMiB / 1024)} GiB${g.uuid ? `, ${g.uuid}` : ''}`;
    if (!g.migEnabled) return base;
    return g.mig.length === 0
      ? `${base}, MIG enabled without instances (offers nothing)`
      : `${base}, MIG: ${g.mig.map((m) => m.profile).join(', ')}`;
  });
}
