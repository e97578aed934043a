/**
 * The scenario format of `allot simulate` (documented in docs/simulate.md): nodes, teams, policy
 * and jobs, with times in seconds. Validation reports every problem at once, each naming its
 * field, its value and what is allowed.
 */
import type {
  Issue,
  NamedLimit,
  NodeSpec,
  ReplicaPlacement,
  ResourceRequest,
  SchedulingPolicy,
  TeamQuota,
  TeamWeight,
} from '../core';
import {
  DEFAULT_POLICY,
  PLACEMENT_POLICIES,
  weightProblem,
  ValidationError,
  describeValue,
  parseCpu,
  parseCustom,
  parseMemory,
  parsePriority,
  parseResourceVector,
  parseResources,
  QuantityError,
  validateNamedLimit,
  validateRequestLimits,
} from '../core';

/** One job of a scenario, in the simulator's units (ms). */
export interface SimJob {
  name: string;
  team: string;
  submitMs: number;
  /** Work to do, ms. */
  durationMs: number;
  /** What backfill may rely on, ms. */
  timeLimitMs: number;
  priority: number;
  preemptible: boolean;
  /** Progress survives preemption in steps of this many ms; absent: all progress is lost. */
  checkpointEveryMs?: number;
  replicas: number;
  /** How a gang's copies are placed. @default 'spread' (one per node) */
  replicaPlacement?: ReplicaPlacement;
  resources: ResourceRequest;
  /** Units of the scenario's named limits it holds while it runs. */
  limits?: Record<string, number>;
}

/** A validated scenario. */
export interface Scenario {
  nodes: NodeSpec[];
  teams: TeamQuota[];
  /** Team weights in fair share; a team not listed has weight 1. @default none */
  weights?: TeamWeight[];
  policy: SchedulingPolicy;
  jobs: SimJob[];
  /** Cluster-wide named limits, sorted by name; absent when the scenario has none. */
  limits?: NamedLimit[];
}

/** Most GPUs one node may have (as `allot agent --gpus`). */
export const MAX_GPUS_PER_NODE = 1024;

/** Most nodes a simulation may have (a scenario's nodes with their counts, or a trace's). */
export const MAX_SIM_NODES = 100_000;

/** The simulator's policy defaults: the core's, with no grace period. */
export const SIMULATION_POLICY: Readonly<SchedulingPolicy> = { ...DEFAULT_POLICY, gracePeriodMs: 0 };

type Path = (string | number)[];

const TOP = new Set(['nodes', 'teams', 'policy', 'jobs', 'limits']);
const NODE = new Set(['name', 'cpu', 'memory', 'gpus', 'gpuModel', 'gpuMemory', 'labels', 'custom', 'count']);
const TEAM = new Set(['name', 'quota', 'borrowingLimit', 'weight']);
const POLICY = new Set([
  'placement',
  'preemption',
  'backfill',
  'fairShare',
  'fairShareHalfLife',
  'gracePeriod',
  'agingInterval',
  'backfillDepth',
]);
const JOB = new Set([
  'name',
  'team',
  'submit',
  'duration',
  'timeLimit',
  'priority',
  'preemptible',
  'checkpointEvery',
  'replicas',
  'replicaPlacement',
  'resources',
  'limits',
]);

/** The values of a job's `replicaPlacement`, default first. */
const REPLICA_PLACEMENTS: readonly ReplicaPlacement[] = ['spread', 'pack'];

