/**
 * Node templates as administrators write them (the `setTemplates` Update, `allot template set` and the
 * `--autoscale` flag), read into `NodeTemplate`s with every problem reported at once, and back.
 */
import type { NodeTemplate } from './capacity';
import { TEMPLATE_LABEL } from './capacity';
import type { Issue } from './errors';
import { describeValue } from './errors';
import { QuantityError, parseCpu, parseMemory } from './quantity';

/** A template back in the form administrators write (and the setTemplates Update takes). */
export function templateToInput(t: NodeTemplate): NodeTemplateInput {
  const gpu = t.spec.gpus[0];
  return {
    name: t.name,
    max: t.max,
    gpus: t.spec.gpus.length,
    cpu: `${t.spec.cpuMilli}m`,
    memory: `${t.spec.memoryMiB}Mi`,
    labels: Object.fromEntries(Object.entries(t.spec.labels).filter(([k]) => k !== TEMPLATE_LABEL)),
    ...(gpu ? { gpuModel: gpu.model, gpuMemory: `${gpu.memoryMiB}Mi` } : {}),
  };
}

/** A template as an administrator writes it. */
export interface NodeTemplateInput {
  name: string;
  gpus?: number;
  gpuModel?: string;
  gpuMemory?: string | number;
  cpu?: string | number;
  memory?: string | number;
  labels?: Record<string, string>;
  max: number;
}

/** Turns a template input into a `NodeTemplate`, collecting every problem. */
export function parseNodeTemplate(
  value: unknown,
  path: (string | number)[] = [],
): { template?: NodeTemplate; issues: Issue[] } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return {
      issues: [{ code: 'invalid_type', path, message: `node template must be an object, got ${describeValue(value)}` }],
    };
  }
  const v = value as Partial<NodeTemplateInput>;
  const issues: Issue[] = [];
  if (typeof v.name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,40}$/.test(v.name)) {
    issues.push({
      code: 'invalid_name',
      path: [...path, 'name'],
      message: `must be 1-41 letters, digits, '.', '_' or '-', got ${describeValue(v.name)}`,
    });
  }
  if (typeof v.max !== 'number' || !Number.isSafeInteger(v.max) || v.max < 1 || v.max > 10_000) {
    issues.push({
      code: 'invalid_max',
      path: [...path, 'max'],
      message: `must be a whole number from 1 to 10000, got ${describeValue(v.max)}`,
    });
  }
  const gpus = v.gpus ?? 0;
  if (typeof gpus !== 'number' || !Number.isSafeInteger(gpus) || gpus < 0 || gpus > 64) {
    issues.push({
      code: 'invalid_quantity',
      path: [...path, 'gpus'],
      message: `must be a whole number of GPUs from 0 to 64, got ${describeValue(v.gpus)}`,
    });
  }
  const quantity = (
    field: string,
    raw: unknown,
    parse: (x: unknown, f: string) => number,
    fallback: number,
  ): number => {
    if (raw === undefined) return fallback;
    try {
      return parse(raw, field);
    } catch (err) {
      if (!(err instanceof QuantityError)) throw err;
      issues.push({
        code: err.code,
        path: [...path, field],
        message: `must be ${err.allowed}, got ${describeValue(raw)}`,
      });
      return fallback;
    }
  };
  const cpuMilli = quantity('cpu', v.cpu, parseCpu, 8000);
  const memoryMiB = quantity('memory', v.memory, parseMemory, 32 * 1024);
  const gpuMemoryMiB = quantity('gpuMemory', v.gpuMemory, parseMemory, 80 * 1024);
  if (issues.length > 0 || typeof v.name !== 'string' || typeof v.max !== 'number' || typeof gpus !== 'number')
    return { issues };
  return {
    template: {
      name: v.name,
      max: v.max,
      spec: {
        cpuMilli,
        memoryMiB,
        gpus: Array.from({ length: gpus }, (_, index) => ({
          index,
          model: v.gpuModel ?? 'GPU',
          memoryMiB: gpuMemoryMiB,
        })),
        labels: { ...(v.labels ?? {}) },
      },
    },
    issues,
  };
}

/**
 * `a100x2=3` → a template of 2 A100 GPUs, at most 3 nodes. The model is the part before `x`
 * (upper-cased), the GPU count the part after it.
 */
export function parseAutoscaleFlag(
  flag: string,
  base: { cpu?: string; memory?: string; gpuMemory?: string },
): { template?: NodeTemplate; issues: Issue[] } {
  const m = /^([A-Za-z0-9][A-Za-z0-9.-]*?)x(\d+)=(\d+)$/.exec(flag);
  if (!m) {
    return {
      issues: [
        {
          code: 'invalid_autoscale',
          path: ['--autoscale'],
          message: `must be <model>x<gpus>=<max nodes>, e.g. a100x2=3, got ${JSON.stringify(flag)}`,
        },
      ],
    };
  }
  const [, model = '', count = '0', max = '0'] = m;
  return parseNodeTemplate(
    {
      name: `${model}x${count}`,
      gpus: Number(count),
      gpuModel: model.toUpperCase(),
      max: Number(max),
      cpu: base.cpu,
      memory: base.memory,
      gpuMemory: base.gpuMemory,
    },
    ['--autoscale'],
  );
}
