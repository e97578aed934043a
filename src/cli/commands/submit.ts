/**
 * `allot submit -- CMD ARGS...`: a one-step job, like Slurm's `srun`. Waits, shows its state as it
 * changes, and exits with the workload's exit code.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { constants } from 'node:os';
import type { Command } from 'commander';
import type { Client } from '@temporalio/client';
import type { Issue } from '../../core';
import { formatIssues, parseCustomPairs, unknownLimitMessage } from '../../core';
import type { LimitReport } from '../../workflows/messages';
import { CONTROL_TASK_QUEUE, DEFAULT_POOL, limitsQuery, poolWorkflowId } from '../../workflows/messages';
import { NON_ZERO_EXIT } from '../../workflows/failures';
import type { StepInput, StepResult } from '../../workflows/step-types';
import { validateStepInput } from '../../workflows/step-validation';
import { cliClient } from '../context';
import { UserError } from '../errors';
import { parseInteger, parsePairs, parseSeconds } from '../parse';
import { followStep } from '../watch';
import type { Exit } from '../options';
import { collect } from '../options';
import { formatDuration } from '../format';

/** Adds `submit` to the program. */
export function registerSubmit(program: Command, exit: Exit): void {
  program
    .command('submit')
    .description('run one command as a step, like srun; exits with its exit code')
    .usage('[options] -- CMD [ARGS...]')
    .option('--gpu <n>', 'GPUs: a whole number, or a fraction of one GPU like 0.5')
    .option('--cpu <quantity>', 'CPU, e.g. 2 or 500m (default 1)')
    .option('--memory <quantity>', 'memory, e.g. 8Gi (default 1Gi)')
    .option('--gpu-model <model>', 'GPU model, or alternatives A100|H100')
    .option('--gpu-memory <quantity>', 'minimum memory per GPU, e.g. 40Gi')
    .option('--label <key=value>', 'node label to require (repeatable)', collect)
    .option('--resource <name=n>', 'custom resource to hold on the node, e.g. nvme=1 (repeatable)', collect)
    .option(
      '--limit <name=n>',
      'units of a named limit to hold while it runs, e.g. feature-store=1 (repeatable)',
      collect,
    )
    .option('--pool <name>', 'pool', DEFAULT_POOL)
    .option('--name <name>', 'step name (default: the command)')
    .option('--priority <n>', 'priority from -1000 to 1000, larger first (default 0)')
    .option('--team <team>', 'team to account the step to')
    .option('--env <key=value>', 'environment variable for the workload (repeatable)', collect)
    .option('--cwd <dir>', 'working directory of the workload (default: here)')
    .option('--grace-period <seconds>', 'SIGTERM to SIGKILL on cancellation (default 30)')
    .option('--time-limit <seconds>', 'wall-clock limit')
    .option('--memory-limit <quantity>', 'kill the step past this memory (default: --memory), e.g. 12Gi')
    .option(
      '--preemptible',
      'may be evicted by higher-priority work; it then queues again and resumes from its checkpoint',
    )
    .option('--replicas <n>', 'run a gang of n replicas, granted and stopped together (default 1)')
    .option(
      '--replica-placement <how>',
      'spread: one replica per node (the default); pack: several on a node where they fit',
    )
    .option('--no-wait', 'return once submitted')
    .option('--json', 'print one JSON object with workflowId (and the result)')
    .argument('[command...]', 'the workload, as argv (never run through a shell)')
    .action(async (command: string[], o: SubmitOptions) => exit(await submit(command, o)));
}

/** Options of `allot submit`. */
export interface SubmitOptions {
  gpu?: string;
  cpu?: string;
  memory?: string;
  gpuModel?: string;
  gpuMemory?: string;
  label?: string[];
  resource?: string[];
  limit?: string[];
  pool?: string;
  name?: string;
  priority?: string;
  team?: string;
  env?: string[];
  cwd?: string;
  gracePeriod?: string;
  timeLimit?: string;
  memoryLimit?: string;
  preemptible?: boolean;
  replicas?: string;
  replicaPlacement?: string;
  wait: boolean;
  json?: boolean;
}

