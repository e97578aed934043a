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
 * What a custom resource may be called: a lowercase letter, then lowercase letters, digits, `_` or
 * `-`, at most 63 characters, and not a name the built-in resources use. A workload sees the amount
 * it holds as `ALLOT_RESOURCE_<NAME>` (upper case, `-` as `_`).
 */
export const CUSTOM_RESOURCE_NAME = /^[a-z][a-z0-9_-]{0,62}$/;

const RESERVED_CUSTOM_NAMES: ReadonlySet<string> = new Set(['gpu', 'cpu', 'memory']);

/** Why `name` cannot name a custom resource, as the end of a message, or `undefined` when it can. */
export function customNameProblem(name: string): string | undefined {
  if (RESERVED_CUSTOM_NAMES.has(name)) {
    return `must not be ${[...RESERVED_CUSTOM_NAMES].join(', ')} (built-in resources), got ${describeValue(name)}`;
  }
  if (!CUSTOM_RESOURCE_NAME.test(name)) {
    return `must be a lowercase letter, then lowercase letters, digits, "_" or "-" (at most 63, e.g. "nvme"), got ${describeValue(name)}`;
  }
  return undefined;
}

/**
 * Why `name` cannot stand beside the names already in `envNames` (variable → name): another maps to
 * the same `ALLOT_RESOURCE_<NAME>`, so a workload would see only one of the two amounts. Records it.
 */
function envClash(name: string, envNames: Map<string, string>): string | undefined {
  const env = customResourceEnvName(name);
  const other = envNames.get(env);
  if (other !== undefined && other !== name) {
    return `must not be given beside ${JSON.stringify(other)}: both are ${env} to a workload, got ${describeValue(name)}`;
  }
  envNames.set(env, name);
  return undefined;
}

/** The variable that tells a workload how much of custom resource `name` it holds. */
export function customResourceEnvName(name: string): string {
  return `ALLOT_RESOURCE_${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
}

/**
 * Parses custom integer resources (`{ licenses: 2 }`); `undefined` when absent or empty. Problems
 * go to `issues`. Names are checked against {@link CUSTOM_RESOURCE_NAME} unless `names` is `'any'`
 * (for what the pool already holds: a stricter check there would change how old histories replay).
 */
export function parseCustom(
  value: unknown,
  path: (string | number)[],
  issues: Issue[],
  names: 'checked' | 'any' = 'checked',
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
  const envNames = new Map<string, string>();
  for (const [k, v] of Object.entries(value)) {
    const badName = names === 'checked' ? (customNameProblem(k) ?? envClash(k, envNames)) : undefined;
    if (badName) issues.push({ code: 'invalid_name', path: [...path, k], message: badName });
    else if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
      issues.push({
        code: 'invalid_quantity',
        path: [...path, k],
        message: `must be a whole number >= 0, got ${describeValue(v)}`,
      });
    } else if (v > 0) out[k] = v;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/**
 * Parses `NAME=N` flags (`--resource nvme=2`, repeatable) into custom amounts; `undefined` when
 * none is given or all are 0. Problems go to `issues`, each at `path` (the flag) and quoting the flag.
 */
export function parseCustomPairs(
  values: readonly string[] | undefined,
  path: (string | number)[],
  issues: Issue[],
): Record<string, number> | undefined {
  const out: Record<string, number> = {};
  const seen = new Set<string>();
  const envNames = new Map<string, string>();
  const problem = (message: string): void => void issues.push({ code: 'invalid_resource', path, message });
  for (const v of values ?? []) {
    const eq = v.indexOf('=');
    if (eq <= 0) {
      problem(`must be NAME=N, a custom resource and a whole number (e.g. nvme=2), got ${describeValue(v)}`);
      continue;
    }
    const name = v.slice(0, eq);
    const amount = v.slice(eq + 1);
    const badName = customNameProblem(name) ?? (seen.has(name) ? undefined : envClash(name, envNames));
    if (badName) problem(`the name in ${JSON.stringify(v)} ${badName}`);
    else if (!/^\d{1,15}$/.test(amount)) {
      problem(`the amount in ${JSON.stringify(v)} must be a whole number >= 0, got ${describeValue(amount)}`);
    } else if (seen.has(name)) problem(`names ${name} twice (${JSON.stringify(v)}); give each resource once`);
    else {
      seen.add(name);
      if (Number(amount) > 0) out[name] = Number(amount);
    }
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
  if (r.custom !== undefined) parseCustom(r.custom, [...path, 'custom'], issues, 'any');
  return issues;
}
