/**
 * Checks of what reaches a pool from outside it (an agent's node inventory, an acquire sent as an
 * Update or a signal): each returns every problem at once, naming the field, the value and what
 * is allowed. Nothing they let through can corrupt the pool's state.
 */
import { TEAM_NAME } from './admin';
import type { Issue } from './errors';
import { describeValue } from './errors';
import { validateRequestLimits } from './named-limits';
import type { AcquireInput } from './pool-data';
import { PRIORITY_MAX, PRIORITY_MIN } from './priority';
import { parseCustom, validateResourceRequest } from './resources';
import type { NodeSpec, ResourceRequest } from './types';

/** Checks a node inventory sent by an agent; returns every problem. */
export function validateNodeSpec(spec: unknown): Issue[] {
  const issues: Issue[] = [];
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) {
    return [{ code: 'invalid_type', path: [], message: 'node inventory must be an object' }];
  }
  const s = spec as Partial<NodeSpec>;
  if (typeof s.id !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(s.id)) {
    issues.push({
      code: 'invalid_node_id',
      path: ['id'],
      message: `must be 1-63 letters, digits, '.', '_' or '-' starting with a letter or digit, got ${JSON.stringify(s.id)}`,
    });
  }
  // A host name, an IPv4 address, or an IPv6 one (two colons or more): never `host:port`.
  const address = s.address;
  if (
    address !== undefined &&
    (typeof address !== 'string' || !/^[A-Za-z0-9._:%[\]-]{1,253}$/.test(address) || address.split(':').length === 2)
  ) {
    issues.push({
      code: 'invalid_address',
      path: ['address'],
      message: `must be a host name or IP address without a port, got ${describeValue(address)}`,
    });
  }
  for (const field of ['cpuMilli', 'memoryMiB'] as const) {
    const v = s[field];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
      issues.push({
        code: 'invalid_quantity',
        path: [field],
        message: `must be a non-negative integer, got ${JSON.stringify(v)}`,
      });
    }
  }
  if (!Array.isArray(s.gpus)) {
    issues.push({ code: 'invalid_type', path: ['gpus'], message: 'must be an array of GPU devices' });
  } else {
    const seen = new Set<number>();
    s.gpus.forEach((g: Partial<NodeSpec['gpus'][number]>, i) => {
      if (typeof g !== 'object' || g === null || Array.isArray(g)) {
        issues.push({
          code: 'invalid_type',
          path: ['gpus', i],
          message: `must be a GPU device { index, model, memoryMiB }, got ${describeValue(g)}`,
        });
        return;
      }
      if (typeof g.index !== 'number' || !Number.isSafeInteger(g.index) || g.index < 0 || seen.has(g.index)) {
        issues.push({
          code: 'invalid_gpu_index',
          path: ['gpus', i, 'index'],
          message: `must be a unique non-negative integer, got ${JSON.stringify(g.index)}`,
        });
      } else seen.add(g.index);
      if (typeof g.model !== 'string' || g.model === '') {
        issues.push({
          code: 'invalid_type',
          path: ['gpus', i, 'model'],
          message: `must be a non-empty string, got ${JSON.stringify(g.model)}`,
        });
      }
      if (typeof g.memoryMiB !== 'number' || !Number.isSafeInteger(g.memoryMiB) || g.memoryMiB < 0) {
        issues.push({
          code: 'invalid_quantity',
          path: ['gpus', i, 'memoryMiB'],
          message: `must be a non-negative integer, got ${JSON.stringify(g.memoryMiB)}`,
        });
      }
    });
  }
  if (
    typeof s.labels !== 'object' ||
    s.labels === null ||
    Array.isArray(s.labels) ||
    Object.values(s.labels).some((v) => typeof v !== 'string')
  ) {
    issues.push({ code: 'invalid_type', path: ['labels'], message: 'must be an object of string values' });
  }
  // Custom amounts are added and compared: a string here would grant without limit.
  if (s.custom !== undefined) parseCustom(s.custom, ['custom'], issues, 'any');
  return issues;
}

/** Longest request id, owner name, team and label an acquire may carry, characters. */
export const MAX_NAME_LENGTH = 512;

/** Longest grace period a request may ask for, ms (one day); the pool's policy bounds it further. */
export const MAX_GRACE_PERIOD_MS = 86_400_000;

/** Most copies a gang may ask for. */
export const MAX_REPLICAS = 1024;

/** Checks a gang's size and placement (an acquire's, or a step's). */
export function validateGang(replicas: unknown, placement: unknown): Issue[] {
  const issues: Issue[] = [];
  if (
    replicas !== undefined &&
    (typeof replicas !== 'number' || !Number.isSafeInteger(replicas) || replicas < 1 || replicas > MAX_REPLICAS)
  ) {
    issues.push({
      code: 'invalid_replicas',
      path: ['replicas'],
      message: `must be a whole number of copies from 1 to ${MAX_REPLICAS}, got ${describeValue(replicas)}`,
    });
  }
  if (placement !== undefined && placement !== 'spread' && placement !== 'pack') {
    issues.push({
      code: 'invalid_replica_placement',
      path: ['replicaPlacement'],
      message: `must be "spread" (one replica per node) or "pack" (several on a node where they fit), got ${describeValue(placement)}`,
    });
  }
  return issues;
}

