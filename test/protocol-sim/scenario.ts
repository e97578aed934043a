/**
 * What a protocol simulation run is made of: the cluster, the policy at the start, and a list of
 * input events (arrivals, cancellations, faults, administrator changes), all drawn from one seed.
 * Shrinking removes input events; everything else a run does follows from the seed and the list.
 */
import { SeededRandom } from '../../src/chaos/random';
import type { HealthPolicy, SchedulingPolicy } from '../../src/core';

/** A node of the simulated cluster. */
export interface SimNodeSpec {
  id: string;
  gpus: number;
  cpu: number;
  /** Custom resources the node offers (`lic`, `nvme`); absent when none. */
  custom?: Record<string, number>;
}

/** A step a pipeline submits. */
export interface SimStepSpec {
  id: string;
  /** Whole GPUs, or 0.5 for a share of one. */
  gpu: number;
  cpu: number;
  priority: number;
  team: string;
  preemptible: boolean;
  /** The step's own grace period between SIGTERM and SIGKILL, ms. */
  graceMs: number;
  /** Work the step needs, ms of running (lost when it is stopped: no checkpoints). */
  durationMs: number;
  /** How long the workload takes to exit after SIGTERM, ms (Infinity: it ignores SIGTERM). */
  exitAfterTermMs: number;
  /** Custom resources the step holds on its node; absent when none. */
  custom?: Record<string, number>;
  /** Units of the pool's named limits it asks for. */
  limits?: Record<string, number>;
  /** A gang: this many replicas (2 or more), each with the resources above, granted and run together. */
  replicas?: number;
  /** Where a gang's replicas go: one per node (`spread`, the default) or several on a node (`pack`). */
  replicaPlacement?: 'spread' | 'pack';
  /** A gang replica whose workload fails: it exits with code 1 this long after it starts (each attempt). */
  failing?: { rank: number; afterMs: number };
}

/** One input of a run, at a time in ms. */
export type InputEvent =
  | { at: number; kind: 'submit'; step: SimStepSpec }
  | { at: number; kind: 'cancel'; step: string }
  | { at: number; kind: 'terminate'; step: string }
  | { at: number; kind: 'crash-agent'; node: string; downMs: number }
  | { at: number; kind: 'partition'; node: string; durationMs: number }
  | { at: number; kind: 'restart-worker'; downMs: number }
  | { at: number; kind: 'continue-as-new' }
  | { at: number; kind: 'set-health'; health: Partial<HealthPolicy> }
  | { at: number; kind: 'set-policy'; policy: Partial<SchedulingPolicy> }
  | { at: number; kind: 'set-quota'; team: string; gpu: number; borrow?: number }
  | { at: number; kind: 'clock-jump'; byMs: number }
  | { at: number; kind: 'forge-release'; step: string }
  | { at: number; kind: 'set-limit'; name: string; max: number }
  | { at: number; kind: 'remove-limit'; name: string }
  /** Faults aimed at one replica of a gang: its node's agent crashes, is cut off, or its workload dies. */
  | { at: number; kind: 'crash-replica'; step: string; rank: number; downMs: number }
  | { at: number; kind: 'partition-replica'; step: string; rank: number; durationMs: number }
  | { at: number; kind: 'kill-replica'; step: string; rank: number };

/** A whole run's inputs. */
export interface Scenario {
  seed: number;
  nodes: SimNodeSpec[];
  policy: Partial<SchedulingPolicy>;
  health: Partial<HealthPolicy>;
  /** Quotas at the start (teams a and b), when the scenario uses them. */
  quotas: { team: string; gpu: number; borrow?: number }[];
  /** Fair-share weights at the start (a team not listed has weight 1). */
  weights?: { team: string; weight: number }[];
  /** Named limits at the start, when the scenario uses them. */
  limits?: { name: string; max: number }[];
  events: InputEvent[];
  /** When faults and arrivals stop and the world heals, ms. */
  horizonMs: number;
}

