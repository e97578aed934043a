/**
 * The invariant checker of a chaos run. It reads what the workloads recorded of their runs, what
 * the pool showed while the run went on and at its end, and the agents' ledgers, and finds:
 *
 * 1. **step lost**: a step that never completed, or a pipeline that failed or never finished;
 * 2. **ran twice at once**: two runs of one step alive at the same time;
 * 3. **GPU double-booked**: runs whose shares of one GPU add up to more than the whole GPU at some
 *    instant, or a pool that granted more than a node has;
 * 4. **not freed**: leases, queued requests or ledger claims left when everything has finished;
 * 5. **not fenced**: a run on an agent cut off from the server (a partition longer than a third
 *    of the node-lost time) that lived past two thirds of the node-lost time after the cut.
 *
 * A run's interval is from its start to its last sign of life (its last tick, or its end): a
 * killed run may have lived a little longer, never less, so every overlap found is real.
 */
import type { PoolStatus } from '../core';

/** What one run of a step recorded. */
export interface RunRecord {
  /** Step workflow id. */
  step: string;
  node: string;
  /** GPU indices it was pinned to. */
  gpus: number[];
  /** Share of one GPU, when it held part of one. */
  fraction?: number;
  lease: string;
  attempt: number;
  pid: number;
  /** Epoch ms of its start and of its last sign of life. */
  start: number;
  lastSeen: number;
  /** Whether it ran to its end. */
  ended: boolean;
  file: string;
}

/** One broken invariant. */
export interface Violation {
  invariant: 'step lost' | 'ran twice at once' | 'GPU double-booked' | 'not freed' | 'not fenced';
  message: string;
}

/** How a pipeline of the run ended. */
export interface PipelineOutcome {
  workflowId: string;
  status: 'completed' | 'failed' | 'unfinished';
  /** Why it failed or did not finish. */
  message?: string;
}

/** Reads a run file (a JSON header, `t <ms>` ticks, `end <ms>`); `undefined` if it has no header. */
export function parseRunFile(text: string, file: string): RunRecord | undefined {
  const [first, ...rest] = text.split('\n');
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(first ?? '') as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (typeof header.step !== 'string' || typeof header.start !== 'number') return undefined;
  let lastSeen = header.start;
  let ended = false;
  for (const line of rest) {
    const [kind, at] = line.split(' ');
    const t = Number(at);
    if (!Number.isFinite(t)) continue;
    if (kind === 't' || kind === 'end') lastSeen = Math.max(lastSeen, t);
    if (kind === 'end') ended = true;
  }
  const gpus = typeof header.gpus === 'string' && header.gpus !== '' ? header.gpus.split(',').map(Number) : [];
  return {
    step: header.step,
    node: String(header.node ?? ''),
    gpus,
    ...(typeof header.fraction === 'number' ? { fraction: header.fraction } : {}),
    lease: String(header.lease ?? ''),
    attempt: Number(header.attempt ?? 0),
    pid: Number(header.pid ?? 0),
    start: header.start,
    lastSeen,
    ended,
    file,
  };
}

function describeRun(r: RunRecord): string {
  const gpus = r.gpus.length > 0 ? ` GPU ${r.gpus.join(',')}${r.fraction !== undefined ? ` (${r.fraction})` : ''}` : '';
  return `attempt ${r.attempt} on ${r.node}${gpus}, lease ${r.lease}, pid ${r.pid}, ${r.start}..${r.lastSeen}${r.ended ? '' : ' (killed)'}`;
}

/** Invariants 1 to 3 over the runs of the steps that were submitted. */
export function checkRuns(runs: readonly RunRecord[], expectedSteps: readonly string[]): Violation[] {
  const violations: Violation[] = [];
  const byStep = new Map<string, RunRecord[]>();
  for (const r of runs) byStep.set(r.step, [...(byStep.get(r.step) ?? []), r]);
  for (const step of expectedSteps) {
    if (!(byStep.get(step) ?? []).some((r) => r.ended)) {
      violations.push({ invariant: 'step lost', message: `step ${step} never ran to its end` });
    }
  }
  for (const [step, list] of byStep) {
    const sorted = [...list].sort((a, b) => a.start - b.start);
    for (let i = 0; i < sorted.length; i++) {
      for (let j = i + 1; j < sorted.length; j++) {
        const a = sorted[i] as RunRecord;
        const b = sorted[j] as RunRecord;
        if (b.start < a.lastSeen) {
          violations.push({
            invariant: 'ran twice at once',
            message: `step ${step}: ${describeRun(a)} was still running when ${describeRun(b)} started`,
          });
        }
      }
    }
  }
  violations.push(...checkDevices(runs));
  return violations;
}

