/**
 * The environment a workload starts with: only allowlisted variables of the agent pass through,
 * then the step's explicit values, then allot's own (its GPUs, ids and folders).
 */
import { customResourceEnvName } from '../core';
import type { LaunchInput } from '../workflows/step-types';
import type { AgentContext } from './context';

/** Agent variables passed to every workload unless the agent is told otherwise. */
export const DEFAULT_ENV_ALLOWLIST = ['PATH', 'HOME', 'USER', 'LOGNAME', 'LANG', 'LC_ALL', 'LC_CTYPE', 'TZ', 'TMPDIR'];

/** Builds a workload's environment. */
export function workloadEnv(
  agentEnv: NodeJS.ProcessEnv,
  allowlist: readonly string[],
  explicit: Record<string, string>,
  allot: Record<string, string>,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of allowlist) {
    const v = agentEnv[name];
    if (v !== undefined) env[name] = v;
  }
  return { ...env, ...explicit, ...allot };
}

/** A step attempt's environment on this node: the agent's allowlist, the step's values, and allot's variables. */
export function stepEnvironment(
  ctx: AgentContext,
  input: LaunchInput,
  paths: { checkpoint: string; output: string; work: string },
  artifacts: Record<string, string> = {},
): Record<string, string> {
  const devices = input.gpuIndices.map((i) => ctx.visibleIds?.[i] ?? String(i)).join(',');
  const allotEnv: Record<string, string> = {
    CUDA_VISIBLE_DEVICES: devices,
    NVIDIA_VISIBLE_DEVICES: devices === '' ? 'void' : devices,
    ALLOT_STEP_ID: input.stepId,
    ALLOT_STEP_NAME: input.name,
    ALLOT_ATTEMPT: String(input.attempt),
    ALLOT_LEASE_ID: input.leaseId,
    ALLOT_NODE_ID: ctx.nodeId,
    ALLOT_CHECKPOINT_DIR: paths.checkpoint,
    ALLOT_OUTPUT: paths.output,
    ALLOT_WORK_DIR: paths.work,
    ...artifacts,
  };
  if (input.gpuFraction !== undefined) {
    allotEnv.ALLOT_GPU_FRACTION = String(input.gpuFraction);
    allotEnv.CUDA_MPS_ACTIVE_THREAD_PERCENTAGE = String(Math.max(1, Math.round(input.gpuFraction * 100)));
  }
  // One variable per custom resource held, so that a workload knows how many NVMe slots (say) are its own.
  for (const [name, amount] of Object.entries(input.custom ?? {}))
    allotEnv[customResourceEnvName(name)] = String(amount);
  return workloadEnv(process.env, ctx.envAllowlist ?? DEFAULT_ENV_ALLOWLIST, input.env, allotEnv);
}