/** Builds the step from the flags; every problem is reported at once. */
export function buildSubmitStep(command: string[], o: SubmitOptions): StepInput {
  if (command.length === 0)
    throw new UserError('nothing to run: give the command after --, e.g. `allot submit --gpu 1 -- python train.py`');
  const resources: NonNullable<StepInput['resources']> = {};
  const gpu = o.gpu !== undefined && /^-?\d+(\.\d+)?$/.test(o.gpu) ? Number(o.gpu) : o.gpu;
  if (gpu !== undefined) resources.gpu = gpu;
  if (o.cpu !== undefined) resources.cpu = o.cpu;
  if (o.memory !== undefined) resources.memory = o.memory;
  if (o.gpuModel !== undefined) resources.gpuModel = o.gpuModel;
  if (o.gpuMemory !== undefined) resources.gpuMemory = o.gpuMemory;
  if (o.label) resources.labels = parsePairs(o.label, '--label');
  const resourceIssues: Issue[] = [];
  const custom = parseCustomPairs(o.resource, ['--resource'], resourceIssues);
  if (custom) resources.custom = custom;
  const step: StepInput = {
    name: o.name ?? path.basename(command[0] ?? 'step'),
    command,
    resources,
    pool: o.pool ?? DEFAULT_POOL,
    priority: parseInteger(o.priority, '--priority', -1000, 1000),
    team: o.team,
    env: o.env ? parsePairs(o.env, '--env') : undefined,
    cwd: o.cwd !== undefined ? path.resolve(o.cwd) : process.cwd(),
    gracePeriodMs: parseSeconds(o.gracePeriod, '--grace-period'),
    timeLimitMs: parseSeconds(o.timeLimit, '--time-limit'),
    ...(o.memoryLimit !== undefined ? { memoryLimit: o.memoryLimit } : {}),
    preemptible: o.preemptible,
    ...(o.limit ? { limits: limitsFrom(o.limit) } : {}),
    ...(o.replicas !== undefined
      ? { replicas: /^\d+$/.test(o.replicas) ? Number(o.replicas) : (o.replicas as unknown as number) }
      : {}),
    ...(o.replicaPlacement !== undefined
      ? { replicaPlacement: o.replicaPlacement as StepInput['replicaPlacement'] }
      : {}),
  };
  const issues = [...resourceIssues, ...validateStepInput(step).issues];
  if (issues.length > 0) {
    const flags: Record<string, string> = {
      'resources.gpu': '--gpu',
      'resources.cpu': '--cpu',
      'resources.memory': '--memory',
      'resources.gpuModel': '--gpu-model',
      'resources.gpuMemory': '--gpu-memory',
      memoryLimit: '--memory-limit',
      replicas: '--replicas',
      replicaPlacement: '--replica-placement',
    };
    const flagOf = (path: Issue['path']): string =>
      path[0] === 'limits' ? `--limit ${path.slice(1).join('.')}`.trim() : (flags[path.join('.')] ?? path.join('.'));
    const renamed = issues.map((i) => ({ ...i, path: [flagOf(i.path)] }));
    throw new UserError(`invalid step:\n${formatIssues(renamed).replace(/^/gm, '  ')}`);
  }
  return step;
}

/** `--limit NAME=N` flags into `{ NAME: N }`; a bad amount is left for the step's validation to name. */
function limitsFrom(values: readonly string[]): Record<string, number> {
  // Own properties (see `parsePairs`): `__proto__=1` is refused by validation, not dropped.
  return Object.fromEntries(
    Object.entries(parsePairs(values, '--limit')).map(([name, n]) => [
      name,
      /^\d+$/.test(n) ? Number(n) : (n as unknown as number),
    ]),
  );
}

/**
 * Refuses limits the pool does not have, before the step starts (the pool would reject the step
 * too, but only once it has started).
 */
