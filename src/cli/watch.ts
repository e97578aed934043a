/**
 * Following a step while it runs: state changes as lines a person can read.
 */
import type { Client, WorkflowHandle } from '@temporalio/client';
import { poolWorkflowId, progressQuery, requestQuery } from '../workflows/messages';
import type { StepProgress } from '../workflows/step-types';
import { formatDuration, table } from './format';

/** Describes a step's progress in one line. */
export function describeProgress(p: StepProgress, now: number): string {
  switch (p.state) {
    case 'queued':
      return `${p.name}: queued${p.reason ? ` (${p.reason}${p.message ? `: ${p.message}` : ''})` : ''}`;
    case 'running':
      if (p.replicas && p.replicas.length > 1) {
        const where = p.replicas.map(
          (r, rank) => `${rank}: ${r.nodeId}${r.gpuIndices.length > 0 ? ` (GPUs ${r.gpuIndices.join(',')})` : ''}`,
        );
        return `${p.name}: running ${p.replicas.length} replicas, ${where.join(', ')}`;
      }
      return `${p.name}: running on ${p.nodeId ?? '?'}${p.gpuIndices && p.gpuIndices.length > 0 ? `, GPUs ${p.gpuIndices.join(',')}` : ''}`;
    case 'succeeded':
      return `${p.name}: succeeded in ${formatDuration((p.endedAt ?? now) - (p.startedAt ?? now))}`;
    case 'failed':
      return `${p.name}: failed${p.error ? ` (${p.error})` : ''}`;
    default:
      return `${p.name}: ${p.state}`;
  }
}

/** Marks of each state in the live table. */
const MARK: Record<StepProgress['state'], string> = {
  queued: '…',
  running: '▶',
  preempted: '↺',
  succeeded: '✓',
  failed: '✗',
  cancelled: '■',
};

/** How long a step has been in its state (or took, once done), ms. */
export function stepElapsed(p: StepProgress, now: number): number {
  if (p.state === 'queued' || p.state === 'preempted') return now - p.submittedAt;
  if (p.state === 'running') return now - (p.startedAt ?? now);
  return (p.endedAt ?? now) - (p.startedAt ?? p.endedAt ?? now);
}

/**
 * The live table of a pipeline's steps, one row each: state, node, GPUs, elapsed, and the reason
 * while queued. `label` names a step relative to the pipeline (`train`, or `sweep/train-1`).
 */
export function renderProgressTable(steps: readonly { label: string; progress: StepProgress }[], now: number): string {
  if (steps.length === 0) return '  (no step started yet)';
  const rows = steps.map(({ label, progress: p }) => [
    `${MARK[p.state]} ${label}`,
    p.state,
    p.nodeId ?? '',
    p.gpuIndices && p.gpuIndices.length > 0 ? `GPUs ${p.gpuIndices.join(',')}` : '',
    formatDuration(stepElapsed(p, now)),
    p.state === 'queued' || p.state === 'preempted'
      ? `${p.reason ?? ''}${p.message ? `: ${p.message}` : ''}`
      : p.state === 'failed'
        ? (p.error ?? '')
        : '',
  ]);
  return table(
    ['  STEP', 'STATE', 'NODE', 'GPUS', 'ELAPSED', 'REASON'],
    rows.map((r) => [`  ${r[0] ?? ''}`, ...r.slice(1)]),
  );
}

/** Reads a step's progress, enriched with the pool's reason while it waits. */
export async function readProgress(client: Client, handle: WorkflowHandle): Promise<StepProgress | undefined> {
  let p: StepProgress;
  try {
    p = await handle.query(progressQuery);
  } catch {
    return undefined;
  }
  if (p.state === 'queued') {
    try {
      const where = await client.workflow.getHandle(poolWorkflowId(p.pool)).query(requestQuery, p.requestId);
      if (where?.status === 'queued') {
        p.reason = where.reason;
        p.message = `${where.message}; position ${where.position}`;
      }
    } catch {
      // The pool's view is a nicety; the step's own state is enough.
    }
  }
  return p;
}

/** Prints each change of a step's state until `until` settles. */
export async function followStep(
  client: Client,
  handle: WorkflowHandle,
  until: Promise<unknown>,
  write: (line: string) => void,
): Promise<void> {
  let done = false;
  void until.then(
    () => (done = true),
    () => (done = true),
  );
  let last = '';
  while (!done) {
    const p = await readProgress(client, handle);
    if (p && p.state !== 'succeeded' && p.state !== 'failed') {
      const line = describeProgress(p, Date.now());
      if (line !== last) write(line);
      last = line;
    }
    await Promise.race([until.catch(() => undefined), new Promise((r) => setTimeout(r, 300))]);
  }
}
