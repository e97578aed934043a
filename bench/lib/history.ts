/**
 * Reading workflow histories for the benchmarks: event times, signals in and out, workflow-task
 * durations and event counts per run.
 */
import type { Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { tsToMs } from '@temporalio/common/lib/time';
import { temporal } from '@temporalio/proto';

/** One history event. */
export type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

/** The events of one run of a workflow. */
export async function fetchEvents(client: Client, workflowId: string, runId?: string): Promise<HistoryEvent[]> {
  const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
  return history.events ?? [];
}

/** Time of an event, ms since the epoch. */
export function eventTime(e: HistoryEvent): number {
  return tsToMs(e.eventTime);
}

/** The first argument of a signal received (`WorkflowExecutionSignaled`), decoded. */
export function signalArg(e: HistoryEvent): unknown {
  const p = e.workflowExecutionSignaledEventAttributes?.input?.payloads?.[0];
  return p ? defaultPayloadConverter.fromPayload(p) : undefined;
}

/** Every run of a workflow id, oldest first, with its event count. */
export async function runsOf(client: Client, workflowId: string): Promise<{ runId: string; events: number }[]> {
  const runs: { runId: string; start: number; events: number }[] = [];
  for await (const wf of client.workflow.list({ query: `WorkflowId = "${workflowId}"` })) {
    const described = await client.workflow.getHandle(wf.workflowId, wf.runId).describe();
    runs.push({ runId: wf.runId, start: wf.startTime.getTime(), events: described.historyLength });
  }
  return runs.sort((a, b) => a.start - b.start).map(({ runId, events }) => ({ runId, events }));
}

/**
 * Durations of the workflow tasks of a run, from `WorkflowTaskStarted` to `WorkflowTaskCompleted`
 * (the worker's time: activation, decisions, and the round trip of the completion), ms.
 */
export function workflowTaskTimes(events: readonly HistoryEvent[]): { at: number; ms: number }[] {
  const started = new Map<string, number>();
  const times: { at: number; ms: number }[] = [];
  for (const e of events) {
    if (e.workflowTaskStartedEventAttributes) started.set(String(e.eventId), eventTime(e));
    const done = e.workflowTaskCompletedEventAttributes;
    if (done) {
      const t0 = started.get(String(done.startedEventId));
      if (t0 !== undefined) times.push({ at: t0, ms: eventTime(e) - t0 });
    }
  }
  return times;
}

/** Events in the current run of a workflow so far. */
export async function historyLength(client: Client, workflowId: string): Promise<number> {
  return (await client.workflow.getHandle(workflowId).describe()).historyLength;
}

/**
 * What a run's events are, by kind: the event type without its prefix, signals by name
 * (`signal:acquire`) and timers as `timer`; for reading where a workflow's history goes.
 */
export function eventKinds(events: readonly HistoryEvent[]): Map<string, number> {
  const kinds = new Map<string, number>();
  for (const e of events) {
    const type = temporal.api.enums.v1.EventType[e.eventType ?? 0] ?? String(e.eventType);
    let kind = type.replace(/^EVENT_TYPE_/, '').toLowerCase();
    const signal = e.workflowExecutionSignaledEventAttributes?.signalName;
    if (signal) kind = `signal:${signal}`;
    const update = e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.name;
    if (update) kind = `update:${update}`;
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
  }
  return kinds;
}