/** No GPU is shared beyond its whole at any instant, by the runs' own records. */
function checkDevices(runs: readonly RunRecord[]): Violation[] {
  const violations: Violation[] = [];
  const byDevice = new Map<string, RunRecord[]>();
  for (const r of runs) {
    for (const g of r.gpus) {
      const key = `${r.node} GPU ${g}`;
      byDevice.set(key, [...(byDevice.get(key) ?? []), r]);
    }
  }
  for (const [device, list] of byDevice) {
    // Sweep over starts and last signs of life; at equal times a run that ends goes first.
    const events = list.flatMap((r) => [
      { at: r.start, delta: 1, run: r },
      { at: r.lastSeen, delta: -1, run: r },
    ]);
    events.sort((a, b) => a.at - b.at || a.delta - b.delta);
    const live = new Set<RunRecord>();
    for (const e of events) {
      if (e.delta < 0) {
        live.delete(e.run);
        continue;
      }
      live.add(e.run);
      const share = [...live].reduce((s, r) => s + (r.fraction ?? 1), 0);
      if (share > 1 + 1e-9) {
        violations.push({
          invariant: 'GPU double-booked',
          message: `${device} held ${Math.round(share * 100)}% at ${e.at}: ${[...live].map((r) => `${r.step} (${describeRun(r)})`).join('; ')}`,
        });
      }
    }
  }
  return violations;
}

/** The pool never grants more than a node has (a sample of its status). */
export function checkPoolSample(status: PoolStatus, at: number): Violation[] {
  const violations: Violation[] = [];
  const over = (what: string): void => {
    violations.push({ invariant: 'GPU double-booked', message: `pool at ${at}: ${what}` });
  };
  for (const n of status.nodes) {
    if (n.cpu.usedMilli > n.cpu.capacityMilli)
      over(`node ${n.id} has ${n.cpu.usedMilli} of ${n.cpu.capacityMilli} milli-CPU granted`);
    if (n.memory.usedMiB > n.memory.capacityMiB)
      over(`node ${n.id} has ${n.memory.usedMiB} of ${n.memory.capacityMiB} MiB granted`);
    for (const g of n.gpus) {
      if (g.used > 1 + 1e-9) over(`node ${n.id} GPU ${g.index} is ${Math.round(g.used * 100)}% granted`);
    }
  }
  for (const l of status.leases) {
    const node = status.nodes.find((n) => n.id === l.nodeId);
    if (!node) continue;
    for (const share of l.gpus) {
      if (!node.gpus.some((g) => g.index === share.index))
        over(`lease ${l.leaseId} holds GPU ${share.index}, which node ${l.nodeId} does not have`);
    }
  }
  return violations;
}

/** Invariant 4, and what became of the pipelines: checked when the run is over. */
export function checkFinal(
  status: PoolStatus,
  ledgers: readonly { node: string; claims: readonly { leaseId: string; stepId: string }[] }[],
  pipelines: readonly PipelineOutcome[],
): Violation[] {
  const violations: Violation[] = [];
  for (const l of status.leases) {
    violations.push({
      invariant: 'not freed',
      message: `lease ${l.leaseId} of ${l.label} on ${l.nodeId} is still held`,
    });
  }
  for (const q of status.queue) {
    violations.push({
      invariant: 'not freed',
      message: `request ${q.requestId} (${q.label}) still waits: ${q.reason}`,
    });
  }
  for (const n of status.nodes) {
    for (const g of n.gpus) {
      if (g.used > 0)
        violations.push({ invariant: 'not freed', message: `node ${n.id} GPU ${g.index} is still in use` });
    }
  }
  for (const ledger of ledgers) {
    for (const c of ledger.claims) {
      violations.push({
        invariant: 'not freed',
        message: `agent ${ledger.node} still has lease ${c.leaseId} of ${c.stepId} in its ledger`,
      });
    }
  }
  for (const p of pipelines) {
    if (p.status !== 'completed') {
      violations.push({
        invariant: 'step lost',
        message: `pipeline ${p.workflowId} ${p.status === 'failed' ? 'failed' : 'never finished'}: ${p.message ?? ''}`,
      });
    }
  }
  return violations;
}

/** How long after it was stopped a workload may still tick, ms (its last tick, and the exit). */
const FENCE_SLACK_MS = 3_000;

/**
 * Runs alive on an agent when it was cut off from the server must be gone within two thirds of the
 * node-lost time, when the partition lasted long enough for the agent to fence itself (a third).
 */
export function checkFencing(
  runs: readonly RunRecord[],
  partitions: readonly { node: string; atMs: number; durationMs: number }[],
  began: number,
  nodeLostMs: number,
): Violation[] {
  const out: Violation[] = [];
  for (const p of partitions) {
    if (p.durationMs <= nodeLostMs / 3) continue;
    const cutAt = began + p.atMs;
    const by = cutAt + (2 * nodeLostMs) / 3 + FENCE_SLACK_MS;
    for (const r of runs) {
      if (r.node !== p.node || r.start >= cutAt || r.lastSeen <= by) continue;
      out.push({
        invariant: 'not fenced',
        message:
          `${r.step} (attempt ${r.attempt}) still ran on ${r.node} ${Math.round((r.lastSeen - cutAt) / 1000)} s after ` +
          `it was cut off for ${Math.round(p.durationMs / 1000)} s; its agent must stop it within ${Math.round((2 * nodeLostMs) / 3000)} s`,
      });
    }
  }
  return out;
}