/** Kinds of scenario, each aimed at a part of the protocol. */
export const PROFILES = ['priority', 'reclaim', 'faults', 'mixed'] as const;
export type Profile = (typeof PROFILES)[number];

const TEAMS = ['a', 'b', 'c'];

/**
 * The scenario of a seed, with `count` input events. With `gangs` (the default), some seeds have
 * gang steps (and faults aimed at their replicas), and often more nodes; without, a seed's
 * scenario is what it was before gangs were drawn.
 */
export function generateScenario(seed: number, count: number, options: { gangs?: boolean } = {}): Scenario {
  const rnd = new SeededRandom(seed * 2654435761);
  const profile = PROFILES[seed % PROFILES.length] as Profile;
  const nodeCount = rnd.int(1, 3);
  const nodes: SimNodeSpec[] = Array.from({ length: nodeCount }, (_, i) => ({
    id: `n${i + 1}`,
    gpus: rnd.int(1, 4),
    cpu: rnd.pick([4, 8, 16]),
  }));
  // Gangs come from a stream of their own: a seed without them stays what it was.
  const gangRnd = new SeededRandom(seed * 2654435761 + 0x6a96);
  const withGangs = options.gangs !== false && gangRnd.next() < 0.6;
  // Room for spread gangs in some runs, too few nodes for them in others.
  if (withGangs && gangRnd.next() < 0.75) {
    const more = gangRnd.int(1, 2);
    for (let i = 0; i < more; i++)
      nodes.push({ id: `n${nodes.length + 1}`, gpus: gangRnd.int(1, 4), cpu: gangRnd.pick([4, 8, 16]) });
  }
  // Custom resources come from a stream of their own: the rest of a seed's scenario stays as it was.
  const customRnd = new SeededRandom(seed * 2654435761 + 0x5eed);
  const customOn = customRnd.next() < 0.5;
  if (customOn) for (const n of nodes) n.custom = drawNodeCustom(customRnd);
  const totalGpus = nodes.reduce((s, n) => s + n.gpus, 0);
  const policy: Partial<SchedulingPolicy> = {
    gracePeriodMs: rnd.pick([5_000, 10_000, 30_000]),
    // Aging fast enough to matter within a run.
    agingIntervalMs: rnd.pick([0, 20_000, 60_000, 3_600_000]),
    backfill: rnd.next() < 0.7,
    fairShare: rnd.next() < 0.3,
    preemption: true,
  };
  const health: Partial<HealthPolicy> = {
    leaseTtlMs: rnd.pick([15_000, 30_000, 60_000]),
    nodeNotReadyAfterMs: 15_000,
    nodeLostAfterMs: rnd.pick([30_000, 60_000]),
  };
  const quotas: Scenario['quotas'] = [];
  if (profile === 'reclaim' || (profile === 'mixed' && rnd.next() < 0.5)) {
    const half = Math.max(1, Math.floor(totalGpus / 2));
    quotas.push({ team: 'a', gpu: half }, { team: 'b', gpu: totalGpus - half });
  }
  const horizonMs = 15 * 60_000;
  // Named limits come from a generator of their own, so that every other draw of a seed stays as it was.
  const lim = new SeededRandom(seed * 40503 + 7);
  const limits =
    lim.next() < 0.5
      ? [
          { name: 'fs', max: lim.int(1, 2) },
          { name: 'lic', max: lim.int(1, 3) },
        ]
      : [];
  const askLimits = (): Record<string, number> | undefined => {
    if (limits.length === 0) return undefined;
    const r = lim.next();
    return r < 0.3 ? { fs: 1 } : r < 0.45 ? { lic: lim.int(1, 2) } : r < 0.55 ? { fs: 1, lic: 1 } : undefined;
  };
  const events: InputEvent[] = [];
  let steps = 0;
  const stepIds: string[] = [];
  const gangs: { id: string; at: number }[] = [];
  const newStep = (at: number, overrides: Partial<SimStepSpec> = {}): InputEvent => {
    const id = `s${++steps}`;
    stepIds.push(id);
    const maxGpu = Math.max(...nodes.map((n) => n.gpus));
    const gpu = rnd.next() < 0.15 ? 0.5 : rnd.int(0, Math.min(2, maxGpu));
    const step: SimStepSpec = {
      id,
      gpu,
      cpu: rnd.int(1, 3),
      priority: rnd.pick([0, 0, 0, 1, 5, 10]),
      team: quotas.length > 0 ? rnd.pick(['a', 'b', 'b']) : rnd.pick(TEAMS),
      preemptible: rnd.next() < 0.7,
      graceMs: rnd.pick([2_000, 10_000, 30_000, 120_000]),
      durationMs: rnd.pick([5_000, 30_000, 120_000, 600_000]),
      exitAfterTermMs: rnd.next() < 0.1 ? Infinity : rnd.pick([100, 1_000, 5_000, 40_000]),
      ...(customOn ? drawStepCustom(customRnd) : {}),
      ...overrides,
    };
    const asks = askLimits();
    if (asks) step.limits = asks;
    if (withGangs && gangRnd.next() < 0.3) {
      step.replicas = gangRnd.pick([2, 2, 3]);
      step.replicaPlacement = gangRnd.next() < 0.6 ? 'spread' : 'pack';
      if (gangRnd.next() < 0.2)
        step.failing = { rank: gangRnd.int(0, step.replicas - 1), afterMs: gangRnd.pick([1_000, 20_000, 90_000]) };
      gangs.push({ id, at });
    }
    return { at, kind: 'submit', step };
  };
  // The first arrivals come together: the cluster fills, then work arrives that must preempt.
  for (let i = 0; i < Math.min(count, totalGpus + 1); i++) {
    events.push(newStep(rnd.int(0, 2_000), profile === 'priority' ? { priority: 0, preemptible: true } : {}));
  }
  const faultKinds: InputEvent['kind'][] =
    profile === 'faults' || profile === 'mixed'
      ? [
          'submit',
          'submit',
          'submit',
          'cancel',
          'terminate',
          'crash-agent',
          'partition',
          'restart-worker',
          'continue-as-new',
          'set-health',
          'set-policy',
          'clock-jump',
          'forge-release',
          'set-quota',
        ]
      : ['submit', 'submit', 'submit', 'submit', 'cancel', 'continue-as-new', 'set-policy'];
  while (events.length < count) {
    const at = rnd.int(1_000, horizonMs - 60_000);
    const kind = rnd.pick(faultKinds);
    const node = rnd.pick(nodes).id;
    const anyStep = (): string => (stepIds.length > 0 ? rnd.pick(stepIds) : 's1');
    switch (kind) {
      case 'submit': {
        // Bursts: sometimes several at once, and often one that outranks what runs.
        const burst = rnd.next() < 0.2 ? rnd.int(2, 5) : 1;
        for (let i = 0; i < burst && events.length < count; i++) {
          const high = profile === 'priority' ? { priority: rnd.pick([5, 10]), preemptible: false } : {};
          const reclaim = profile === 'reclaim' ? { team: 'a', priority: 0 } : {};
          events.push(newStep(at + i * rnd.int(0, 1_500), { ...high, ...reclaim }));
        }
        break;
      }
      case 'cancel':
      case 'terminate':
      case 'forge-release':
        events.push({ at, kind, step: anyStep() });
        break;
      case 'crash-agent':
        events.push({ at, kind, node, downMs: rnd.pick([2_000, 20_000, 90_000]) });
        break;
      case 'partition':
        events.push({ at, kind, node, durationMs: rnd.pick([5_000, 25_000, 45_000, 120_000]) });
        break;
      case 'restart-worker':
        events.push({ at, kind, downMs: rnd.pick([1_000, 10_000, 40_000]) });
        break;
      case 'continue-as-new':
        events.push({ at, kind });
        break;
      case 'set-health':
        events.push({
          at,
          kind,
          health: rnd.pick<Partial<HealthPolicy>>([
            { leaseTtlMs: 10_000 },
            { leaseTtlMs: 90_000 },
            { nodeLostAfterMs: 45_000 },
            { nodeLostAfterMs: 90_000 },
          ]),
        });
        break;
      case 'set-policy':
        events.push({
          at,
          kind,
          policy: rnd.pick<Partial<SchedulingPolicy>>([
            { gracePeriodMs: 5_000 },
            { gracePeriodMs: 60_000 },
            { agingIntervalMs: 30_000 },
            { preemption: false },
            { preemption: true },
            { fairShare: true },
            { backfill: false },
          ]),
        });
        break;
      case 'set-quota':
        events.push({ at, kind, team: rnd.pick(['a', 'b']), gpu: rnd.int(0, totalGpus), borrow: rnd.pick([0, 1]) });
        break;
      case 'clock-jump':
        // Forward jumps of the server clock that allot tolerates: those it notices (longer than a
        // health sleep) and smaller ones, which shorten the time a step waits for a silent node
        // by the jump (see the README's assumptions).
        events.push({ at, kind, byMs: rnd.pick([2_000, 5_000, 15_000]) });
        break;
    }
  }
  // Fair share's half-life and team weights, from a stream of their own so that the draws above
  // stay what they were for every seed.
  const fair = new SeededRandom(seed * 40503 + 17);
  policy.fairShareHalfLifeMs = fair.pick([0, 30_000, 300_000, 604_800_000]);
  const weights = TEAMS.filter(() => fair.next() < 0.4).map((team) => ({ team, weight: fair.pick([0.5, 2, 3]) }));
  for (const e of events) {
    if (e.kind === 'set-policy' && e.policy.fairShare === true && fair.next() < 0.5)
      e.policy.fairShareHalfLifeMs = fair.pick([0, 60_000, 3_600_000]);
  }
  // Faults aimed at one replica of a gang, in place of some of the events drawn above.
  // Aimed at a time when the gang may well run, soon after it arrives.
  if (gangs.length > 0 && (profile === 'faults' || profile === 'mixed' || gangRnd.next() < 0.5)) {
    const aimed = gangRnd.int(2, 6);
    for (let i = 0; i < aimed; i++) {
      const gang = gangRnd.pick(gangs);
      const step = gang.id;
      const at = Math.min(gang.at + gangRnd.int(3_000, 240_000), horizonMs - 60_000);
      const rank = gangRnd.int(0, 2);
      const kind = gangRnd.pick(['crash-replica', 'partition-replica', 'kill-replica'] as const);
      const event: InputEvent =
        kind === 'crash-replica'
          ? { at, kind, step, rank, downMs: gangRnd.pick([2_000, 20_000, 90_000]) }
          : kind === 'partition-replica'
            ? { at, kind, step, rank, durationMs: gangRnd.pick([5_000, 25_000, 45_000, 120_000]) }
            : { at, kind, step, rank };
      const j = events.findIndex((e) => e.kind !== 'submit' && e.at > at);
      if (j >= 0) events[j] = event;
      else events.push(event);
    }
  }
  events.sort((a, b) => a.at - b.at);
  const kept = events.slice(0, count);
  // A limit's max changes once in some runs, lowered below its use at times.
  if (limits.length > 0 && lim.next() < 0.5) {
    kept.push({
      at: lim.int(1_000, horizonMs - 60_000),
      kind: 'set-limit',
      name: lim.pick(['fs', 'lic']),
      max: lim.int(0, 3),
    });
    kept.sort((a, b) => a.at - b.at);
  }
  // In some runs a limit is removed (refused while a step holds it; steps queued for it are
  // rejected) and set again later.
  if (limits.length > 0 && lim.next() < 0.4) {
    const at = lim.int(1_000, horizonMs - 180_000);
    const name = lim.pick(['fs', 'lic']);
    kept.push(
      { at, kind: 'remove-limit', name },
      { at: at + lim.int(1_000, 120_000), kind: 'set-limit', name, max: lim.int(1, 3) },
    );
    kept.sort((a, b) => a.at - b.at);
  }
  return {
    seed,
    nodes,
    policy,
    health,
    quotas,
    weights,
    ...(limits.length > 0 ? { limits } : {}),
    events: kept,
    horizonMs,
  };
}

