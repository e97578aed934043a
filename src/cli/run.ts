/**
 * `allot run <workflowType>`: starts a pipeline (or attaches to a running one with the same id),
 * follows its steps, and exits 0 on success, non-zero on failure: the CI trigger.
 */
import { randomUUID } from 'node:crypto';
import { WorkflowFailedError, WorkflowNotFoundError } from '@temporalio/client';
import type { Client } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure, TerminatedFailure, TimeoutFailure } from '@temporalio/common';
import { CONTROL_TASK_QUEUE } from '../workflows/messages';
import { NON_ZERO_EXIT } from '../workflows/failures';
import type { StepProgress, StepResult } from '../workflows/step-types';
import { cliClient } from './context';
import { rootMessage, UserError } from './errors';
import { formatDuration } from './format';
import { parseInput } from './parse';
import { describeProgress, readProgress, renderProgressTable, stepElapsed } from './watch';

/** Options of `allot run`. */
export interface RunOptions {
  input?: string;
  id?: string;
  wait: boolean;
  json?: boolean;
  taskQueue?: string;
}

/** Exit codes of `allot run`. */
export const RUN_EXIT = { succeeded: 0, failed: 1, cancelled: 130 } as const;

/** One step of the pipeline as `allot run` follows it. */
interface FollowedStep {
  workflowId: string;
  runId: string;
  /** The step relative to the pipeline: `train`, or `sweep/train-1` inside a sub-pipeline. */
  label: string;
  startedAt: number;
  progress?: StepProgress;
  /** Closed steps are read once more, then no longer queried. */
  final: boolean;
}

/** Runs `allot run`; returns the exit code. */
export async function run(workflowType: string, o: RunOptions): Promise<number> {
  if (!/^[A-Za-z_$][\w$]*$/.test(workflowType)) {
    throw new UserError(
      `workflow type must be the name of an exported workflow function (e.g. trainPipeline), got ${JSON.stringify(workflowType)}`,
    );
  }
  const args = parseInput(o.input);
  const { client, settings, close } = await cliClient();
  const say = (line: string): void => void process.stderr.write(`${line}\n`);
  try {
    const workflowId =
      o.id ?? `${workflowType}-${new Date().toISOString().replace(/[:.]/g, '-')}-${randomUUID().slice(0, 4)}`;
    const running = await runningType(client, workflowId);
    if (running !== undefined && running !== workflowType) {
      throw new UserError(
        `--id ${workflowId} is already running as ${running}, not ${workflowType}; choose another --id or run ${running}`,
      );
    }
    // USE_EXISTING: a second `allot run --id X` while X runs attaches to it instead of starting another.
    const handle = await client.workflow.start(workflowType, {
      taskQueue: o.taskQueue ?? CONTROL_TASK_QUEUE,
      workflowId,
      args,
      workflowIdConflictPolicy: 'USE_EXISTING',
      staticSummary: `allot pipeline ${workflowType}`,
      staticDetails: `Started by \`allot run\`. Each step is an \`allotStep\` child workflow; the table of steps is in this workflow's current details. Filter the steps with \`RootWorkflowId = "${workflowId}"\`.`,
    });
    const { runId } = await handle.describe();
    const attached = running !== undefined;
    say(
      `${attached ? 'attached to running' : 'started'} ${workflowType} ${workflowId} (run ${runId}) on ${settings.connectionOptions.address ?? 'localhost:7233'}, namespace ${settings.namespace}`,
    );
    if (!o.wait) {
      if (o.json)
        process.stdout.write(`${JSON.stringify({ workflowId, runId, status: attached ? 'attached' : 'started' })}\n`);
      return 0;
    }
    const result = client.workflow.getHandle(workflowId, runId).result();
    const steps = await followPipeline(client, { workflowId, runId }, result, async (stuck) => {
      say(
        `${workflowType} ${workflowId}: the worker cannot run the pipeline's code (attempt ${stuck.attempt}): ${stuck.message}`,
      );
      if (!attached && UNKNOWN_TYPE.test(stuck.message)) {
        await client.workflow
          .getHandle(workflowId, runId)
          .terminate(`allot run: no worker knows workflow type ${workflowType}`)
          .catch(() => undefined);
        throw new UserError(
          `no worker on task queue ${o.taskQueue ?? CONTROL_TASK_QUEUE} has a pipeline named ${workflowType}; check the name, or start the worker with --workflows pointing at the module that exports it (the run was terminated)`,
        );
      }
      say(
        '  Temporal retries it until a fixed worker is deployed; or stop it with `allot cancel` / `temporal workflow terminate`.',
      );
    });
    const summary = steps.map(stepSummary);
    try {
      const value: unknown = await result;
      say(`${workflowType} ${workflowId}: succeeded`);
      process.stdout.write(
        o.json
          ? `${JSON.stringify({ workflowId, runId, status: 'succeeded', result: value ?? null, steps: summary })}\n`
          : `${JSON.stringify(value ?? null, null, 2)}\n`,
      );
      return RUN_EXIT.succeeded;
    } catch (err) {
      if (!(err instanceof WorkflowFailedError)) throw err;
      const outcome = describeFailure(err, steps);
      say(
        `${workflowType} ${workflowId}: ${outcome.status}${outcome.step ? ` at step ${outcome.step}` : ''}: ${outcome.message}`,
      );
      if (outcome.result && outcome.result.logTail.length > 0) {
        say(`--- last lines of ${outcome.step ?? 'the step'}'s log (${outcome.result.logFile}) ---`);
        say(outcome.result.logTail.join('\n'));
        say('---');
      }
      if (o.json) {
        process.stdout.write(
          `${JSON.stringify({
            workflowId,
            runId,
            status: outcome.status,
            step: outcome.step,
            message: outcome.message,
            exitCode: outcome.result?.exitCode,
            logFile: outcome.result?.logFile,
            logTail: outcome.result?.logTail,
            steps: summary,
          })}\n`,
        );
      }
      return outcome.status === 'cancelled' ? RUN_EXIT.cancelled : RUN_EXIT.failed;
    }
  } finally {
    await close();
  }
}

