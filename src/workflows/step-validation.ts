/**
 * Validation of step options: every problem at once, each naming the field, the value and the
 * allowed form.
 */
import type { Issue, ResourceRequest } from '../core';
import { describeValue, parseResources } from '../core';
import type { StepInput } from './step-types';

/** Priorities allowed for steps: larger runs first. */
export const PRIORITY_RANGE = { min: -1000, max: 1000 } as const;

/** Checks a step's options and turns its resources into a request. */
export function validateStepInput(input: unknown): { request?: ResourceRequest; issues: Issue[] } {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return {
      issues: [
        { code: 'invalid_type', path: [], message: `step options must be an object, got ${describeValue(input)}` },
      ],
    };
  }
  const s = input as Partial<StepInput>;
  const issues: Issue[] = [];
  if (typeof s.name !== 'string' || s.name.trim() === '') {
    issues.push({
      code: 'invalid_name',
      path: ['name'],
      message: `must be a non-empty string, got ${describeValue(s.name)}`,
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
  if (s.env !== undefined) {
    if (typeof s.env !== 'object' || s.env === null || Array.isArray(s.env)) {
      issues.push({
        code: 'invalid_type',
        path: ['env'],
        message: `must be an object of string values, got ${describeValue(s.env)}`,
      });
    } else {
      for (const [k, v] of Object.entries(s.env)) {
        if (typeof v !== 'string')
          issues.push({ code: 'invalid_type', path: ['env', k], message: `must be a string, got ${describeValue(v)}` });
      }
    }
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