/** One input event in a line, for repro output. */
export function describeEvent(e: InputEvent): string {
  const t = `${(e.at / 1000).toFixed(1)}s`;
  switch (e.kind) {
    case 'submit': {
      const s = e.step;
      const exit = s.exitAfterTermMs === Infinity ? 'ignores SIGTERM' : `exits ${s.exitAfterTermMs}ms after SIGTERM`;
      return (
        `${t} submit ${s.id}: gpu ${s.gpu}, cpu ${s.cpu}, priority ${s.priority}, team ${s.team}, ` +
        `${s.preemptible ? 'preemptible' : 'not preemptible'}, grace ${s.graceMs}ms, runs ${s.durationMs}ms, ${exit}` +
        (s.custom ? `, custom ${JSON.stringify(s.custom)}` : '') +
        (s.limits ? `, limits ${JSON.stringify(s.limits)}` : '') +
        (s.replicas ? `, ${s.replicas} replicas (${s.replicaPlacement ?? 'spread'})` : '') +
        (s.failing ? `, replica ${s.failing.rank} exits 1 after ${s.failing.afterMs}ms` : '')
      );
    }
    case 'cancel':
    case 'terminate':
    case 'forge-release':
      return `${t} ${e.kind} ${e.step}`;
    case 'crash-agent':
      return `${t} crash agent ${e.node} for ${e.downMs}ms`;
    case 'partition':
      return `${t} partition agent ${e.node} from Temporal for ${e.durationMs}ms`;
    case 'restart-worker':
      return `${t} restart the control worker (down ${e.downMs}ms)`;
    case 'continue-as-new':
      return `${t} the pool continues as new`;
    case 'set-health':
      return `${t} set health ${JSON.stringify(e.health)}`;
    case 'set-policy':
      return `${t} set policy ${JSON.stringify(e.policy)}`;
    case 'set-quota':
      return `${t} set quota of team ${e.team}: gpu ${e.gpu}${e.borrow !== undefined ? `, borrow ${e.borrow}` : ''}`;
    case 'clock-jump':
      return `${t} the server clock jumps ${e.byMs}ms`;
    case 'set-limit':
      return `${t} set limit ${e.name} to max ${e.max}`;
    case 'remove-limit':
      return `${t} remove limit ${e.name}`;
    case 'crash-replica':
      return `${t} crash the agent of ${e.step}'s replica ${e.rank} for ${e.downMs}ms`;
    case 'partition-replica':
      return `${t} partition the agent of ${e.step}'s replica ${e.rank} for ${e.durationMs}ms`;
    case 'kill-replica':
      return `${t} the workload of ${e.step}'s replica ${e.rank} dies (exit 137)`;
  }
}

/** A node's custom resources: licenses and NVMe slots, some nodes with none. */
function drawNodeCustom(rnd: SeededRandom): Record<string, number> | undefined {
  const custom = rnd.pick<Record<string, number>>([{}, { lic: 1 }, { lic: 2 }, { lic: 2, nvme: 1 }, { nvme: 2 }]);
  return Object.keys(custom).length > 0 ? { ...custom } : undefined;
}

/** A step's ask of custom resources: often none, sometimes more than one node has free. */
function drawStepCustom(rnd: SeededRandom): { custom?: Record<string, number> } {
  const custom = rnd.pick<Record<string, number>>([{}, {}, { lic: 1 }, { lic: 2 }, { nvme: 1 }]);
  return Object.keys(custom).length > 0 ? { custom: { ...custom } } : {};
}