/** The type of the running workflow with this id, or `undefined` if none runs. */
async function runningType(client: Client, workflowId: string): Promise<string | undefined> {
  try {
    const d = await client.workflow.getHandle(workflowId).describe();
    return d.status.name === 'RUNNING' ? d.type : undefined;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return undefined;
    throw err;
  }
}

/**
 * Shows each step's progress until the pipeline ends: a table redrawn in place on a terminal, one
 * line per change otherwise (CI logs). Returns the steps as last seen.
 */
async function followPipeline(
  client: Client,
  pipeline: { workflowId: string; runId: string },
  until: Promise<unknown>,
  onStuck: (stuck: WorkflowTaskFailure) => Promise<void>,
): Promise<FollowedStep[]> {
  let done = false;
  void until.then(
    () => (done = true),
    () => (done = true),
  );
  const tty = process.stderr.isTTY === true;
  const steps = new Map<string, FollowedStep>();
  const printed = new Map<string, string>();
  const shownRunning = new Set<string>();
  let drawnLines = 0;
  const byRoot = `RootWorkflowId = "${pipeline.workflowId}" AND WorkflowType = "allotStep"`;
  // RootRunId keeps steps of earlier runs of the same id out; servers before it know only RootWorkflowId.
  let query = `RootWorkflowId = "${pipeline.workflowId}" AND RootRunId = "${pipeline.runId}" AND WorkflowType = "allotStep"`;
  const poll = async (): Promise<void> => {
    try {
      for await (const wf of client.workflow.list({ query })) {
        const key = `${wf.workflowId}#${wf.runId}`;
        let s = steps.get(key);
        if (!s) {
          s = {
            workflowId: wf.workflowId,
            runId: wf.runId,
            label: wf.workflowId.startsWith(`${pipeline.workflowId}/`)
              ? wf.workflowId.slice(pipeline.workflowId.length + 1)
              : wf.workflowId,
            startedAt: wf.startTime.getTime(),
            final: false,
          };
          steps.set(key, s);
        }
        if (s.final) continue;
        const p = await readProgress(client, client.workflow.getHandle(wf.workflowId, wf.runId));
        if (p) s.progress = p;
        if (wf.status.name !== 'RUNNING' && p) s.final = true;
      }
    } catch (err) {
      if (query !== byRoot && /RootRunId/.test(String(err))) query = byRoot;
      // Otherwise visibility may lag or be briefly unavailable; the pipeline's result still arrives.
    }
  };
  const show = (): void => {
    const list = [...steps.values()]
      .filter((s) => s.progress !== undefined)
      .sort((a, b) => a.startedAt - b.startedAt || a.label.localeCompare(b.label));
    const now = Date.now();
    if (tty) {
      const text = renderProgressTable(
        list.map((s) => ({ label: s.label, progress: s.progress as StepProgress })),
        now,
      );
      const clear = drawnLines > 0 ? `\x1b[${drawnLines}A\x1b[J` : '';
      process.stderr.write(`${clear}${text}\n`);
      drawnLines = text.split('\n').length;
      return;
    }
    for (const s of list) {
      const p = s.progress as StepProgress;
      const key = `${s.workflowId}#${s.runId}`;
      const line = describeProgress({ ...p, name: s.label }, now);
      if (printed.get(key) === line) continue;
      // A step that ran between two looks still gets its "running" line, so every log tells where it ran.
      if (p.state === 'running') shownRunning.add(key);
      else if (!shownRunning.has(key) && p.startedAt !== undefined && p.nodeId !== undefined) {
        shownRunning.add(key);
        process.stderr.write(`  ${describeProgress({ ...p, name: s.label, state: 'running' }, now)}\n`);
      }
      printed.set(key, line);
      const after =
        p.state === 'running' ? ` (after ${formatDuration(now - p.submittedAt - stepElapsed(p, now))} queued)` : '';
      process.stderr.write(`  ${line}${after}\n`);
    }
  };
  let reported = '';
  for (let round = 0; !done; round++) {
    await poll();
    show();
    if (round % 4 === 3) {
      const stuck = await workflowTaskFailure(client, pipeline);
      if (stuck && stuck.message !== reported) {
        reported = stuck.message;
        if (tty) drawnLines = 0;
        await onStuck(stuck);
      }
    }
    await Promise.race([until.catch(() => undefined), new Promise((r) => setTimeout(r, 500))]);
  }
  // Last looks until visibility has caught up: at least the steps in the pipeline's own table, all closed.
  const expected = await directStepCount(client, pipeline);
  const settle = Date.now() + 5000;
  for (let previous = -1; ;) {
    await poll();
    const seen = [...steps.values()];
    const direct = seen.filter((st) => !st.label.includes('/')).length;
    const settled = seen.length === previous && direct >= expected && seen.every((st) => st.final);
    if (settled || Date.now() > settle) break;
    previous = seen.length;
    await new Promise((r) => setTimeout(r, 250));
  }
  show();
  return [...steps.values()].sort((a, b) => a.startedAt - b.startedAt);
}