/** Validates a parsed scenario file; throws a `ValidationError` listing every problem. */
export function parseScenario(value: unknown): Scenario {
  const issues: Issue[] = [];
  const root = object(value, [], issues);
  if (!root) throw new ValidationError(issues);
  unknownFields(root, TOP, [], issues);
  const nodes: NodeSpec[] = [];
  list(root.nodes, ['nodes'], issues, true).forEach((n, i) => {
    // Past the limit, stop building nodes (a count may be large); the total is reported below.
    if (nodes.length <= MAX_SIM_NODES) for (const node of parseNode(n, ['nodes', i], issues)) nodes.push(node);
  });
  if (nodes.length > MAX_SIM_NODES) {
    issues.push({
      code: 'too_many',
      path: ['nodes'],
      message: `add up to more than ${MAX_SIM_NODES} nodes (with their counts), the most the simulator takes`,
    });
  }
  const names = new Set<string>();
  nodes.forEach((n, i) => {
    if (names.has(n.id))
      issues.push({
        code: 'duplicate',
        path: ['nodes', i, 'name'],
        message: `"${n.id}" names two nodes; names must be unique`,
      });
    names.add(n.id);
  });
  const weights: TeamWeight[] = [];
  const teams = list(root.teams, ['teams'], issues, false).flatMap((t, i) =>
    parseTeam(t, ['teams', i], issues, weights),
  );
  const policy = parsePolicy(root.policy, ['policy'], issues);
  const jobs = list(root.jobs, ['jobs'], issues, true).flatMap((j, i) => parseJob(j, ['jobs', i], issues));
  const limits = parseLimits(root.limits, ['limits'], issues);
  const jobNames = new Set<string>();
  jobs.forEach((j, i) => {
    for (const [name, n] of Object.entries(j.limits ?? {})) {
      const limit = limits.find((l) => l.name === name);
      if (!limit)
        issues.push({
          code: 'unknown_limit',
          path: ['jobs', i, 'limits', name],
          message: `names a limit the scenario does not declare; declared: ${limits.map((l) => l.name).join(', ') || 'none'} (add it to the top-level limits, e.g. { "${name}": 4 })`,
        });
      else if (n > limit.max)
        issues.push({
          code: 'invalid_quantity',
          path: ['jobs', i, 'limits', name],
          message: `asks for ${n} units of ${name}, more than its max ${limit.max}: the job could never start (a pool rejects such a step)`,
        });
    }
    if (jobNames.has(j.name))
      issues.push({
        code: 'duplicate',
        path: ['jobs', i, 'name'],
        message: `"${j.name}" names two jobs; names must be unique`,
      });
    jobNames.add(j.name);
  });
  if (issues.length > 0) throw new ValidationError(issues);
  return {
    nodes,
    teams,
    policy,
    jobs,
    ...(weights.length > 0 ? { weights } : {}),
    ...(limits.length > 0 ? { limits } : {}),
  };
}

