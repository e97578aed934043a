/**
 * How `allot run` follows a pipeline: its steps' progress as it changes, why a pipeline is stuck,
 * and what went wrong when it failed.
 */
import type { Client, WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure, TerminatedFailure, TimeoutFailure } from '@temporalio/common';
import { NON_ZERO_EXIT } from '../workflows/failures';
import type { StepProgress, StepResult } from '../workflows/step-types';
import { rootMessage } from './errors';
import { formatDuration } from './format';
import { describeProgress, readProgress, renderProgressTable, stepElapsed } from './watch';

/** One step of the pipeline as `allot run` follows it. */
export interface FollowedStep {
  workflowId: string;
  runId: string;
  /** The step relative to the pipeline: `train`, or `sweep/train-1` inside a sub-pipeline. */
  label: string;
  startedAt: number;
  progress?: StepProgress;
  /** Closed steps are read once more, then no longer queried. */
  final: boolean;
}

/**
 * Shows each step's progress until the pipeline ends: a table redrawn in place on a terminal, one
 * line per change otherwise (CI logs). Returns the steps as last seen.
 */
export async function followPipeline(
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
export const UNKNOWN_TYPE = /no such function is exported by the workflow bundle/;

/** A pipeline whose code keeps failing on the worker (a bug, an unknown type): Temporal retries it. */
export interface WorkflowTaskFailure {
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
export function stepSummary(s: FollowedStep): Record<string, unknown> {
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
export function describeFailure(
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

/** The step's label among the followed steps, or the last part of its id. */
function labelOf(stepId: string | undefined, steps: readonly FollowedStep[]): string | undefined {
  if (stepId === undefined) return undefined;
  return steps.find((s) => s.workflowId === stepId)?.label ?? stepId.split('/').pop();
}
