/**
 * Readers for the Alibaba PAI GPU-sharing cluster trace (v2023), published with "Beware of
 * Fragmentation: Scheduling GPU-Sharing Workloads with Fragmentation Gradient Descent" (Weng et
 * al., USENIX ATC '23): node lists `sn,cpu_milli,memory_mib,gpu,model` and pod lists
 * `name,cpu_milli,memory_mib,num_gpu,gpu_milli[,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time]`.
 */
import type { Issue, NodeSpec, ResourceRequest } from '../../core';
import { PRIORITY_CLASSES } from '../../core';
import type { CsvRow } from '../csv';
import { parseCsv, readRows, wholeNumber } from '../csv';
import { MAX_GPUS_PER_NODE } from '../scenario';

/** Device memory (MiB) of the trace's GPU models where public; 0 where the model is internal. */
export const ALIBABA_GPU_MEMORY_MIB: Readonly<Record<string, number>> = {
  T4: 16_384,
  P100: 16_384,
  V100M16: 16_384,
  V100M32: 32_768,
  A10: 24_576,
};

/** One task of the pod list. */
export interface AlibabaTask {
  name: string;
  resources: ResourceRequest;
  /** `qos` mapped to a priority: LS and Guaranteed high, Burstable normal, BE low. */
  priority: number;
  /** Seconds; absent in lists without times. */
  creationTime?: number;
  scheduledTime?: number;
  deletionTime?: number;
}

const QOS_PRIORITY: Record<string, number> = {
  LS: PRIORITY_CLASSES.high ?? 100,
  Guaranteed: PRIORITY_CLASSES.high ?? 100,
  Burstable: 0,
  BE: PRIORITY_CLASSES.low ?? -100,
};

/** Reads a node list into node specs (GPU indices 0..gpu-1). */
export function parseAlibabaNodes(text: string, file: string): NodeSpec[] {
  const rows = parseCsv(text, file, ['sn', 'cpu_milli', 'memory_mib', 'gpu', 'model']);
  return readRows(rows, file, (row, issues) => {
    const cpu = wholeNumber(row, 'cpu_milli', issues);
    const memory = wholeNumber(row, 'memory_mib', issues);
    const gpus = wholeNumber(row, 'gpu', issues);
    const model = row.fields.model ?? '';
    const name = row.fields.sn ?? '';
    if (name === '')
      issues.push({ code: 'invalid_field', path: [`line ${row.line}`, 'sn'], message: 'must be a node name' });
    if (gpus !== undefined && gpus > MAX_GPUS_PER_NODE) {
      issues.push({
        code: 'invalid_field',
        path: [`line ${row.line}`, 'gpu'],
        message: `must be at most ${MAX_GPUS_PER_NODE} GPUs per node, got ${gpus}`,
      });
      return undefined;
    }
    if (gpus !== undefined && gpus > 0 && model === '') {
      issues.push({
        code: 'invalid_field',
        path: [`line ${row.line}`, 'model'],
        message: `must name the GPU model of a node with ${gpus} GPUs`,
      });
    }
    if (cpu === undefined || memory === undefined || gpus === undefined) return undefined;
    return {
      id: name,
      cpuMilli: cpu,
      memoryMiB: memory,
      gpus: Array.from({ length: gpus }, (_, index) => ({
        index,
        model,
        memoryMiB: ALIBABA_GPU_MEMORY_MIB[model] ?? 0,
      })),
      labels: {},
    };
  });
}

/** Reads a pod list into tasks, in file order. */
export function parseAlibabaPods(text: string, file: string): AlibabaTask[] {
  const rows = parseCsv(text, file, ['name', 'cpu_milli', 'memory_mib', 'num_gpu', 'gpu_milli']);
  return readRows(rows, file, (row, issues) => parsePod(row, issues));
}

function parsePod(row: CsvRow, issues: Issue[]): AlibabaTask | undefined {
  const cpu = wholeNumber(row, 'cpu_milli', issues);
  const memory = wholeNumber(row, 'memory_mib', issues);
  const numGpu = wholeNumber(row, 'num_gpu', issues);
  const gpuMilli = wholeNumber(row, 'gpu_milli', issues);
  if (cpu === undefined || memory === undefined || numGpu === undefined || gpuMilli === undefined) return undefined;
  if (gpuMilli > 1000 || (numGpu > 1 && gpuMilli !== 1000 && gpuMilli !== 0)) {
    issues.push({
      code: 'invalid_field',
      path: [`line ${row.line}`, 'gpu_milli'],
      message: `must be 0..1000 (and 1000 when num_gpu > 1), got ${gpuMilli} with num_gpu ${numGpu}`,
    });
    return undefined;
  }
  const milli = numGpu === 0 ? 0 : numGpu === 1 ? (gpuMilli === 0 ? 1000 : gpuMilli) : numGpu * 1000;
  const spec = row.fields.gpu_spec ?? '';
  const task: AlibabaTask = {
    name: row.fields.name || `line-${row.line}`,
    resources: {
      cpuMilli: cpu,
      memoryMiB: memory,
      gpuMilli: milli,
      gpuMemoryMiB: 0,
      gpuModels: spec === '' ? [] : spec.split('|').filter((m) => m !== ''),
      labels: {},
    },
    priority: QOS_PRIORITY[row.fields.qos ?? ''] ?? 0,
  };
  const created = wholeNumber(row, 'creation_time', issues, true);
  const scheduled = wholeNumber(row, 'scheduled_time', issues, true);
  const deleted = wholeNumber(row, 'deletion_time', issues, true);
  if (created !== undefined) task.creationTime = created;
  if (scheduled !== undefined) task.scheduledTime = scheduled;
  if (deleted !== undefined) task.deletionTime = deleted;
  return task;
}