/** The top-level `limits: { "feature-store": 4 }`: each limit's max. */
function parseLimits(value: unknown, path: Path, issues: Issue[]): NamedLimit[] {
  if (value === undefined) return [];
  const o = object(value, path, issues);
  if (!o) return [];
  const limits: NamedLimit[] = [];
  for (const [name, max] of Object.entries(o)) {
    const problems = validateNamedLimit({ name, max });
    for (const p of problems) issues.push({ ...p, path: [...path, name] });
    if (problems.length === 0) limits.push({ name, max: max as number });
  }
  return limits.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function parseNode(value: unknown, path: Path, issues: Issue[]): NodeSpec[] {
  const o = object(value, path, issues);
  if (!o) return [];
  unknownFields(o, NODE, path, issues);
  const name = text(o.name, [...path, 'name'], issues);
  const cpuMilli = quantity(o.cpu, [...path, 'cpu'], parseCpu, issues, true);
  const memoryMiB = quantity(o.memory, [...path, 'memory'], parseMemory, issues, true);
  const gpus = whole(o.gpus, [...path, 'gpus'], issues, 0, 0, MAX_GPUS_PER_NODE);
  const gpuMemory = quantity(o.gpuMemory, [...path, 'gpuMemory'], parseMemory, issues, false) ?? 0;
  const count = whole(o.count, [...path, 'count'], issues, 1, 1, MAX_SIM_NODES);
  if (gpus > 0 && (typeof o.gpuModel !== 'string' || o.gpuModel === '')) {
    issues.push({
      code: 'invalid_type',
      path: [...path, 'gpuModel'],
      message: `must name the model of the ${gpus} GPUs, e.g. "A100", got ${describeValue(o.gpuModel)}`,
    });
  }
  const labels = stringMap(o.labels, [...path, 'labels'], issues);
  const custom = parseCustom(o.custom, [...path, 'custom'], issues);
  if (name === undefined || cpuMilli === undefined || memoryMiB === undefined) return [];
  return Array.from({ length: count }, (_, k) => {
    const spec: NodeSpec = {
      id: count > 1 ? `${name}-${k + 1}` : name,
      cpuMilli,
      memoryMiB,
      gpus: Array.from({ length: gpus }, (_, index) => ({
        index,
        model: String(o.gpuModel ?? ''),
        memoryMiB: gpuMemory,
      })),
      labels,
    };
    if (custom) spec.custom = custom;
    return spec;
  });
}

/** A team's quota, if it has one (a team with only a weight has none); its weight goes to `weights`. */
function parseTeam(value: unknown, path: Path, issues: Issue[], weights: TeamWeight[]): TeamQuota[] {
  const o = object(value, path, issues);
  if (!o) return [];
  unknownFields(o, TEAM, path, issues);
  const name = text(o.name, [...path, 'name'], issues);
  if (o.weight !== undefined) {
    const problem = weightProblem(o.weight);
    if (problem) issues.push({ code: 'invalid_weight', path: [...path, 'weight'], message: problem });
    else if (name !== undefined) weights.push({ team: name, weight: o.weight as number });
    if (o.quota === undefined && o.borrowingLimit === undefined) return [];
  }
  const nominal = parseResourceVector(o.quota ?? {}, [...path, 'quota'], issues);
  const team: TeamQuota = { name: name ?? '', nominal };
  if (o.borrowingLimit !== undefined)
    team.borrowingLimit = parseResourceVector(o.borrowingLimit, [...path, 'borrowingLimit'], issues);
  return name === undefined ? [] : [team];
}

function parsePolicy(value: unknown, path: Path, issues: Issue[]): SchedulingPolicy {
  const policy: SchedulingPolicy = { ...SIMULATION_POLICY };
  if (value === undefined) return policy;
  const o = object(value, path, issues);
  if (!o) return policy;
  unknownFields(o, POLICY, path, issues);
  if (o.placement !== undefined) {
    if (typeof o.placement === 'string' && (PLACEMENT_POLICIES as readonly string[]).includes(o.placement)) {
      policy.placement = o.placement as SchedulingPolicy['placement'];
    } else {
      issues.push({
        code: 'invalid_enum',
        path: [...path, 'placement'],
        message: `must be one of ${PLACEMENT_POLICIES.map((p) => `"${p}"`).join(', ')}, got ${describeValue(o.placement)}`,
      });
    }
  }
  for (const flag of ['preemption', 'backfill', 'fairShare'] as const) {
    if (o[flag] === undefined) continue;
    if (typeof o[flag] === 'boolean') policy[flag] = o[flag];
    else
      issues.push({
        code: 'invalid_type',
        path: [...path, flag],
        message: `must be true or false, got ${describeValue(o[flag])}`,
      });
  }
  policy.gracePeriodMs =
    seconds(o.gracePeriod, [...path, 'gracePeriod'], issues, policy.gracePeriodMs / 1000, true) * 1000;
  policy.agingIntervalMs =
    seconds(o.agingInterval, [...path, 'agingInterval'], issues, policy.agingIntervalMs / 1000, true) * 1000;
  policy.fairShareHalfLifeMs = Math.round(
    seconds(o.fairShareHalfLife, [...path, 'fairShareHalfLife'], issues, policy.fairShareHalfLifeMs / 1000, true) *
      1000,
  );
  policy.backfillDepth = whole(o.backfillDepth, [...path, 'backfillDepth'], issues, policy.backfillDepth, 0);
  return policy;
}

function parseJob(value: unknown, path: Path, issues: Issue[]): SimJob[] {
  const o = object(value, path, issues);
  if (!o) return [];
  unknownFields(o, JOB, path, issues);
  const name = text(o.name, [...path, 'name'], issues);
  const team = o.team === undefined ? 'default' : text(o.team, [...path, 'team'], issues);
  const submit = seconds(o.submit, [...path, 'submit'], issues, 0, true);
  const duration = seconds(o.duration, [...path, 'duration'], issues, NaN, false);
  const timeLimit =
    o.timeLimit === undefined ? duration : seconds(o.timeLimit, [...path, 'timeLimit'], issues, NaN, false);
  const { priority, issue } = parsePriority(o.priority, [...path, 'priority']);
  if (issue) issues.push(issue);
  if (o.preemptible !== undefined && typeof o.preemptible !== 'boolean') {
    issues.push({
      code: 'invalid_type',
      path: [...path, 'preemptible'],
      message: `must be true or false, got ${describeValue(o.preemptible)}`,
    });
  }
  const checkpoint =
    o.checkpointEvery === undefined
      ? undefined
      : seconds(o.checkpointEvery, [...path, 'checkpointEvery'], issues, NaN, false);
  const replicas = whole(o.replicas, [...path, 'replicas'], issues, 1, 1);
  if (o.replicaPlacement !== undefined && !(REPLICA_PLACEMENTS as readonly unknown[]).includes(o.replicaPlacement)) {
    issues.push({
      code: 'invalid_enum',
      path: [...path, 'replicaPlacement'],
      message: `must be one of ${REPLICA_PLACEMENTS.map((p) => `"${p}"`).join(', ')}, got ${describeValue(o.replicaPlacement)}`,
    });
  }
  const parsed = parseResources(o.resources, [...path, 'resources']);
  issues.push(...parsed.issues);
  const limitIssues = validateRequestLimits(o.limits, [...path, 'limits']);
  issues.push(...limitIssues);
  if (
    name === undefined ||
    team === undefined ||
    !parsed.request ||
    priority === undefined ||
    Number.isNaN(duration) ||
    Number.isNaN(timeLimit)
  )
    return [];
  const job: SimJob = {
    name,
    team,
    submitMs: Math.round(submit * 1000),
    durationMs: Math.round(duration * 1000),
    timeLimitMs: Math.round(timeLimit * 1000),
    priority,
    preemptible: o.preemptible !== false,
    replicas,
    resources: parsed.request,
  };
  if (REPLICA_PLACEMENTS.includes(o.replicaPlacement as ReplicaPlacement))
    job.replicaPlacement = o.replicaPlacement as ReplicaPlacement;
  if (checkpoint !== undefined && !Number.isNaN(checkpoint)) job.checkpointEveryMs = Math.round(checkpoint * 1000);
  if (o.limits !== undefined && limitIssues.length === 0 && Object.keys(o.limits as object).length > 0)
    job.limits = { ...(o.limits as Record<string, number>) };
  return [job];
}

function object(value: unknown, path: Path, issues: Issue[]): Record<string, unknown> | undefined {
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  issues.push({ code: 'invalid_type', path, message: `must be an object, got ${describeValue(value)}` });
  return undefined;
}

function list(value: unknown, path: Path, issues: Issue[], required: boolean): unknown[] {
  if (value === undefined && !required) return [];
  if (Array.isArray(value) && (value.length > 0 || !required)) return value;
  issues.push({
    code: 'invalid_type',
    path,
    message: `must be a ${required ? 'non-empty ' : ''}array, got ${describeValue(value)}`,
  });
  return [];
}

function unknownFields(o: Record<string, unknown>, known: ReadonlySet<string>, path: Path, issues: Issue[]): void {
  for (const k of Object.keys(o)) {
    if (!known.has(k))
      issues.push({
        code: 'unknown_field',
        path: [...path, k],
        message: `is not a field here; allowed are ${[...known].join(', ')}`,
      });
  }
}

function text(value: unknown, path: Path, issues: Issue[]): string | undefined {
  if (typeof value === 'string' && value.trim() !== '') return value;
  issues.push({ code: 'invalid_type', path, message: `must be a non-empty string, got ${describeValue(value)}` });
  return undefined;
}

function seconds(value: unknown, path: Path, issues: Issue[], fallback: number, zeroOk: boolean): number {
  if (value === undefined) {
    if (Number.isNaN(fallback))
      issues.push({ code: 'required', path, message: `is required: a number of seconds > 0` });
    return fallback;
  }
  if (typeof value === 'number' && Number.isFinite(value) && (zeroOk ? value >= 0 : value > 0)) return value;
  issues.push({
    code: 'invalid_time',
    path,
    message: `must be a number of seconds ${zeroOk ? '>= 0' : '> 0'}, got ${describeValue(value)}`,
  });
  return Number.isNaN(fallback) ? NaN : fallback;
}

function whole(
  value: unknown,
  path: Path,
  issues: Issue[],
  fallback: number,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (value === undefined) return fallback;
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= min && value <= max) return value;
  const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`;
  issues.push({ code: 'invalid_type', path, message: `must be a whole number ${range}, got ${describeValue(value)}` });
  return fallback;
}

function quantity(
  value: unknown,
  path: Path,
  parse: (v: unknown, f: string) => number,
  issues: Issue[],
  required: boolean,
): number | undefined {
  if (value === undefined) {
    if (required) issues.push({ code: 'required', path, message: 'is required' });
    return undefined;
  }
  try {
    return parse(value, String(path[path.length - 1]));
  } catch (err) {
    if (!(err instanceof QuantityError)) throw err;
    issues.push({ code: err.code, path, message: `must be ${err.allowed}, got ${describeValue(value)}` });
    return undefined;
  }
}

function stringMap(value: unknown, path: Path, issues: Issue[]): Record<string, string> {
  if (value === undefined) return {};
  const o = object(value, path, issues);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(o ?? {})) {
    if (typeof v === 'string') out[k] = v;
    else
      issues.push({ code: 'invalid_type', path: [...path, k], message: `must be a string, got ${describeValue(v)}` });
  }
  return out;
}