/**
 * Checks an acquire that arrived from outside (an Update, or a signal sent without allot's
 * client); returns every problem. Nothing it lets through can corrupt the pool: priorities stay
 * in their range, times are real times, and a request asks for something.
 */
export function validateAcquireInput(value: unknown): Issue[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return [{ code: 'invalid_type', path: [], message: `acquire must be an object, got ${describeValue(value)}` }];
  }
  const a = value as Partial<AcquireInput>;
  const issues: Issue[] = [];
  if (typeof a.requestId !== 'string' || a.requestId === '' || a.requestId.length > MAX_NAME_LENGTH) {
    issues.push({
      code: 'invalid_type',
      path: ['requestId'],
      message: `must be a non-empty string of at most ${MAX_NAME_LENGTH} characters, got ${describeValue(a.requestId)}`,
    });
  }
  const o = a.owner as Partial<{ kind: string; workflowId: string; name: string }> | undefined;
  const ownerOk =
    typeof o === 'object' &&
    o !== null &&
    ((o.kind === 'workflow' && typeof o.workflowId === 'string' && o.workflowId !== '') ||
      (o.kind === 'client' && typeof o.name === 'string')) &&
    (o.workflowId ?? o.name ?? '').length <= MAX_NAME_LENGTH;
  if (!ownerOk) {
    issues.push({
      code: 'invalid_owner',
      path: ['owner'],
      message: `must be { kind: "workflow", workflowId } or { kind: "client", name }, got ${describeValue(a.owner)}`,
    });
  }
  const resourceIssues = validateResourceRequest(a.resources);
  issues.push(...resourceIssues);
  if (resourceIssues.length === 0) {
    const r = a.resources as ResourceRequest;
    if (r.cpuMilli === 0 && r.memoryMiB === 0 && r.gpuMilli === 0 && Object.keys(r.custom ?? {}).length === 0) {
      issues.push({ code: 'empty_request', path: ['resources'], message: 'must ask for some cpu, memory or gpu' });
    }
  }
  if (
    a.priority !== undefined &&
    (typeof a.priority !== 'number' ||
      !Number.isSafeInteger(a.priority) ||
      a.priority < PRIORITY_MIN ||
      a.priority > PRIORITY_MAX)
  ) {
    issues.push({
      code: 'invalid_priority',
      path: ['priority'],
      message: `must be an integer from ${PRIORITY_MIN} to ${PRIORITY_MAX}, got ${describeValue(a.priority)}`,
    });
  }
  if (a.team !== undefined && (typeof a.team !== 'string' || !TEAM_NAME.test(a.team))) {
    issues.push({
      code: 'invalid_team',
      path: ['team'],
      message: `must be 1-63 letters, digits, '.', '_' or '-', got ${describeValue(a.team)}`,
    });
  }
  for (const field of ['label'] as const) {
    const v = a[field];
    if (v !== undefined && (typeof v !== 'string' || v.length > MAX_NAME_LENGTH)) {
      issues.push({
        code: 'invalid_type',
        path: [field],
        message: `must be a string of at most ${MAX_NAME_LENGTH} characters, got ${describeValue(v)}`,
      });
    }
  }
  if (a.preemptible !== undefined && typeof a.preemptible !== 'boolean') {
    issues.push({
      code: 'invalid_type',
      path: ['preemptible'],
      message: `must be true or false, got ${describeValue(a.preemptible)}`,
    });
  }
  if (
    a.timeLimitMs !== undefined &&
    (typeof a.timeLimitMs !== 'number' || !Number.isFinite(a.timeLimitMs) || a.timeLimitMs < 0)
  ) {
    issues.push({
      code: 'invalid_duration',
      path: ['timeLimitMs'],
      message: `must be a non-negative number of ms, got ${describeValue(a.timeLimitMs)}`,
    });
  }
  if (
    a.gracePeriodMs !== undefined &&
    (typeof a.gracePeriodMs !== 'number' ||
      !Number.isSafeInteger(a.gracePeriodMs) ||
      a.gracePeriodMs < 0 ||
      a.gracePeriodMs > MAX_GRACE_PERIOD_MS)
  ) {
    issues.push({
      code: 'invalid_duration',
      path: ['gracePeriodMs'],
      message: `must be a whole number of ms from 0 to ${MAX_GRACE_PERIOD_MS}, got ${describeValue(a.gracePeriodMs)}`,
    });
  }
  issues.push(...validateRequestLimits(a.limits, ['limits']));
  issues.push(...validateGang(a.replicas, a.replicaPlacement));
  if (
    a.submittedAt !== undefined &&
    (typeof a.submittedAt !== 'number' || !Number.isSafeInteger(a.submittedAt) || a.submittedAt < 0)
  ) {
    issues.push({
      code: 'invalid_time',
      path: ['submittedAt'],
      message: `must be a time in ms since 1970 (a whole number, not negative), got ${describeValue(a.submittedAt)}`,
    });
  }
  return issues;
}
