/**
 * The table of a pipeline's steps, kept as the pipeline workflow's current details so that the
 * Temporal UI shows it on the pipeline's page (and `temporal workflow describe` prints it).
 *
 * The rows live on the workflow's global object: each workflow execution has its own, also when
 * the worker reuses one V8 context for many workflows.
 */
import { setCurrentDetails } from '@temporalio/workflow';
import type { StepInput, StepResult } from './step-types';

/** Where a step stands, as its pipeline sees it. */
export type PipelineStepState = 'started' | 'retrying' | 'succeeded' | 'failed' | 'cancelled';

/** One row of the table. */
export interface PipelineStepRow {
  name: string;
  state: PipelineStepState;
  /** What the step asked for, e.g. `gpu 1, cpu 1, memory 1Gi`. */
  resources: string;
  /** Attempt of the step under its retry policy, from 1. */
  attempt: number;
  nodeId?: string;
  gpuIndices?: number[];
  queuedMs?: number;
  runningMs?: number;
  exitCode?: number | null;
  note?: string;
  /** The step's artifacts (its declared outputs in the store), once it has succeeded. */
  artifacts?: StepResult['artifacts'];
  /** Where its checkpoint lives in the store, when it is kept. */
  checkpoint?: string;
}

const ROWS_KEY = '__allotPipelineSteps';

function rows(): PipelineStepRow[] {
  const g = globalThis as unknown as Record<string, PipelineStepRow[] | undefined>;
  return (g[ROWS_KEY] ??= []);
}

/** The rows so far, in the order the steps started. */
export function pipelineSteps(): readonly PipelineStepRow[] {
  return rows();
}

/** Records that a step started (or started again), and redraws the table. */
export function stepStarted(input: StepInput, attempt: number): void {
  const all = rows();
  let row = all.find((r) => r.name === input.name);
  if (!row) {
    row = { name: input.name, state: 'started', resources: describeResources(input), attempt };
    all.push(row);
  }
  Object.assign(row, { state: 'started', attempt, note: undefined });
  redraw();
}

/** Records how a step ended, and redraws the table. */
export function stepEnded(
  name: string,
  state: Exclude<PipelineStepState, 'started'>,
  result?: StepResult,
  note?: string,
): void {
  const row = rows().find((r) => r.name === name);
  if (!row) return;
  row.state = state;
  row.note = note;
  if (result) {
    // A gang's row names every replica's node, in rank order.
    row.nodeId = result.replicas ? result.replicas.map((r) => r.nodeId).join(',') : result.nodeId;
    row.gpuIndices = result.gpuIndices;
    row.queuedMs = result.queuedMs;
    row.runningMs = result.runningMs;
    row.exitCode = result.exitCode;
    row.artifacts = result.artifacts;
    row.checkpoint = result.checkpoint;
  }
  redraw();
}

/** What a step asks for, in a few words: `gpu 2 × 4 replicas, cpu 4, memory 16Gi`. */
export function describeResources(input: StepInput): string {
  const r = input.resources ?? {};
  const parts = [
    r.gpu !== undefined && r.gpu !== 0 ? `gpu ${String(r.gpu)}${r.gpuModel ? ` (${r.gpuModel})` : ''}` : undefined,
    `cpu ${String(r.cpu ?? 1)}`,
    `memory ${String(r.memory ?? '1Gi')}`,
  ].filter((p): p is string => p !== undefined);
  const replicas = input.replicas ?? 1;
  return `${parts.join(', ')}${replicas > 1 ? ` × ${replicas} replicas` : ''}`;
}

/** Space after each cell: the Temporal UI draws markdown tables without padding. */
const GAP = '\u00a0\u00a0\u00a0';

/** The table in Temporal's markdown: one row per step, columns a person scans left to right. */
export function renderPipelineTable(list: readonly PipelineStepRow[]): string {
  const seconds = (ms: number | undefined): string => (ms === undefined ? '' : `${(ms / 1000).toFixed(1)}s`);
  const notes = list.map((r) =>
    [
      r.attempt > 1 ? `attempt ${r.attempt}` : '',
      r.note ?? (r.exitCode !== undefined && r.exitCode !== null && r.exitCode !== 0 ? `exit code ${r.exitCode}` : ''),
    ]
      .filter((n) => n !== '')
      .join('; '),
  );
  const header = [
    'step',
    'state',
    'node',
    'GPUs',
    'queued',
    'ran',
    'resources',
    ...(notes.some((n) => n) ? ['note'] : []),
  ];
  const rows = list.map((r, i) => [
    r.name,
    r.state,
    r.nodeId ?? '',
    r.gpuIndices && r.gpuIndices.length > 0 ? r.gpuIndices.join(',') : '',
    seconds(r.queuedMs),
    seconds(r.runningMs),
    r.resources,
    ...(header.length > 7 ? [notes[i] ?? ''] : []),
  ]);
  const line = (cells: string[]): string => `| ${cells.map((c) => `${c.replace(/\|/g, '\\|')}${GAP}`).join(' | ')} |`;
  const counts = (['succeeded', 'failed', 'cancelled', 'retrying', 'started'] as const)
    .map((state) => [state, list.filter((r) => r.state === state).length] as const)
    .filter(([, n]) => n > 0)
    .map(([state, n]) => `${n} ${state === 'started' ? 'in progress' : state}`);
  return [
    `**allot pipeline** — ${list.length} step${list.length === 1 ? '' : 's'}${counts.length > 0 ? `: ${counts.join(', ')}` : ''}`,
    '',
    line(header),
    `|${header.map(() => ' --- ').join('|')}|`,
    ...rows.map(line),
    ...renderStored(list),
  ].join('\n');
}

/** The artifacts and kept checkpoints of the steps, one line each, under the table. */
function renderStored(list: readonly PipelineStepRow[]): string[] {
  const lines: string[] = [];
  for (const r of list) {
    for (const [name, a] of Object.entries(r.artifacts ?? {}))
      lines.push(`- ${r.name}.${name}: \`${a.uri}\` (${a.size} bytes, sha256 ${a.sha256.slice(0, 12)}…)`);
    if (r.checkpoint) lines.push(`- ${r.name} checkpoint: \`${r.checkpoint}\``);
  }
  return lines.length > 0 ? ['', '**stored**', '', ...lines] : [];
}

function redraw(): void {
  setCurrentDetails(renderPipelineTable(rows()));
}
