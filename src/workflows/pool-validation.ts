/**
 * The pool's validators: each refuses a malformed Update (or names what is wrong with a signal)
 * before it reaches the pool's state, with the field, the value and what is allowed.
 */
import { ApplicationFailure } from '@temporalio/workflow';
import type { AcquireInput, HealthPolicy, NodeSpec, NodeTemplateInput, PoolState, SchedulingPolicy } from '../core';
import type { NamedLimit, StatusOptions, TeamQuotaInput } from '../core';
import {
  describeValue,
  formatIssues,
  parseNodeTemplate,
  parseTeamQuotaInput,
  statusQueueLimit,
  validateAcquireInput,
  validateHealthPolicy,
  validateNodeSpec,
  validateNamedLimit,
  validatePolicy,
  MAX_LIMITS,
} from '../core';
import type { RegisterOptions } from './messages';

/** What is wrong with a node's registration, if anything. */
export function registrationProblem(spec: NodeSpec, options: RegisterOptions | undefined): string | undefined {
  const issues = validateNodeSpec(spec);
  if (issues.length > 0) return `invalid node inventory:\n${formatIssues(issues)}`;
  for (const field of ['runningLeases', 'deadLeases'] as const) {
    const leases = options?.[field];
    if (leases !== undefined && (!Array.isArray(leases) || leases.some((l) => typeof l !== 'string'))) {
      return `${field} must be an array of lease ids`;
    }
  }
  return undefined;
}

/** Refuses a malformed registration. */
export function checkRegistration(spec: NodeSpec, options: RegisterOptions | undefined): void {
  const problem = registrationProblem(spec, options);
  if (problem) throw new Error(problem);
}

/** Refuses a health policy that is malformed or inconsistent with the one in force. */
export function checkHealthPolicy(pool: PoolState, policy: Partial<HealthPolicy>): void {
  const issues = validateHealthPolicy(policy, pool.health);
  if (issues.length > 0) throw new Error(`invalid health policy:\n${formatIssues(issues)}`);
}

/** Refuses a drain that is malformed or names a node the pool does not have. */
export function checkDrain(pool: PoolState, request: { nodeId: string; drain: boolean }): void {
  if (typeof request?.nodeId !== 'string' || typeof request.drain !== 'boolean') {
    throw new Error('drain needs { nodeId: string, drain: boolean }');
  }
  if (!pool.nodes.some((n) => n.spec.id === request.nodeId)) {
    throw new Error(
      `no node ${JSON.stringify(request.nodeId)} in pool ${pool.name}; known nodes: ${pool.nodes.map((n) => n.spec.id).join(', ') || 'none'}`,
    );
  }
}

/** Refuses a malformed team quota. */
export function checkQuota(input: TeamQuotaInput): void {
  const { issues } = parseTeamQuotaInput(input);
  if (issues.length > 0) throw new Error(`invalid quota:\n${formatIssues(issues)}`);
}

/** Refuses to remove the quota of a team that has none. */
export function checkQuotaRemoval(pool: PoolState, team: string): void {
  if (!pool.teams.some((t) => t.name === team) && !pool.teamWeights.some((w) => w.team === team)) {
    throw new Error(
      `team ${JSON.stringify(team)} has no quota; teams with quotas: ${pool.teams.map((t) => t.name).join(', ') || 'none'}`,
    );
  }
}

/** Refuses a malformed named limit, or one more than a pool may have. */
export function checkLimit(pool: PoolState, input: NamedLimit): void {
  const issues = validateNamedLimit(input);
  if (issues.length > 0) throw new Error(`invalid limit:\n${formatIssues(issues)}`);
  if (pool.limits.length >= MAX_LIMITS && !pool.limits.some((l) => l.name === input.name)) {
    throw new Error(`pool ${pool.name} already has ${pool.limits.length} limits, the most it takes; remove one first`);
  }
}

