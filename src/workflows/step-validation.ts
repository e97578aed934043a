/**
 * Validation of step options: every problem at once, each naming the field, the value and the
 * allowed form.
 */
import type { Issue, ResourceRequest } from '../core';
import { describeValue, parseResources, validateGang, validateRequestLimits } from '../core';
import { validateArtifacts } from './artifacts';
import { validateLimits } from './limits';
import type { StepInput } from './step-types';

/** Priorities allowed for steps: larger runs first. */
export const PRIORITY_RANGE = { min: -1000, max: 1000 } as const;

export { MAX_REPLICAS } from '../core';

/** Every option of `step()`; anything else is a typo reported as `unknown_field`. */
const STEP_FIELDS: ReadonlySet<string> = new Set([
  'name',
  'command',
  'resources',
  'pool',
  'priority',
  'team',
  'env',
  'cwd',
  'gracePeriodMs',
  'timeLimitMs',
  'memoryLimit',
  'cpuLimit',
  'preemptible',
  'replicas',
  'replicaPlacement',
  'limits',
  'retry',
  'outputs',
  'inputs',
  'checkpointRetention',
  'keepWorkDir',
  'firstAttempt',
]);

const RETRY_FIELDS: ReadonlySet<string> = new Set([
  'maximumAttempts',
  'initialIntervalMs',
  'backoffCoefficient',
  'maximumIntervalMs',
  'nonRetryableExitCodes',
]);

/** Variables allot sets for every workload; a step cannot set them itself. */
const RESERVED_ENV = /^(ALLOT_|CUDA_VISIBLE_DEVICES$|NVIDIA_VISIBLE_DEVICES$)/;

/** What else the validation may check against, where the caller knows it. */
export interface StepValidationContext {
  /** Teams the pool knows (from its quotas); when given and not empty, any other team is rejected. */
  teams?: readonly string[];
}

/** The issue for a team the pool does not know, or `undefined` when it is known (or no list is kept). */
export function unknownTeamIssue(team: string, teams: readonly string[] | undefined): Issue | undefined {
  if (!teams || teams.length === 0 || teams.includes(team)) return undefined;
  return {
    code: 'unknown_team',
    path: ['team'],
    message: `must be one of the pool's teams (${[...teams].sort().join(', ')}), got ${describeValue(team)}; add a team with \`allot quota set ${team} ...\``,
  };
}

/** Checks a step's options and turns its resources into a request. */
export function validateStepInput(
  input: unknown,
  context: StepValidationContext = {},
): { request?: ResourceRequest; issues: Issue[] } {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return {
      issues: [
        { code: 'invalid_type', path: [], message: `step options must be an object, got ${describeValue(input)}` },
      ],
    };
  }
  const s = input as Partial<StepInput>;
  const issues: Issue[] = [];
  for (const key of Object.keys(s)) {
    if (!STEP_FIELDS.has(key)) {
      issues.push({
        code: 'unknown_field',
        path: [key],
        message: `is not an option of step(); allowed are ${[...STEP_FIELDS].filter((f) => f !== 'firstAttempt').join(', ')}`,
      });
    }
  }
  if (
    typeof s.name !== 'string' ||
    s.name.trim() === '' ||
    /[/#]/.test(s.name) ||
    [...s.name].some((c) => c.charCodeAt(0) < 32) ||
    s.name.length > 200
  ) {
    issues.push({
      code: 'invalid_name',
      path: ['name'],
      message: `must be a non-empty string of at most 200 characters without "/", "#" or control characters (e.g. "train"), got ${describeValue(s.name)}`,
    });
  }
  if (
    !Array.isArray(s.command) ||
    s.command.length === 0 ||
    s.command.some((a) => typeof a !== 'string') ||
    s.command[0] === ''
  ) {
    issues.push({
      code: 'invalid_command',
      path: ['command'],
      message: `must be a non-empty array of strings (argv, e.g. ["python", "train.py"]), got ${describeValue(s.command)}`,
    });
  }
  const { request, issues: resourceIssues } = parseResources(s.resources, ['resources']);
  issues.push(...resourceIssues);
  issues.push(...validateLimits(s, request));
  issues.push(...validateRequestLimits(s.limits, ['limits']));
  if (
    s.priority !== undefined &&
    (!Number.isInteger(s.priority) || s.priority < PRIORITY_RANGE.min || s.priority > PRIORITY_RANGE.max)
  ) {
    issues.push({
      code: 'invalid_priority',
      path: ['priority'],
      message: `must be an integer from ${PRIORITY_RANGE.min} to ${PRIORITY_RANGE.max}, got ${describeValue(s.priority)}`,
    });
  }
  for (const field of ['pool', 'team', 'cwd'] as const) {
    const v = s[field];
    if (v !== undefined && (typeof v !== 'string' || v === '')) {
      issues.push({
        code: 'invalid_type',
        path: [field],
        message: `must be a non-empty string, got ${describeValue(v)}`,
      });
    }
  }
  if (typeof s.team === 'string' && s.team !== '') {
    const unknown = unknownTeamIssue(s.team, context.teams);
    if (unknown) issues.push(unknown);
  }
  if (s.preemptible !== undefined && typeof s.preemptible !== 'boolean') {
    issues.push({
      code: 'invalid_type',
      path: ['preemptible'],
      message: `must be true or false, got ${describeValue(s.preemptible)}`,
    });
  }
  issues.push(...validateGang(s.replicas, s.replicaPlacement));
  if (s.firstAttempt !== undefined && (!Number.isInteger(s.firstAttempt) || s.firstAttempt < 1)) {
    issues.push({
      code: 'invalid_type',
      path: ['firstAttempt'],
      message: `must be a whole number from 1 up, got ${describeValue(s.firstAttempt)}`,
    });
  }
  issues.push(...validateRetry(s.retry));
  issues.push(...validateArtifacts(s));
  if (s.env !== undefined) {
    if (typeof s.env !== 'object' || s.env === null || Array.isArray(s.env)) {
      issues.push({
        code: 'invalid_type',
        path: ['env'],
        message: `must be an object of string values, got ${describeValue(s.env)}`,
      });
    } else {
      for (const [k, v] of Object.entries(s.env)) {
        if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) {
          issues.push({
            code: 'invalid_env_name',
            path: ['env', k],
            message: `is not a variable name; names are letters, digits and "_", not starting with a digit (e.g. "WANDB_MODE")`,
          });
        } else if (RESERVED_ENV.test(k)) {
          issues.push({
            code: 'reserved_env',
            path: ['env', k],
            message: `is set by allot for every workload (ALLOT_*, CUDA_VISIBLE_DEVICES, NVIDIA_VISIBLE_DEVICES); choose another name`,
          });
        }
        if (typeof v !== 'string')
          issues.push({ code: 'invalid_type', path: ['env', k], message: `must be a string, got ${describeValue(v)}` });
      }
    }
  }
  if (s.preemptible !== undefined && typeof s.preemptible !== 'boolean') {
    issues.push({
      code: 'invalid_type',
      path: ['preemptible'],
      message: `must be true or false, got ${describeValue(s.preemptible)}`,
    });
  }
  for (const field of ['gracePeriodMs', 'timeLimitMs'] as const) {
    const v = s[field];
    if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || v < 0)) {
      issues.push({
        code: 'invalid_duration',
        path: [field],
        message: `must be a non-negative number of milliseconds, got ${describeValue(v)}`,
      });
    }
  }
  return issues.length > 0 ? { issues } : { request, issues };
}

