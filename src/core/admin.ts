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

/** A quota as an administrator writes it: `{ team: "vision", quota: { gpu: 8 }, borrowingLimit: { gpu: 4 } }`. */
export interface TeamQuotaInput {
  team: string;
  /** Nominal quota, e.g. `{ gpu: 8, cpu: "64", memory: "512Gi" }`. */
  quota: Record<string, number | string>;
  /** Most the team may borrow beyond its quota; absent: any. */
  borrowingLimit?: Record<string, number | string>;
}

/** What a team may be called. */
export const TEAM_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** Turns a quota input into a `TeamQuota`, collecting every problem. */
export function parseTeamQuotaInput(value: unknown): { quota?: TeamQuota; issues: Issue[] } {
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
  const nominal = parseResourceVector(v.quota, ['quota'], issues);
  const borrowingLimit =
    v.borrowingLimit === undefined ? undefined : parseResourceVector(v.borrowingLimit, ['borrowingLimit'], issues);
  if (issues.length > 0 || typeof v.team !== 'string') return { issues };
  return { quota: { name: v.team, nominal, ...(borrowingLimit ? { borrowingLimit } : {}) }, issues };
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
