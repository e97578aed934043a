/**
 * The environment a workload starts with: only allowlisted variables of the agent pass through,
 * then the step's explicit values, then allot's own.
 */

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