async function checkLimitsExist(client: Client, step: StepInput): Promise<void> {
  const asked = Object.keys(step.limits ?? {});
  if (asked.length === 0) return;
  const pool = step.pool ?? DEFAULT_POOL;
  let report: LimitReport;
  try {
    report = await client.workflow.getHandle(poolWorkflowId(pool)).query(limitsQuery);
  } catch {
    // A pool that does not run (or an older one): the step says so, or the pool rejects it.
    return;
  }
  const missing = asked.find((name) => !report.limits.some((l) => l.name === name));
  if (missing !== undefined)
    throw new UserError(`--limit ${missing}: ${unknownLimitMessage(missing, report.limits, `pool ${pool}`)}`);
}

/** Runs `allot submit`; returns the process exit code. */
export async function submit(command: string[], o: SubmitOptions): Promise<number> {
  const step = buildSubmitStep(command, o);
  const { client, close } = await cliClient();
  try {
    await checkLimitsExist(client, step);
    const workflowId = `submit-${step.name.replace(/[^A-Za-z0-9._-]/g, '_')}-${randomUUID().slice(0, 8)}`;
    const handle = await client.workflow.start('allotStep', {
      taskQueue: CONTROL_TASK_QUEUE,
      workflowId,
      args: [step],
    });
    const say = (line: string): void => void process.stderr.write(`${line}\n`);
    if (!o.wait) {
      if (o.json) process.stdout.write(`${JSON.stringify({ workflowId, runId: handle.firstExecutionRunId })}\n`);
      else say(`submitted ${workflowId}`);
      return 0;
    }
    say(`submitted ${workflowId}`);
    const result = handle.result() as Promise<StepResult>;
    await followStep(client, handle, result, say);
    try {
      const r = await result;
      const where = (x: { nodeId: string; gpuIndices: number[] }): string =>
        `${x.nodeId}${x.gpuIndices.length > 0 ? ` (GPUs ${x.gpuIndices.join(',')})` : ''}`;
      if (r.replicas) {
        say(`${step.name}: ${r.replicas.length} replicas succeeded in ${formatDuration(r.runningMs)}`);
        for (const x of r.replicas) say(`  replica ${x.rank} on ${where(x)}: log ${x.logFile ?? '-'}`);
      } else say(`${step.name}: succeeded on ${where(r)} in ${formatDuration(r.runningMs)}; log ${r.logFile}`);
      if (o.json) process.stdout.write(`${JSON.stringify({ workflowId, status: 'succeeded', result: r })}\n`);
      return 0;
    } catch (err) {
      return reportFailure(err, workflowId, step.name, o.json === true);
    }
  } finally {
    await close();
  }
}

/** Prints why a step failed and returns the exit code: the workload's own where it had one. */
function reportFailure(err: unknown, workflowId: string, name: string, json: boolean): number {
  if (!(err instanceof WorkflowFailedError)) throw err;
  const cause = err.cause;
  let code = 1;
  let message = cause?.message ?? err.message;
  let result: StepResult | undefined;
  let type = cause?.name ?? 'Failed';
  if (cause instanceof ApplicationFailure) {
    type = cause.type ?? type;
    if (cause.type === NON_ZERO_EXIT) {
      result = cause.details?.[0] as StepResult | undefined;
      if (result?.exitCode !== null && result?.exitCode !== undefined) code = result.exitCode;
      else if (result?.signal) code = 128 + ((constants.signals as Record<string, number>)[result.signal] ?? 0);
    }
  }
  if (cause?.name === 'CancelledFailure') {
    type = 'Cancelled';
    message = `step ${name} was cancelled`;
    code = 130;
  }
  process.stderr.write(`${name}: failed: ${message}\n`);
  // A gang's failure shows the log of each replica that failed on its own.
  const logs = result?.replicas
    ? result.replicas.filter((x) => x.exitCode !== null && x.exitCode !== 0)
    : result
      ? [result]
      : [];
  for (const l of logs) {
    if (l.logTail && l.logTail.length > 0)
      process.stderr.write(`--- last lines of ${l.logFile ?? ''} ---\n${l.logTail.join('\n')}\n`);
  }
  if (json)
    process.stdout.write(
      `${JSON.stringify({ workflowId, status: 'failed', type, message, exitCode: code, result })}\n`,
    );
  return code;
}
