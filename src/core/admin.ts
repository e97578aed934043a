/**
 * Validation of what administrators send the pool: team quotas and policy changes. Each returns
 * every problem at once, naming the field, the value and the allowed form.
 */
import type { Issue } from './errors';
import { describeValue } from './errors';
import { PLACEMENT_POLICIES } from './placer';
import type { SchedulingPolicy } from './policy';
import { DEFAULT_POLICY } from './policy';
import type { TeamQuota } from './quota';
import { parseResourceVector } from './quota';

/**
 * A quota as an administrator writes it: `{ team: "vision", quota: { gpu: 8 }, borrowingLimit: { gpu: 4 } }`,
 * or a weight in fair share alone, `{ team: "vision", weight: 2 }`, which sets no quota.
 */
export interface TeamQuotaInput {
  team: string;
  /** Nominal quota, e.g. `{ gpu: 8, cpu: "64", memory: "512Gi" }`. @default the quota is left as it is (only with `weight`) */
  quota?: Record<string, number | string>;
  /** Most the team may borrow beyond its quota; absent: any. */
  borrowingLimit?: Record<string, number | string>;
  /** The team's weight in fair share: its share is divided by it. Greater than 0. @default left as it is (1 unless set) */
  weight?: number;
}

/** Largest team weight in fair share. */
export const MAX_TEAM_WEIGHT = 1_000_000;

/** What is wrong with a team weight, if anything. */
export function weightProblem(value: unknown): string | undefined {
  if (typeof value === 'number' && Number.isFinite(value) && value > 0 && value <= MAX_TEAM_WEIGHT) return undefined;
  return `must be a number greater than 0 and at most ${MAX_TEAM_WEIGHT} (a team's weight in fair share; 1 unless set), got ${describeValue(value)}`;
}

/** What a team may be called. */
export const TEAM_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** Turns a quota input into a `TeamQuota` and a weight (either may be absent), collecting every problem. */
export function parseTeamQuotaInput(value: unknown): { quota?: TeamQuota; weight?: number; issues: Issue[] } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return {
      issues: [{ code: 'invalid_type', path: [], message: `quota must be an object, got ${describeValue(value)}` }],
    };
  }
  const v = value as Partial<TeamQuotaInput>;
  const issues: Issue[] = [];
  if (typeof v.team !== 'string' || !TEAM_NAME.test(v.team)) {
    issues.push({
      code: 'invalid_team',
      path: ['team'],
      message: `must be 1-63 letters, digits, '.', '_' or '-', got ${describeValue(v.team)}`,
    });
  }
  if (v.weight !== undefined) {
    const problem = weightProblem(v.weight);
    if (problem) issues.push({ code: 'invalid_weight', path: ['weight'], message: problem });
  }
  // A weight alone sets no quota: a quota would limit the team, and make teams without one borrowers.
  const weightOnly = v.weight !== undefined && v.quota === undefined && v.borrowingLimit === undefined;
  const nominal = weightOnly ? undefined : parseResourceVector(v.quota, ['quota'], issues);
  const borrowingLimit =
    v.borrowingLimit === undefined ? undefined : parseResourceVector(v.borrowingLimit, ['borrowingLimit'], issues);
  if (issues.length > 0 || typeof v.team !== 'string') return { issues };
  return {
    ...(nominal ? { quota: { name: v.team, nominal, ...(borrowingLimit ? { borrowingLimit } : {}) } } : {}),
    ...(v.weight !== undefined ? { weight: v.weight } : {}),
    issues,
  };
}

/** Checks a partial policy change. */
export function validatePolicy(value: unknown): Issue[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return [{ code: 'invalid_type', path: [], message: `policy must be an object, got ${describeValue(value)}` }];
  }
  const issues: Issue[] = [];
  for (const [key, v] of Object.entries(value)) {
    const field = key as keyof SchedulingPolicy;
    if (!Object.hasOwn(DEFAULT_POLICY, key)) {
      issues.push({
        code: 'unknown_field',
        path: [key],
        message: `is not a policy setting; allowed are ${Object.keys(DEFAULT_POLICY).join(', ')}`,
      });
      continue;
    }
    const expected = typeof DEFAULT_POLICY[field];
    if (field === 'placement') {
      if (!PLACEMENT_POLICIES.includes(v as never)) {
        issues.push({
          code: 'invalid_value',
          path: [key],
          message: `must be one of ${PLACEMENT_POLICIES.join(', ')}, got ${describeValue(v)}`,
        });
      }
    } else if (expected === 'boolean' && typeof v !== 'boolean') {
      issues.push({ code: 'invalid_type', path: [key], message: `must be true or false, got ${describeValue(v)}` });
    } else if (expected === 'number' && (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)) {
      issues.push({
        code: 'invalid_type',
        path: [key],
        message: `must be a whole number >= 0, got ${describeValue(v)}`,
      });
    }
  }
  return issues;
}
