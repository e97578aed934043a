/**
 * One protocol simulation run: builds the world of a scenario, plays its input events, heals the
 * world at the horizon (agents back, partitions over, worker up) and lets every step finish,
 * checking the invariants after every event.
 */
import { AgentModel } from './agent-model';
import type { Violation } from './invariants';
import { Invariants } from './invariants';
import { PoolModel } from './pool-model';
import type { InputEvent, Scenario } from './scenario';
import { StepModel } from './step-model';
import { World } from './world';

/** What a run gives back. */
export interface RunResult {
  violations: Violation[];
  /** Events the world ran. */
  events: number;
  /** The last lines of the world's trace. */
  trace: string[];
  steps: { id: string; end: string; reason: string; attempts: number }[];
}

/** Longest the healed world has to finish every step, ms of simulated time. */
const DRAIN_MS = 3 * 60 * 60_000;

export function runScenario(scenario: Scenario, options: { trace?: number } = {}): RunResult {
  const world = new World(scenario.seed, options.trace ?? 400);
  const pool = new PoolModel(world);
  world.workflows.set(pool.id, pool);
  pool.state.setPolicy(scenario.policy);
  pool.state.setHealth(scenario.health);
  for (const q of scenario.quotas) {
    pool.state.setTeamQuota({
      name: q.team,
      nominal: { gpu: q.gpu * 1000 },
      ...(q.borrow !== undefined ? { borrowingLimit: { gpu: q.borrow * 1000 } } : {}),
    });
  }
  for (const w of scenario.weights ?? []) pool.state.setTeamWeight(w.team, w.weight);
  for (const l of scenario.limits ?? []) pool.state.setLimit(l);
  const steps = new Map<string, StepModel>();
  const agents = new Map<string, AgentModel>();
  const invariants = new Invariants(world, pool, steps, agents);
  const specs = new Map(scenario.events.flatMap((e) => (e.kind === 'submit' ? [[e.step.id, e.step] as const] : [])));
  const durations = (stepId: string, rank?: number) => {
    const s = specs.get(stepId);
    const exitAfterTermMs = s?.exitAfterTermMs ?? 0;
    // A gang's failing replica exits 1 early, every attempt.
    if (s?.failing && rank === s.failing.rank && s.failing.afterMs < s.durationMs)
      return { durationMs: s.failing.afterMs, exitAfterTermMs, exitCode: 1 };
    return { durationMs: s?.durationMs ?? 1000, exitAfterTermMs };
  };
  /** The node of a step's replica `rank`, while its attempt holds a lease for it. */
  const replicaNode = (stepId: string, rank: number): AgentModel | undefined => {
    const step = steps.get(stepId);
    if (!step || step.closed) return undefined;
    const lease = pool.state.leases.find((l) => l.requestId === step.requestId && (l.replica ?? 0) === rank);
    return lease ? agents.get(lease.nodeId) : undefined;
  };
  for (const n of scenario.nodes) {
    const agent = new AgentModel(world, pool, n, invariants, durations);
    agents.set(n.id, agent);
    agent.boot();
  }
  world.afterEvent = () => invariants.check();
  world.onActivityResolved = (a, outcome) => invariants.activityResolved(a, outcome);
  world.onClockJump = (byMs) => {
    // A launch's heartbeat deadline (20 s) passes when the jump and the time since its last
    // heartbeat (sent every 1 s, throttled to 16 s) add up to it: connected agents hear of the
    // timeout at their next heartbeat.
    for (const a of world.activities.values()) {
      if (a.state !== 'started' || a.rendezvous) continue;
      const sinceLastHeartbeat = world.random(`last-heartbeat:${a.id}`).int(0, 16_000);
      if (byMs + sinceLastHeartbeat < 20_000) continue;
      world.resolveActivity(a, { kind: 'timeout', timeoutType: 'HEARTBEAT' });
      agents.get(a.node)?.activityTimedOut(a);
    }
  };

  let workerGeneration = 0;
  const workerDown = (downMs: number): void => {
    if (!world.workerUp) return;
    world.workerUp = false;
    const generation = ++workerGeneration;
    world.log(`control worker down for ${downMs}ms`);
    world.at(world.now + downMs, 'control worker back', () => {
      if (generation === workerGeneration) workerBack();
    });
  };
  const workerBack = (): void => {
    if (world.workerUp) return;
    world.workerUp = true;
    invariants.undisturbedSince = world.now;
    world.log('control worker back: the pool replays its history');
    pool.continueAsNew(true);
    for (const wf of world.workflows.values()) wf.wake();
    pool.post({ kind: 'wake' });
  };

  const apply = (e: InputEvent): void => {
    switch (e.kind) {
      case 'submit': {
        const step = new StepModel(world, e.step);
        step.observer = invariants;
        steps.set(step.id, step);
        world.workflows.set(step.id, step);
        step.start();
        break;
      }
      case 'cancel':
        world.workflows.get(e.step)?.post({ kind: 'cancel' });
        break;
      case 'terminate': {
        const step = steps.get(e.step);
        if (!step || step.closed || !step.started) break;
        step.terminate();
        for (const a of agents.values()) a.stepGone(step.id);
        break;
      }
      case 'crash-agent':
        agents.get(e.node)?.crash(e.downMs);
        break;
      case 'partition':
        agents.get(e.node)?.partition(e.durationMs);
        break;
      case 'restart-worker':
        workerDown(e.downMs);
        break;
      case 'continue-as-new':
        pool.post({ kind: 'continue-as-new' });
        break;
      case 'set-health':
        pool.post({ kind: 'set-health', payload: e.health });
        break;
      case 'set-policy':
        pool.post({ kind: 'set-policy', payload: e.policy });
        break;
      case 'set-quota':
        pool.post({ kind: 'set-quota', payload: { team: e.team, gpu: e.gpu, borrow: e.borrow } });
        break;
      case 'set-limit':
        pool.post({ kind: 'set-limit', payload: { name: e.name, max: e.max } });
        break;
      case 'remove-limit':
        pool.post({ kind: 'remove-limit', payload: { name: e.name } });
        break;
      case 'clock-jump':
        world.log(`server clock jumps ${e.byMs}ms`);
        world.jumpClock(e.byMs);
        invariants.undisturbedSince = world.now;
        break;
      case 'crash-replica':
        replicaNode(e.step, e.rank)?.crash(e.downMs);
        break;
      case 'partition-replica':
        replicaNode(e.step, e.rank)?.partition(e.durationMs);
        break;
      case 'kill-replica':
        for (const a of agents.values()) a.killReplica(e.step, e.rank);
        break;
      case 'forge-release': {
        // Anyone who may signal the pool can release a lease by its request id.
        const step = steps.get(e.step);
        if (step) world.signal(pool.id, 'release', { requestId: step.requestId }, 'forger');
        break;
      }
    }
  };
  for (const e of scenario.events) world.at(e.at, `input ${e.kind}`, () => apply(e));

  world.run(scenario.horizonMs);
  if (!world.stopped) {
    // Heal: no more faults; the world must now bring every step to an end.
    world.log('the world heals');
    workerBack();
    // An operator raises lowered limits back, to the most they ever had: a step waiting for a max
    // below its ask then runs.
    for (const l of scenario.limits ?? []) {
      let max = l.max;
      for (const e of scenario.events) if (e.kind === 'set-limit' && e.name === l.name) max = Math.max(max, e.max);
      pool.post({ kind: 'set-limit', payload: { name: l.name, max } });
    }
    for (const a of agents.values()) {
      a.restart();
      a.heal();
    }
    const allEnded = (): boolean => [...steps.values()].every((s) => !s.started || s.closed);
    world.run(scenario.horizonMs + DRAIN_MS, allEnded);
    if (!world.stopped) invariants.checkEnd();
  }
  return {
    violations: invariants.violations,
    events: world.eventsRun,
    trace: world.trace.slice(-(options.trace ?? 400)),
    steps: [...steps.values()].map((s) => ({
      id: s.id,
      end: s.end ?? s.phase,
      reason: s.endReason,
      attempts: s.attempt,
    })),
  };
}
