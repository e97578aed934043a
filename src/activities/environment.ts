/**
 * The environment a workload starts with: only allowlisted variables of the agent pass through,
 * then the step's explicit values, then allot's own (its GPUs, ids and folders).
 */
import { customResourceEnvName } from '../core';
import type { GangLaunch, LaunchInput } from '../workflows/step-types';
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
  if (input.gang) Object.assign(allotEnv, gangEnvironment(input.gang, input.gpuIndices.length));
  // One variable per custom resource held, so that a workload knows how many NVMe slots (say) are its own.
  for (const [name, amount] of Object.entries(input.custom ?? {}))
    allotEnv[customResourceEnvName(name)] = String(amount);
  return workloadEnv(process.env, ctx.envAllowlist ?? DEFAULT_ENV_ALLOWLIST, input.env, allotEnv);
}

/**
 * What a replica of a gang needs to find the others, as torchrun names it: one node per replica
 * (`NNODES`, `NODE_RANK`), replica 0's address and port (`MASTER_ADDR`, `MASTER_PORT`), and for
 * programs that run one process per replica `WORLD_SIZE` and `RANK`. `LOCAL_WORLD_SIZE` is the
 * replica's GPU count (1 for a replica without GPUs): the processes torchrun starts per node.
 */
export function gangEnvironment(gang: GangLaunch, gpus: number): Record<string, string> {
  return {
    ALLOT_GANG_ID: gang.id,
    NNODES: String(gang.size),
    NODE_RANK: String(gang.rank),
    MASTER_ADDR: gang.masterAddr,
    MASTER_PORT: String(gang.masterPort),
    WORLD_SIZE: String(gang.size),
    RANK: String(gang.rank),
    LOCAL_WORLD_SIZE: String(Math.max(1, gpus)),
  };
}
