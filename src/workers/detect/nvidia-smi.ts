/**
 * `nvidia-smi`, run and parsed: the GPUs with their index, UUID and bus id, their MIG instances,
 * and live utilization and memory per device and per process. Every function answers "nothing"
 * (an empty list) on a machine without the tool or without a driver, never an error.
 */
import { execFile } from 'node:child_process';

/** How long one `nvidia-smi` call may take, ms. A hung driver must not hang the agent. */
const NVIDIA_SMI_TIMEOUT_MS = 15_000;

/** One GPU as `nvidia-smi --query-gpu` reports it. */
export interface NvidiaGpuRow {
  index: number;
  uuid: string;
  name: string;
  /** PCI bus id, e.g. `00000000:18:00.0`. */
  busId: string;
  memoryTotalMiB: number;
  /** `Enabled`, `Disabled`, or undefined where the GPU has no MIG. */
  migMode?: string;
}

/** A MIG instance as `nvidia-smi -L` lists it. */
export interface MigInstance {
  /** Index of the parent GPU. */
  gpuIndex: number;
  /** Number of the instance on its GPU (`Device N`). */
  device: number;
  /** Profile, e.g. `3g.20gb`. */
  profile: string;
  /** `MIG-...`: what `CUDA_VISIBLE_DEVICES` takes to select the instance. */
  uuid: string;
}

/** Live use of one GPU. */
export interface GpuSample {
  index: number;
  uuid: string;
  /** Percent of time a kernel ran; undefined where not reported (MIG). */
  utilizationPercent?: number;
  memoryUsedMiB?: number;
}

/** GPU memory a process holds on one GPU. */
export interface GpuProcess {
  pid: number;
  gpuUuid: string;
  /** Undefined where not reported (MIG). */
  usedMiB?: number;
}

/** Runs `nvidia-smi` with arguments; undefined when it is missing or fails. */
export function runNvidiaSmi(args: string[]): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile(
      'nvidia-smi',
      args,
      { timeout: NVIDIA_SMI_TIMEOUT_MS, maxBuffer: 4 * 1024 * 1024, windowsHide: true },
      (err, stdout) => resolve(err ? undefined : stdout),
    );
  });
}

/**
 * Parses `--format=csv,noheader,nounits` output into one record per line, keyed by the queried
 * fields; `[N/A]`, `[Not Supported]` and the like become undefined.
 */
export function parseCsv(stdout: string, fields: readonly string[]): Record<string, string | undefined>[] {
  return stdout
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .map((line) => {
      const values = line.split(', ');
      const row: Record<string, string | undefined> = {};
      fields.forEach((f, i) => {
        const v = values[i]?.trim();
        row[f] = v === undefined || v === '' || /^\[.*\]$/.test(v) || v === 'N/A' ? undefined : v;
      });
      return row;
    });
}

function num(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : undefined;
}

const GPU_FIELDS = ['index', 'uuid', 'name', 'pci.bus_id', 'memory.total', 'mig.mode.current'] as const;

/** The GPUs with index, UUID, bus id and MIG mode; empty without nvidia-smi. */
export async function queryGpus(): Promise<NvidiaGpuRow[]> {
  const out = await runNvidiaSmi([`--query-gpu=${GPU_FIELDS.join(',')}`, '--format=csv,noheader,nounits']);
  if (out === undefined) return [];
  return parseGpuRows(out);
}

/** Parses the answer to the `--query-gpu` of {@link queryGpus}. */
export function parseGpuRows(stdout: string): NvidiaGpuRow[] {
  const rows: NvidiaGpuRow[] = [];
  for (const r of parseCsv(stdout, GPU_FIELDS)) {
    const index = num(r.index);
    if (index === undefined || r.uuid === undefined) continue;
    rows.push({
      index,
      uuid: r.uuid,
      name: r.name ?? 'GPU',
      busId: r['pci.bus_id'] ?? '',
      memoryTotalMiB: num(r['memory.total']) ?? 0,
      ...(r['mig.mode.current'] !== undefined ? { migMode: r['mig.mode.current'] } : {}),
    });
  }
  return rows;
}

/** MIG instances from `nvidia-smi -L`; empty without nvidia-smi or without MIG. */
export async function listMigInstances(): Promise<MigInstance[]> {
  const out = await runNvidiaSmi(['-L']);
  return out === undefined ? [] : parseMigList(out);
}

/**
 * Parses `nvidia-smi -L`:
 * ```
 * GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-5c89852c-...)
 *   MIG 3g.20gb     Device  0: (UUID: MIG-a5e1c4c2-...)
 * ```
 */
export function parseMigList(stdout: string): MigInstance[] {
  const instances: MigInstance[] = [];
  let gpuIndex: number | undefined;
  for (const line of stdout.split('\n')) {
    const gpu = /^GPU (\d+):/.exec(line);
    if (gpu) {
      gpuIndex = Number(gpu[1]);
      continue;
    }
    const mig = /^\s+MIG\s+(\S+)\s+Device\s+(\d+):\s+\(UUID:\s+(MIG-[^)\s]+)\)/.exec(line);
    if (mig && gpuIndex !== undefined) {
      instances.push({ gpuIndex, profile: mig[1] ?? '', device: Number(mig[2]), uuid: mig[3] ?? '' });
    }
  }
  return instances;
}

const SAMPLE_FIELDS = ['index', 'uuid', 'utilization.gpu', 'memory.used'] as const;
const APP_FIELDS = ['pid', 'gpu_uuid', 'used_memory'] as const;

/** Live utilization and memory of each GPU, and the GPU memory of each process using one; undefined without nvidia-smi. */
export async function sampleGpus(): Promise<{ gpus: GpuSample[]; processes: GpuProcess[] } | undefined> {
  const [gpuOut, appOut] = await Promise.all([
    runNvidiaSmi([`--query-gpu=${SAMPLE_FIELDS.join(',')}`, '--format=csv,noheader,nounits']),
    runNvidiaSmi([`--query-compute-apps=${APP_FIELDS.join(',')}`, '--format=csv,noheader,nounits']),
  ]);
  if (gpuOut === undefined) return undefined;
  const gpus: GpuSample[] = [];
  for (const r of parseCsv(gpuOut, SAMPLE_FIELDS)) {
    const index = num(r.index);
    if (index === undefined || r.uuid === undefined) continue;
    gpus.push({
      index,
      uuid: r.uuid,
      utilizationPercent: num(r['utilization.gpu']),
      memoryUsedMiB: num(r['memory.used']),
    });
  }
  const processes: GpuProcess[] = [];
  for (const r of parseCsv(appOut ?? '', APP_FIELDS)) {
    const pid = num(r.pid);
    if (pid === undefined || r.gpu_uuid === undefined) continue;
    processes.push({ pid, gpuUuid: r.gpu_uuid, usedMiB: num(r.used_memory) });
  }
  return { gpus, processes };
}
