/**
 * Words for reasons' messages: what a request asks for and when something is due, as people read
 * them in `allot queue` and the simulator's report.
 */
import { formatCpu, formatGpu, formatMemory } from './quantity';
import type { PendingRequest } from './types';

/**
 * What a request asks for: `gpu 2 (A100), cpu 4, memory 16Gi × 2 replicas on separate nodes` (a
 * packed gang's replicas may share one).
 */
export function describeRequest(request: Pick<PendingRequest, 'resources' | 'replicas' | 'replicaPlacement'>): string {
  const r = request.resources;
  const parts: string[] = [];
  if (r.gpuMilli > 0) {
    const constraint = [
      r.gpuModels.length > 0 ? r.gpuModels.join('|') : '',
      r.gpuMemoryMiB > 0 ? `${formatMemory(r.gpuMemoryMiB)} each` : '',
    ].filter((s) => s !== '');
    parts.push(`gpu ${formatGpu(r.gpuMilli)}${constraint.length > 0 ? ` (${constraint.join(', ')})` : ''}`);
  }
  parts.push(`cpu ${formatCpu(r.cpuMilli)}`, `memory ${formatMemory(r.memoryMiB)}`);
  for (const [k, v] of Object.entries(r.custom ?? {})) parts.push(`${k} ${v}`);
  const replicas = request.replicas ?? 1;
  if (replicas <= 1) return parts.join(', ');
  return `${parts.join(', ')} × ${replicas} replicas${request.replicaPlacement === 'pack' ? '' : ' on separate nodes'}`;
}

/** When something at `at` (ms) happens, relative to `now`: `in 90s`, or `at no known time`. */
export function describeTime(at: number, now: number): string {
  if (!Number.isFinite(at)) return 'at no known time: it needs resources held by work with no time limit';
  return `in ${Math.max(0, Math.round((at - now) / 1000))}s`;
}
