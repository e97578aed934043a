/**
 * GPU detection. systeminformation lists the controllers from `lspci` and merges in what
 * `nvidia-smi` says of each (name, memory) by PCI bus id, but gives no index, no UUID and no MIG
 * instances, and in a container `lspci` may list nothing. So the GPUs are `nvidia-smi`'s own list
 * (index, UUID, bus id, MIG mode, from `--query-gpu` and `-L`), completed with what
 * systeminformation knows of the same bus address; without `nvidia-smi`, systeminformation's
 * NVIDIA controllers are numbered in bus order.
 */
import si from 'systeminformation';
import type { GpuDevice } from '../../core';
import type { MigInstance, NvidiaGpuRow } from './nvidia-smi';
import { listMigInstances, queryGpus } from './nvidia-smi';

/** A MIG instance of a detected GPU. */
export interface DetectedMig {
  /** Profile, e.g. `3g.20gb`. */
  profile: string;
  /** `MIG-...`, for `CUDA_VISIBLE_DEVICES`. */
  uuid: string;
  /** Memory of the instance (from its profile), MiB. */
  memoryMiB: number;
}

/** A GPU as the agent detected it. */
export interface DetectedGpu {
  /** Index as `nvidia-smi` and `CUDA_VISIBLE_DEVICES` number it. */
  index: number;
  uuid?: string;
  vendor: string;
  /** Full product name, e.g. `NVIDIA A100-SXM4-80GB`. */
  name: string;
  /** Short model that steps ask for with `gpuModel`, e.g. `A100`. */
  model: string;
  memoryMiB: number;
  /** PCI bus id, e.g. `00000000:07:00.0`. */
  busId?: string;
  /** Whether MIG is enabled; then `mig` lists its instances. */
  migEnabled: boolean;
  mig: DetectedMig[];
}

/** A systeminformation graphics controller, reduced to what detection reads. */
interface Controller {
  vendor?: string;
  model?: string;
  name?: string;
  vram?: number | null;
  busAddress?: string;
  pciBus?: string;
}

/**
 * The short model of a product name, as users write it in `gpuModel`:
 * `NVIDIA A100-SXM4-80GB` → `A100`, `NVIDIA H100 80GB HBM3` → `H100`,
 * `Tesla V100-SXM2-16GB` → `V100`, `NVIDIA GeForce RTX 4090` → `RTX 4090`, `NVIDIA L40S` → `L40S`.
 */
export function shortModel(name: string): string {
  const words = name
    .replace(/^\s*(NVIDIA|Tesla|GeForce|Quadro)\s+/i, '')
    .replace(/^\s*(Tesla|GeForce|Quadro)\s+/i, '')
    .trim()
    .split(/\s+/);
  const [first = 'GPU', second] = words;
  if (/^(RTX|GTX|TITAN)$/i.test(first) && second !== undefined) return `${first} ${second.split('-')[0] ?? second}`;
  return first.split('-')[0] || first;
}

/** Memory of a MIG profile (`3g.20gb` → 20480 MiB). */
export function migProfileMemoryMiB(profile: string): number {
  const m = /(\d+)gb/i.exec(profile);
  return m ? Number(m[1]) * 1024 : 0;
}

/** The last part of a bus id, as lspci prints it: `00000000:0F:00.0` → `0f:00.0`. */
function busAddress(busId: string): string {
  return busId.toLowerCase().replace(/^[0-9a-f]+:(?=[0-9a-f]{2}:[0-9a-f]{2}\.)/, '');
}

/** Joins nvidia-smi's rows and MIG list with systeminformation's controllers. */
export function mergeDetection(rows: NvidiaGpuRow[], mig: MigInstance[], controllers: Controller[]): DetectedGpu[] {
  const nvidia = controllers.filter((c) => /nvidia/i.test(c.vendor ?? ''));
  if (rows.length === 0) {
    // No nvidia-smi: only what lspci (and clinfo) told systeminformation, numbered in bus order.
    return nvidia
      .filter((c) => (c.vram ?? 0) > 0)
      .sort((a, b) => (a.busAddress ?? '').localeCompare(b.busAddress ?? ''))
      .map((c, index) => {
        const name = c.name || c.model || 'GPU';
        return {
          index,
          vendor: c.vendor ?? 'NVIDIA',
          name,
          model: shortModel(name),
          memoryMiB: c.vram ?? 0,
          ...(c.busAddress ? { busId: c.busAddress } : {}),
          migEnabled: false,
          mig: [],
        };
      });
  }
  return [...rows]
    .sort((a, b) => a.index - b.index)
    .map((row) => {
      const address = busAddress(row.busId);
      const controller = nvidia.find((c) => c.busAddress && busAddress(c.busAddress) === address);
      const migEnabled = /^enabled$/i.test(row.migMode ?? '');
      return {
        index: row.index,
        uuid: row.uuid,
        vendor: controller?.vendor || 'NVIDIA Corporation',
        name: row.name,
        model: shortModel(row.name),
        memoryMiB: row.memoryTotalMiB || (controller?.vram ?? 0),
        busId: row.busId,
        migEnabled,
        mig: migEnabled
          ? mig
              .filter((m) => m.gpuIndex === row.index)
              .sort((a, b) => a.device - b.device)
              .map((m) => ({ profile: m.profile, uuid: m.uuid, memoryMiB: migProfileMemoryMiB(m.profile) }))
          : [],
      };
    });
}

/** Detects the machine's GPUs; an empty list (never an error) on a machine without any. */
export async function detectGpus(): Promise<DetectedGpu[]> {
  const [rows, mig, controllers] = await Promise.all([
    queryGpus(),
    listMigInstances(),
    si
      .graphics()
      .then((g) => g.controllers as Controller[])
      .catch(() => [] as Controller[]),
  ]);
  return mergeDetection(rows, mig, controllers);
}

/** The devices a node offers, and what `CUDA_VISIBLE_DEVICES` names each of them by. */
export interface SchedulableGpus {
  devices: GpuDevice[];
  /** Device index → the id a workload sees it by (the index, or a `MIG-...` UUID). */
  visibleIds: Record<number, string>;
}

/**
 * The schedulable devices of detected GPUs. A GPU without MIG is one device with its own index. A
 * GPU with MIG enabled offers its instances instead, each a device of its own (model
 * `A100 MIG 3g.20gb`, memory of its profile) numbered after the last physical index, and selected
 * by its `MIG-...` UUID; a MIG-enabled GPU without instances offers nothing.
 */
export function schedulableGpus(detected: DetectedGpu[]): SchedulableGpus {
  const devices: GpuDevice[] = [];
  const visibleIds: Record<number, string> = {};
  let next = detected.reduce((max, g) => Math.max(max, g.index + 1), 0);
  for (const g of detected) {
    if (!g.migEnabled) {
      devices.push({ index: g.index, model: g.model, memoryMiB: g.memoryMiB, ...(g.uuid ? { uuid: g.uuid } : {}) });
      visibleIds[g.index] = String(g.index);
      continue;
    }
    for (const m of g.mig) {
      const index = next++;
      devices.push({ index, model: `${g.model} MIG ${m.profile}`, memoryMiB: m.memoryMiB, uuid: m.uuid });
      visibleIds[index] = m.uuid;
    }
  }
  return { devices, visibleIds };
}
