/**
 * Validation of user resource specs into integer requests, and arithmetic on them.
 */
import type { Issue } from './errors';
import { describeValue } from './errors';
import { QuantityError, parseCpu, parseGpu, parseMemory } from './quantity';
import type { ResourceRequest, ResourceSpec } from './types';

/** Defaults applied when a spec omits a field. */
export const DEFAULT_RESOURCES = { cpu: '1', memory: '1Gi', gpu: 0 } as const;

const KNOWN = new Set(['gpu', 'cpu', 'memory', 'gpuMemory', 'gpuModel', 'labels', 'custom']);

/**
 * Turns a user's resource spec into a request, collecting every problem at once.
 * `path` prefixes the issue paths (e.g. `['resources']`).
 */
export function parseResources(
  spec: unknown,
  path: (string | number)[] = ['resources'],
): { request?: ResourceRequest; issues: Issue[] } {
  const issues: Issue[] = [];
  if (spec === undefined || spec === null) spec = {};
  if (typeof spec !== 'object' || Array.isArray(spec)) {
    return {
      issues: [{ code: 'invalid_type', path, message: `must be an object, got ${describeValue(spec)}` }],
    };
  }
  const s = spec as ResourceSpec & Record<string, unknown>;
  for (const key of Object.keys(s)) {
    if (!KNOWN.has(key)) {
      issues.push({
        code: 'unknown_field',
        path: [...path, key],
        message: `is not a resource; allowed are ${[...KNOWN].join(', ')}`,
      });
    }
  }
  const quantity = <T>(field: string, value: unknown, parse: (v: unknown, f: string) => T, fallback: T): T => {
    if (value === undefined) return fallback;
    try {
      return parse(value, field);
    } catch (err) {
      if (err instanceof QuantityError) {
        issues.push({
          code: err.code,
          path: [...path, field],
          message: `must be ${err.allowed}, got ${describeValue(value)}`,
        });
        return fallback;
      }
      throw err;
    }
  };
  const cpuMilli = quantity('cpu', s.cpu, parseCpu, parseCpu(DEFAULT_RESOURCES.cpu));
  const memoryMiB = quantity('memory', s.memory, parseMemory, parseMemory(DEFAULT_RESOURCES.memory));
  const gpuMilli = quantity('gpu', s.gpu, parseGpu, 0);
  const gpuMemoryMiB = quantity('gpuMemory', s.gpuMemory, parseMemory, 0);
  let gpuModels: string[] = [];
  if (s.gpuModel !== undefined) {
    if (typeof s.gpuModel !== 'string' || s.gpuModel.trim() === '') {
      issues.push({
        code: 'invalid_type',
        path: [...path, 'gpuModel'],
        message: `must be a model name or alternatives separated by "|" (e.g. "A100|H100"), got ${describeValue(s.gpuModel)}`,
      });
    } else {
      gpuModels = s.gpuModel
        .split('|')
        .map((m) => m.trim())
        .filter((m) => m !== '');
    }
  }
  const labels: Record<string, string> = {};
  if (s.labels !== undefined) {
    if (typeof s.labels !== 'object' || s.labels === null || Array.isArray(s.labels)) {
      issues.push({
        code: 'invalid_type',
        path: [...path, 'labels'],
        message: `must be an object of string values, got ${describeValue(s.labels)}`,
      });
    } else {
      for (const [k, v] of Object.entries(s.labels)) {
        if (typeof v !== 'string') {
          issues.push({
            code: 'invalid_type',
            path: [...path, 'labels', k],
            message: `must be a string, got ${describeValue(v)}`,
          });
        } else labels[k] = v;
      }
    }
  }
  const custom = parseCustom(s.custom, [...path, 'custom'], issues);
  if (issues.length > 0) return { issues };
  if (cpuMilli === 0 && memoryMiB === 0 && gpuMilli === 0 && custom === undefined) {
    issues.push({ code: 'empty_request', path, message: 'must ask for some cpu, memory or gpu' });
    return { issues };
  }
  const request: ResourceRequest = { cpuMilli, memoryMiB, gpuMilli, gpuMemoryMiB, gpuModels, labels };
  if (custom !== undefined) request.custom = custom;
  return { request, issues };
}

/**
 * Parses custom integer resources (`{ licenses: 2 }`); `undefined` when absent or empty. Problems
 * go to `issues`.
 */
export function parseCustom(
  value: unknown,
  path: (string | number)[],
  issues: Issue[],
): Record<string, number> | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    issues.push({
      code: 'invalid_type',
      path,
      message: `must be an object of whole numbers like { "licenses": 2 }, got ${describeValue(value)}`,
    });
    return undefined;
  }
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
      issues.push({
        code: 'invalid_quantity',
        path: [...path, k],
        message: `must be a whole number >= 0, got ${describeValue(v)}`,
      });
    } else if (v > 0) out[k] = v;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/** Number of whole GPUs a request takes (0 for a share of one GPU). */
export function wholeGpus(request: ResourceRequest): number {
  return request.gpuMilli >= 1000 ? request.gpuMilli / 1000 : 0;
}

/** True when the request asks for a share of one GPU rather than whole GPUs. */
export function isFractional(request: ResourceRequest): boolean {
  return request.gpuMilli > 0 && request.gpuMilli < 1000;
}

/** Checks a request in integer units that arrived from outside (an Update or a signal). */
export function validateResourceRequest(value: unknown, path: (string | number)[] = ['resources']): Issue[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return [{ code: 'invalid_type', path, message: `must be an object, got ${describeValue(value)}` }];
  }
  const r = value as Partial<ResourceRequest>;
  const issues: Issue[] = [];
  for (const field of ['cpuMilli', 'memoryMiB', 'gpuMilli', 'gpuMemoryMiB'] as const) {
    const v = r[field];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
      issues.push({
        code: 'invalid_quantity',
        path: [...path, field],
        message: `must be a non-negative integer, got ${describeValue(v)}`,
      });
    }
  }
  const g = r.gpuMilli;
  if (typeof g === 'number' && g > 1000 && g % 1000 !== 0) {
    issues.push({
      code: 'invalid_quantity',
      path: [...path, 'gpuMilli'],
      message: `must be a multiple of 1000 above one GPU, got ${g}`,
    });
  }
  if (!Array.isArray(r.gpuModels) || r.gpuModels.some((m) => typeof m !== 'string' || !/^[^|\s]+$/.test(m))) {
    issues.push({
      code: 'invalid_type',
      path: [...path, 'gpuModels'],
      message: `must be an array of GPU model names (not empty, no spaces or '|'), got ${describeValue(r.gpuModels)}`,
    });
  }
  if (
    typeof r.labels !== 'object' ||
    r.labels === null ||
    Array.isArray(r.labels) ||
    Object.values(r.labels).some((v) => typeof v !== 'string')
  ) {
    issues.push({
      code: 'invalid_type',
      path: [...path, 'labels'],
      message: `must be an object of string values, got ${describeValue(r.labels)}`,
    });
  }
  if (r.custom !== undefined) parseCustom(r.custom, [...path, 'custom'], issues);
  return issues;
}