/** Checks a retry policy; every problem at once. */
function validateRetry(retry: unknown): Issue[] {
  if (retry === undefined) return [];
  const path = ['retry'];
  if (typeof retry !== 'object' || retry === null || Array.isArray(retry)) {
    return [
      {
        code: 'invalid_type',
        path,
        message: `must be an object like { maximumAttempts: 3, nonRetryableExitCodes: [2] }, got ${describeValue(retry)}`,
      },
    ];
  }
  const r = retry as Record<string, unknown>;
  const issues: Issue[] = [];
  for (const key of Object.keys(r)) {
    if (!RETRY_FIELDS.has(key)) {
      issues.push({
        code: 'unknown_field',
        path: [...path, key],
        message: `is not a retry option; allowed are ${[...RETRY_FIELDS].join(', ')}`,
      });
    }
  }
  const attempts = r.maximumAttempts;
  if (
    attempts !== undefined &&
    (!Number.isInteger(attempts) || (attempts as number) < 1 || (attempts as number) > 100)
  ) {
    issues.push({
      code: 'invalid_retry',
      path: [...path, 'maximumAttempts'],
      message: `must be a whole number of attempts from 1 to 100 (1 means no retry), got ${describeValue(attempts)}`,
    });
  }
  for (const key of ['initialIntervalMs', 'maximumIntervalMs'] as const) {
    const v = r[key];
    if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || v < 0)) {
      issues.push({
        code: 'invalid_duration',
        path: [...path, key],
        message: `must be a non-negative number of milliseconds, got ${describeValue(v)}`,
      });
    }
  }
  const initial = r.initialIntervalMs;
  const maximum = r.maximumIntervalMs;
  if (typeof initial === 'number' && typeof maximum === 'number' && maximum < initial) {
    issues.push({
      code: 'invalid_retry',
      path: [...path, 'maximumIntervalMs'],
      message: `cannot be less than retry.initialIntervalMs (${initial}), got ${describeValue(maximum)}`,
    });
  }
  const coefficient = r.backoffCoefficient;
  if (
    coefficient !== undefined &&
    (typeof coefficient !== 'number' || !Number.isFinite(coefficient) || coefficient < 1)
  ) {
    issues.push({
      code: 'invalid_retry',
      path: [...path, 'backoffCoefficient'],
      message: `must be a number from 1 up (1 waits the same each time), got ${describeValue(coefficient)}`,
    });
  }
  const codes = r.nonRetryableExitCodes;
  if (
    codes !== undefined &&
    (!Array.isArray(codes) || codes.some((c) => !Number.isInteger(c) || (c as number) < 0 || (c as number) > 255))
  ) {
    issues.push({
      code: 'invalid_retry',
      path: [...path, 'nonRetryableExitCodes'],
      message: `must be an array of exit codes from 0 to 255 (e.g. [2]), got ${describeValue(codes)}`,
    });
  }
  return issues;
}
