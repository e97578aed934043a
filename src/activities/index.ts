/**
 * Activities run by node agents.
 */
export { createActivities, stepFolderName, stepPaths, safeName } from './launch';
export { LOG_TAIL_LINES, tail } from './log-tail';
export { killGroup } from './process-group';
export type { AgentContext, LaunchOutcome, RunningLaunch } from './context';
export type { LaunchFailureDetails } from './outcome';
export { LeaseLedger, DeviceConflictError } from './ledger';
export { DEFAULT_ENV_ALLOWLIST } from './environment';
export { prepareCgroups, StepCgroup } from './cgroup';
export type { CgroupSupport } from './cgroup';
export type { CurrentUsage, GpuSnapshot, GpuUsageSource } from './monitor';

import type { createActivities } from './launch';
/** The activity interface, for `proxyActivities<AllotActivities>` in workflows. */
export type AllotActivities = ReturnType<typeof createActivities>;
