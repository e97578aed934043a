/**
 * What the launches of a step reported, read from Temporal alone (no access to the node needed):
 * each attempt's node, log file, last log lines, usage and end, from the step's history, and for
 * the attempt running now, from the heartbeats of its `launch` activity.
 */
import type { Client, WorkflowHandle } from '@temporalio/client';
import type { Payload } from '@temporalio/common';
import { decodeOptionalSinglePayload } from '@temporalio/common/lib/internal-non-workflow';
import type { CurrentUsage, LaunchFailureDetails } from '../activities';
import type { LaunchInput, LaunchResult } from '../workflows/step-types';
import type { StepUsage } from '../workflows/usage-types';
import { UserError } from './errors';

/** One attempt of a step on a node. */
export interface AttemptReport {
  attempt: number;
  /** A gang's replica this launch ran; absent for a single step. */
  rank?: number;
  nodeId?: string;
  /** The log file on the node, once known. */
  logFile?: string;
  /** Last lines of the log as the agent last reported them. */
  logTail: string[];
  usage?: StepUsage;
  /** The latest sample, while it runs. */
  current?: CurrentUsage;
  /** Whether the workload runs now. */
  running: boolean;
  /** How it ended: `exit 0`, `MemoryLimitExceeded: ...`, `cancelled`. */
  ended?: string;
}

/** What the agent heartbeats while a workload runs. */
interface Heartbeat {
  attempt?: number;
  rank?: number;
  logFile?: string;
  logTail?: string[];
  usage?: StepUsage;
  current?: CurrentUsage;
}

/** Decodes a first payload with the client's data converter (its codecs included, if any). */
async function decode<T>(handle: WorkflowHandle, payloads: Payload[] | null | undefined): Promise<T | undefined> {
  const first = payloads?.[0];
  if (!first) return undefined;
  try {
    return (await decodeOptionalSinglePayload<T>(handle.client.options.loadedDataConverter, first)) ?? undefined;
  } catch {
    return undefined;
  }
}

/** A handle to the step, or a clear error when there is no such workflow. */
export async function stepHandle(client: Client, stepId: string): Promise<WorkflowHandle> {
  const handle = client.workflow.getHandle(stepId);
  try {
    const d = await handle.describe();
    if (d.type !== 'allotStep') {
      throw new UserError(
        `${stepId} is not a step but a workflow of type ${d.type}; give a step's id, such as <pipeline id>/<step name> for a step of a pipeline`,
      );
    }
  } catch (err) {
    if (err instanceof UserError) throw err;
    const why = err instanceof Error ? err.message.split('\n')[0] : String(err);
    throw new UserError(
      `no step with id ${JSON.stringify(stepId)} (${why}); ` +
        'give the workflow id that `allot submit`, `allot run` or `allot status` shows, e.g. <pipeline id>/<step name>',
      1,
    );
  }
  return handle;
}

/**
 * The launch running now for the step (of a gang, replica 0's, unless every report is asked
 * for), from its heartbeats; undefined when none runs.
 */
export async function runningAttempt(handle: WorkflowHandle): Promise<AttemptReport | undefined> {
  const running = await runningAttempts(handle);
  return running.find((a) => (a.rank ?? 0) === 0) ?? running[0];
}

/** Every launch running now for the step (one per replica of a gang), from their heartbeats. */
async function runningAttempts(handle: WorkflowHandle): Promise<AttemptReport[]> {
  const d = await handle.describe();
  const pending = (d.raw.pendingActivities ?? []).filter((a) => a.activityType?.name === 'launch');
  return Promise.all(
    pending.map(async (p) => {
      const beat = await decode<Heartbeat>(handle, p.heartbeatDetails?.payloads);
      return {
        attempt: beat?.attempt ?? 0,
        ...(beat?.rank !== undefined ? { rank: beat.rank } : {}),
        logFile: beat?.logFile,
        logTail: beat?.logTail ?? [],
        usage: beat?.usage,
        current: beat?.current,
        running: beat !== undefined,
      };
    }),
  );
}