/** The message of a workflow task failure that names a type no worker has. */
const UNKNOWN_TYPE = /no such function is exported by the workflow bundle/;

/** A pipeline whose code keeps failing on the worker (a bug, an unknown type): Temporal retries it. */
interface WorkflowTaskFailure {
  attempt: number;
  message: string;
}

/** Why the pipeline's workflow task keeps failing, once it has failed at least twice. */
async function workflowTaskFailure(
  client: Client,
  pipeline: { workflowId: string; runId: string },
): Promise<WorkflowTaskFailure | undefined> {
  try {
    const handle = client.workflow.getHandle(pipeline.workflowId, pipeline.runId);
    const attempt = (await handle.describe()).raw.pendingWorkflowTask?.attempt ?? 0;
    if (attempt < 2) return undefined;
    const events = (await handle.fetchHistory()).events ?? [];
    const failed = [...events].reverse().find((e) => e.workflowTaskFailedEventAttributes);
    const message = failed?.workflowTaskFailedEventAttributes?.failure?.message;
    return message ? { attempt, message } : undefined;
  } catch {
    return undefined;
  }
}

/** How many steps the pipeline itself ran, from its table of steps (0 when it keeps none). */
async function directStepCount(client: Client, pipeline: { workflowId: string; runId: string }): Promise<number> {
  try {
    const meta = await client.workflow
      .getHandle(pipeline.workflowId, pipeline.runId)
      .query<{ currentDetails?: string | null }>('__temporal_workflow_metadata');
    const rows = (meta.currentDetails ?? '').split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| ---'));
    return Math.max(0, rows.length - 1);
  } catch {
    return 0;
  }
}

/** A step as `--json` reports it. */
function stepSummary(s: FollowedStep): Record<string, unknown> {
  const p = s.progress;
  return {
    name: s.label,
    workflowId: s.workflowId,
    runId: s.runId,
    state: p?.state,
    nodeId: p?.nodeId ?? p?.result?.nodeId,
    gpuIndices: p?.gpuIndices ?? p?.result?.gpuIndices,
    queuedMs: p?.result?.queuedMs,
    runningMs: p?.result?.runningMs,
    exitCode: p?.result?.exitCode,
    error: p?.error,
  };
}

/** What went wrong: failed or cancelled, at which step, why, and the step's result if it ran. */
function describeFailure(
  err: WorkflowFailedError,
  steps: readonly FollowedStep[],
): { status: 'failed' | 'cancelled'; step?: string; message: string; result?: StepResult } {
  let cause: unknown = err.cause;
  let stepId: string | undefined;
  let status: 'failed' | 'cancelled' = 'failed';
  let message = rootMessage(err);
  while (cause instanceof Error) {
    const c = cause as Error & { workflowType?: string; execution?: { workflowId?: string }; cause?: unknown };
    if (c.workflowType === 'allotStep' && c.execution?.workflowId) stepId = c.execution.workflowId;
    if (cause instanceof CancelledFailure) {
      status = 'cancelled';
      message = 'the pipeline was cancelled; its steps were cancelled and gave back what they held';
    }
    if (cause instanceof TerminatedFailure) message = 'the pipeline was terminated';
    if (cause instanceof TimeoutFailure) message = `the pipeline timed out (${cause.timeoutType ?? 'timeout'})`;
    if (cause instanceof ApplicationFailure && cause.type === NON_ZERO_EXIT) {
      const result = cause.details?.[0] as StepResult | undefined;
      return { status, step: labelOf(stepId, steps) ?? result?.name, message: cause.message, result };
    }
    cause = c.cause;
  }
  return { status, step: labelOf(stepId, steps), message };
}

function labelOf(stepId: string | undefined, steps: readonly FollowedStep[]): string | undefined {
  if (stepId === undefined) return undefined;
  return steps.find((s) => s.workflowId === stepId)?.label ?? stepId.split('/').pop();
}
