/**
 * Activities run by node agents.
 */
export { createActivities, stepPaths, safeName, tail, killGroup, LOG_TAIL_LINES } from './launch';
export type { AgentContext } from './launch';
export { LeaseLedger, DeviceConflictError } from './ledger';
export { DEFAULT_ENV_ALLOWLIST } from './environment';

import type { createActivities } from './launch';
/** The activity interface, for `proxyActivities<AllotActivities>` in workflows. */
export type AllotActivities = ReturnType<typeof createActivities>;