function nodeOf(taskQueue: string): string | undefined {
  return taskQueue.startsWith('allot-node-') ? taskQueue.slice('allot-node-'.length) : undefined;
}

/** Every attempt of the step so far, oldest first, with the one running now last. */
export async function stepAttempts(handle: WorkflowHandle): Promise<AttemptReport[]> {
  const history = await handle.fetchHistory();
  const bySchedule = new Map<string, AttemptReport>();
  const reports: AttemptReport[] = [];
  for (const e of history.events ?? []) {
    const scheduled = e.activityTaskScheduledEventAttributes;
    if (scheduled && scheduled.activityType?.name === 'launch') {
      const input = await decode<LaunchInput>(handle, scheduled.input?.payloads);
      const report: AttemptReport = {
        attempt: input?.attempt ?? reports.length + 1,
        ...(input?.gang ? { rank: input.gang.rank } : {}),
        nodeId: nodeOf(scheduled.taskQueue?.name ?? ''),
        logTail: [],
        running: false,
      };
      bySchedule.set(String(e.eventId), report);
      reports.push(report);
      continue;
    }
    const completed = e.activityTaskCompletedEventAttributes;
    const failed = e.activityTaskFailedEventAttributes;
    const cancelled = e.activityTaskCanceledEventAttributes;
    const timedOut = e.activityTaskTimedOutEventAttributes;
    const ref = completed ?? failed ?? cancelled ?? timedOut;
    const report = ref ? bySchedule.get(String(ref.scheduledEventId)) : undefined;
    if (!report) continue;
    if (completed) {
      const r = await decode<LaunchResult>(handle, completed.result?.payloads);
      Object.assign(report, {
        logFile: r?.logFile,
        logTail: r?.logTail ?? [],
        usage: r?.usage,
        ended: r?.signal ? `killed by ${r.signal}` : `exit ${String(r?.exitCode)}`,
      });
    } else if (failed) {
      const f = failed.failure;
      const d = await decode<LaunchFailureDetails>(handle, f?.applicationFailureInfo?.details?.payloads);
      Object.assign(report, {
        logFile: d?.logFile,
        logTail: d?.logTail ?? [],
        usage: d?.usage,
        ended: `${f?.applicationFailureInfo?.type ?? 'failed'}: ${f?.message ?? ''}`,
      });
    } else if (cancelled) {
      const d = await decode<LaunchFailureDetails>(handle, cancelled.details?.payloads);
      Object.assign(report, { logFile: d?.logFile, logTail: d?.logTail ?? [], usage: d?.usage, ended: 'cancelled' });
    } else if (timedOut) {
      const beat = await decode<Heartbeat>(
        handle,
        timedOut.failure?.timeoutFailureInfo?.lastHeartbeatDetails?.payloads,
      );
      Object.assign(report, {
        logFile: beat?.logFile,
        logTail: beat?.logTail ?? [],
        ended: 'lost: the agent stopped answering',
      });
    }
  }
  // Each launch running now is the latest open one of its replica (a single step's: of rank 0).
  for (const now of await runningAttempts(handle).catch(() => [])) {
    const open = reports.filter((r) => r.ended === undefined && (r.rank ?? 0) === (now.rank ?? 0));
    const last = open[open.length - 1];
    if (last) Object.assign(last, { ...now, attempt: now.attempt || last.attempt, nodeId: last.nodeId });
  }
  // An attempt whose log path was never reported keeps its logs beside the others' on the same node.
  for (const r of reports) {
    if (r.logFile) continue;
    const sibling = reports.find((o) => o.logFile && o.nodeId === r.nodeId);
    const suffix = r.rank ? `-rank-${r.rank}` : '';
    if (sibling?.logFile)
      r.logFile = sibling.logFile.replace(/attempt-\d+(-rank-\d+)?\.log$/, `attempt-${r.attempt}${suffix}.log`);
  }
  return reports;
}
