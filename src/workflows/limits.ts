/**
 * A step's limits, enforced by the node agent: memory (its request unless it sets a higher
 * `memoryLimit`, as Slurm's `--mem` is enforced), CPU (its request unless it sets a higher
 * `cpuLimit`; cgroup `cpu.max` where the node has cgroup v2, advisory elsewhere) and time.
 */
import type { Issue, ResourceRequest } from '../core';
import { QuantityError, describeValue, formatCpu, formatMemory, parseCpu, parseMemory } from '../core';
import type { LaunchInput, StepInput } from './step-types';

/** Checks `memoryLimit` and `cpuLimit` against the request; every problem at once. */
export function validateLimits(s: Partial<StepInput>, request: ResourceRequest | undefined): Issue[] {
  const issues: Issue[] = [];
  const check = (
    field: 'memoryLimit' | 'cpuLimit',
    parse: (v: unknown, f: string) => number,
    requested: number | undefined,
    format: (n: number) => string,
    what: string,
  ): void => {
    const v = s[field];
    if (v === undefined) return;
    let limit: number;
    try {
      limit = parse(v, field);
    } catch (err) {
      if (!(err instanceof QuantityError)) throw err;
      issues.push({ code: err.code, path: [field], message: `must be ${err.allowed}, got ${describeValue(v)}` });
      return;
    }
    if (requested !== undefined && limit < requested) {
      issues.push({
        code: 'invalid_limit',
        path: [field],
        message: `must be at least the ${what} the step asks for (resources.${what} = ${format(requested)}), got ${describeValue(v)}`,
      });
    }
  };
  check('memoryLimit', parseMemory, request?.memoryMiB, formatMemory, 'memory');
  check('cpuLimit', parseCpu, request?.cpuMilli, formatCpu, 'cpu');
  return issues;
}

/** The limits and the request the launch carries to the agent. */
export function launchLimits(
  input: StepInput,
  request: ResourceRequest,
): Pick<LaunchInput, 'memoryLimitMiB' | 'cpuLimitMilli' | 'timeLimitMs' | 'requested'> {
  const memoryLimitMiB = input.memoryLimit !== undefined ? parseMemory(input.memoryLimit) : request.memoryMiB;
  const cpuLimitMilli = input.cpuLimit !== undefined ? parseCpu(input.cpuLimit) : request.cpuMilli;
  return {
    memoryLimitMiB,
    // A step that asks for no CPU is not held to none.
    ...(cpuLimitMilli > 0 ? { cpuLimitMilli } : {}),
    ...(input.timeLimitMs !== undefined ? { timeLimitMs: input.timeLimitMs } : {}),
    requested: {
      cpu: request.cpuMilli / 1000,
      memoryMiB: request.memoryMiB,
      gpu: request.gpuMilli / 1000,
      memoryLimitMiB,
      ...(cpuLimitMilli > 0 ? { cpuLimit: cpuLimitMilli / 1000 } : {}),
    },
  };
}