/** Refuses to remove a named limit that does not exist, or that leases hold units of. */
export function checkLimitRemoval(pool: PoolState, input: { name: string }): void {
  const name: unknown = typeof input === 'object' && input !== null ? input.name : undefined;
  if (typeof name !== 'string' || name === '') {
    throw new Error(`removeLimit needs { name: string }, got ${describeValue(input)}`);
  }
  if (!pool.limits.some((l) => l.name === name)) {
    throw new Error(
      `limit ${JSON.stringify(name)} does not exist in pool ${pool.name}; limits: ${pool.limits.map((l) => l.name).join(', ') || 'none'}`,
    );
  }
  const holders = pool.leases.filter((l) => (l.limits?.[name] ?? 0) > 0);
  if (holders.length > 0) {
    const units = holders.reduce((s, l) => s + (l.limits?.[name] ?? 0), 0);
    throw new Error(
      `limit ${name} is in use: ${holders.length} ${holders.length === 1 ? 'step holds' : 'steps hold'} ${units} of its units ` +
        `(${holders
          .map((l) => l.label)
          .slice(0, 5)
          .join(', ')}${holders.length > 5 ? ', ...' : ''}); ` +
        `remove it once they end, or set its max to 0 to grant no more (\`allot limit set ${name} --max 0\`)`,
    );
  }
}

/** Refuses a malformed scheduling policy. */
export function checkPolicy(policy: Partial<SchedulingPolicy>): void {
  const issues = validatePolicy(policy);
  if (issues.length > 0) throw new Error(`invalid policy:\n${formatIssues(issues)}`);
}

/** Refuses malformed node templates, or two with the same name. */
export function checkTemplates(input: { templates: NodeTemplateInput[] }): void {
  if (typeof input !== 'object' || input === null || !Array.isArray(input.templates)) {
    throw new Error('setTemplates needs { templates: [...], scaling?: {...} }');
  }
  const issues = input.templates.flatMap((t: unknown, i: number) => parseNodeTemplate(t, ['templates', i]).issues);
  const names = input.templates.map((t: unknown) => (t as { name?: unknown }).name);
  if (new Set(names).size !== names.length)
    issues.push({ code: 'duplicate', path: ['templates'], message: 'template names must be unique' });
  if (issues.length > 0) throw new Error(`invalid node templates:\n${formatIssues(issues)}`);
}

/** Rejects a malformed acquire before it reaches the pool's state. */
export function checkAcquire(request: AcquireInput): void {
  const issues = validateAcquireInput(request);
  if (issues.length > 0)
    throw ApplicationFailure.nonRetryable(`invalid acquire:\n${formatIssues(issues)}`, 'InvalidInput');
}

/** Refuses a release without a request id. */
export function checkRelease(requestId: string): void {
  if (typeof requestId !== 'string' || requestId === '')
    throw new Error(`release needs a request id (a non-empty string), got ${describeValue(requestId)}`);
}

/** The queue limit a status query asks for; a malformed one fails the query. */
export function statusLimitOf(options: StatusOptions | undefined): number {
  const limit = statusQueueLimit(options);
  if (typeof limit === 'string') throw ApplicationFailure.create({ message: limit, type: 'InvalidArgument' });
  return limit;
}

/**
 * Store URLs a pool may name: a folder (not the root) or a bucket, without credentials or a query
 * (checked in full by the CLI; this keeps a client that bypasses it from storing more).
 */
const STORE_URL = /^(file:\/\/\/[^\s?#]+|s3:\/\/[^/@\s:?#]+(\/[^\s?]*)?)$/;

/** Checks a store for `setStore`. */
export function checkStore(input: { url: string | null }): void {
  const url: unknown = typeof input === 'object' && input !== null ? input.url : undefined;
  if (url === null) return;
  if (typeof url !== 'string' || url.length > 1000 || !STORE_URL.test(url)) {
    throw new Error(
      `setStore needs { url: "file:///path" | "s3://bucket/prefix" | null } (no credentials in it), got ${describeValue(input)}`,
    );
  }
}
