/**
 * A model of the node agent: registration, heartbeats, launches with fencing and the device
 * ledger, workloads as processes that stop on SIGTERM (or not) and die by SIGKILL after their
 * grace, the watchdog that kills workloads when the agent dies, and restarts that kill what a
 * previous life left behind.
 */
import type { NodeSpec } from '../../src/core';
import type { PoolModel, RegistrationAnswer } from './pool-model';
import { POOL_ID } from './pool-model';
import type { SimNodeSpec } from './scenario';
import type { ActivityOutcome, ActivityRecord, AgentLike, LaunchModelInput, World } from './world';

/** A workload process on a node. */
export interface Workload {
  node: string;
  stepId: string;
  leaseId: string;
  activityId: string;
  gpus: { index: number; milli: number }[];
  startedAt: number;
  state: 'running' | 'stopping' | 'dead';
  /** Bumped when its exit is scheduled anew. */
  generation: number;
  /** When it was told to stop (SIGTERM), if it was. */
  termAt?: number;
}

interface Claim {
  leaseId: string;
  stepId: string;
  gpus: { index: number; milli: number }[];
}

/** What the invariants learn from agents. */
export interface WorkloadObserver {
  started(w: Workload): void;
  exited(w: Workload): void;
}

export class AgentModel implements AgentLike {
  alive = true;
  connected = true;
  readonly ledger = new Map<string, Claim>();
  /** What the ledger file holds: it survives the agent. */
  private ledgerFile: Claim[] = [];
  readonly workloads = new Map<string, Workload>();
  private readonly pendingCompletions = new Map<string, ActivityOutcome>();
  private life = 0;
  private partitionUntil = 0;

  constructor(
    private readonly world: World,
    private readonly pool: PoolModel,
    readonly node: SimNodeSpec,
    private readonly observer: WorkloadObserver,
    private readonly durations: (stepId: string) => { durationMs: number; exitAfterTermMs: number },
  ) {
    world.agents.set(node.id, this);
  }

  get id(): string {
    return this.node.id;
  }

  spec(): NodeSpec {
    return {
      id: this.node.id,
      cpuMilli: this.node.cpu * 1000,
      memoryMiB: 64 * 1024,
      gpus: Array.from({ length: this.node.gpus }, (_, index) => ({ index, model: 'A100', memoryMiB: 81920 })),
      labels: {},
    };
  }

  /** The agent process starts: orphans are killed, the node registers, heartbeats begin. */
  boot(): void {
    this.alive = true;
    const life = ++this.life;
    // Orphans of a previous life: their workloads died with it (the watchdog), their claims go.
    this.ledgerFile = [];
    this.ledger.clear();
    this.register(life);
    this.heartbeatLoop(life);
  }

  private register(life: number): void {
    const running = [...this.ledger.keys()];
    let answered = false;
    const send = (): void => {
      if (answered || life !== this.life || !this.alive) return;
      if (this.connected) {
        this.world.signal(
          POOL_ID,
          'register',
          {
            spec: this.spec(),
            runningLeases: running,
            reply: (a: RegistrationAnswer) => {
              this.world.at(this.world.now + this.world.delay(`reply:${this.id}`), 'registration answer', () => {
                if (answered || life !== this.life || !this.alive || !this.connected) return;
                answered = true;
                this.world.log(`agent ${this.id} registered (kill ${a.kill.join(',') || 'none'})`);
                for (const leaseId of a.kill) this.kill(leaseId);
                this.world.offerWork(this.id);
              });
            },
          },
          `agent:${this.id}`,
          { duplicates: false },
        );
      }
      this.world.at(this.world.now + 10_000, 'registration resend', send);
    };
    send();
  }

  private heartbeatLoop(life: number): void {
    const beat = (): void => {
      if (life !== this.life || !this.alive) return;
      if (this.connected) this.world.signal(POOL_ID, 'nodeHeartbeat', { nodeId: this.id }, `agent:${this.id}`);
      this.world.at(this.world.now + 5_000, 'agent heartbeat', beat);
    };
    this.world.at(this.world.now + 5_000, 'agent heartbeat', beat);
  }

  /** A launch reaches the agent. */
  startLaunch(a: ActivityRecord): void {
    const input = a.input;
    const life = this.life;
    // Fencing: ask the pool named in the launch whether it holds the lease for this node and step.
    this.world.at(this.world.now + this.world.delay(`query:${this.id}`), 'fencing query', () => {
      if (life !== this.life || !this.alive) return;
      if (a.state !== 'started') return;
      let held: boolean | undefined;
      if (this.connected && this.world.workerUp) {
        const lease = this.pool.state.leases.find((l) => l.leaseId === input.leaseId);
        held =
          lease !== undefined &&
          lease.nodeId === this.id &&
          lease.owner.kind === 'workflow' &&
          lease.owner.workflowId === input.stepId;
      }
      if (held === false) {
        this.complete(a, { kind: 'failed', type: 'StaleLease', message: `lease ${input.leaseId} is not held` });
        return;
      }
      if (a.cancelRequested) {
        this.complete(a, { kind: 'cancelled' });
        return;
      }
      const conflict = this.claim(input);
      if (conflict) {
        this.complete(a, { kind: 'failed', type: 'DeviceConflict', message: conflict });
        return;
      }
      this.spawn(a, input);
    });
  }

  private claim(input: LaunchModelInput): string | undefined {
    const existing = this.ledger.get(input.leaseId);
    if (existing) return existing.stepId === input.stepId ? undefined : `lease ${input.leaseId} runs another step`;
    const share = input.gpuIndices.length === 1 && input.gpuMilli < 1000 ? input.gpuMilli : 1000;
    const gpus = input.gpuIndices.map((index) => ({ index, milli: share }));
    for (const g of gpus) {
      let used = 0;
      for (const c of this.ledger.values()) for (const h of c.gpus) if (h.index === g.index) used += h.milli;
      if (used + g.milli > 1000) return `GPU ${g.index} is held`;
    }
    const claim = { leaseId: input.leaseId, stepId: input.stepId, gpus };
    this.ledger.set(input.leaseId, claim);
    this.ledgerFile = [...this.ledger.values()];
    return undefined;
  }

  private spawn(a: ActivityRecord, input: LaunchModelInput): void {
    const claim = this.ledger.get(input.leaseId) as Claim;
    const w: Workload = {
      node: this.id,
      stepId: input.stepId,
      leaseId: input.leaseId,
      activityId: a.id,
      gpus: claim.gpus,
      startedAt: this.world.now,
      state: 'running',
      generation: 0,
    };
    this.workloads.set(input.leaseId, w);
    this.observer.started(w);
    const { durationMs } = this.durations(input.stepId);
    const generation = w.generation;
    this.world.at(this.world.now + durationMs, 'workload finishes', () => {
      if (w.state === 'running' && w.generation === generation) this.exited(w, 'done');
    });
  }

  /** SIGTERM, then SIGKILL after the grace period. */
  private stop(w: Workload, graceMs: number): void {
    if (w.state !== 'running') return;
    w.state = 'stopping';
    w.termAt = this.world.now;
    const generation = ++w.generation;
    const { exitAfterTermMs } = this.durations(w.stepId);
    const after = Math.min(exitAfterTermMs, graceMs);
    this.world.at(this.world.now + after, 'workload stops', () => {
      if (w.state === 'stopping' && w.generation === generation) this.exited(w, 'stopped');
    });
  }

  private exited(w: Workload, how: 'done' | 'stopped' | 'killed'): void {
    if (w.state === 'dead') return;
    w.state = 'dead';
    this.observer.exited(w);
    this.workloads.delete(w.leaseId);
    if (!this.alive) return;
    this.ledger.delete(w.leaseId);
    this.ledgerFile = [...this.ledger.values()];
    const a = this.world.activities.get(w.activityId);
    if (!a) return;
    if (how === 'done') {
      // The agent gives the lease back as the workload ends, then completes the launch.
      const released = this.connected;
      if (released) {
        const requestId = a.input.requestId;
        this.world.signal(POOL_ID, 'release', { requestId }, `agent:${this.id}`);
      }
      this.complete(a, { kind: 'completed', exitCode: 0, released });
    } else if (how === 'stopped') this.complete(a, { kind: 'cancelled' });
  }

  private complete(a: ActivityRecord, outcome: ActivityOutcome): void {
    if (this.connected && this.alive) {
      this.world.at(this.world.now + this.world.delay(`complete:${this.id}`), 'activity completes', () => {
        if (a.state === 'started') this.world.resolveActivity(a, outcome);
      });
    } else this.pendingCompletions.set(a.id, outcome);
  }

  /** The step cancelled the launch, or its workflow is gone. */
  cancelLaunch(a: ActivityRecord, _why: 'cancel' | 'not-found' | 'timed-out'): void {
    const w = [...this.workloads.values()].find((x) => x.activityId === a.id);
    if (!w) return;
    this.stop(w, a.input.gracePeriodMs);
  }

  private kill(leaseId: string): void {
    const w = this.workloads.get(leaseId);
    if (w) this.exited(w, 'killed');
  }

  /** kill -9 of the agent: the watchdog kills its workloads within a second; it comes back later. */
  crash(downMs: number): void {
    if (!this.alive) return;
    this.alive = false;
    this.life++;
    this.world.log(`agent ${this.id} crashes`);
    for (const w of this.workloads.values()) {
      const wd = this.world.random(`watchdog:${this.id}`).int(0, 1_000);
      this.world.at(this.world.now + wd, 'watchdog kills', () => this.exited(w, 'killed'));
    }
    for (const a of this.world.activities.values()) if (a.node === this.id) this.world.activitySilent(a);
    this.pendingCompletions.clear();
    this.world.at(this.world.now + downMs, 'agent restarts', () => this.restart());
  }

  /** Brings a crashed agent back (also at the end of a run). */
  restart(): void {
    if (this.alive) return;
    this.world.log(`agent ${this.id} restarts`);
    this.boot();
  }

  /** Cuts the agent off from Temporal for a while. */
  partition(durationMs: number): void {
    if (!this.connected) return;
    this.connected = false;
    this.partitionUntil = this.world.now + durationMs;
    this.world.log(`agent ${this.id} is cut off for ${durationMs}ms`);
    for (const a of this.world.activities.values()) if (a.node === this.id) this.world.activitySilent(a);
    this.world.at(this.partitionUntil, 'partition heals', () => this.heal());
  }

  /** Ends a partition. */
  heal(): void {
    if (this.connected) return;
    this.connected = true;
    this.world.log(`agent ${this.id} reaches Temporal again`);
    if (!this.alive) return;
    for (const [id, outcome] of this.pendingCompletions) {
      const a = this.world.activities.get(id);
      if (a && a.state === 'started') this.world.resolveActivity(a, outcome);
    }
    this.pendingCompletions.clear();
    for (const w of this.workloads.values()) {
      const a = this.world.activities.get(w.activityId);
      if (!a) continue;
      if (a.state === 'started') {
        this.world.activityHeard(a);
        if (a.cancelRequested) this.cancelLaunch(a, 'cancel');
        const step = this.world.workflows.get(a.stepId);
        if (step?.closed) this.cancelLaunch(a, 'not-found');
      } else this.cancelLaunch(a, 'timed-out');
    }
    this.world.offerWork(this.id);
  }

  /** The step of a running launch is gone (terminated): the next heartbeat says NOT_FOUND. */
  stepGone(stepId: string): void {
    if (!this.alive || !this.connected) return;
    for (const w of this.workloads.values()) {
      if (w.stepId !== stepId) continue;
      const a = this.world.activities.get(w.activityId);
      if (!a) continue;
      this.world.at(this.world.now + this.world.random(`hb:${a.id}`).int(20, 1_000), 'heartbeat: not found', () => {
        if (this.alive && this.connected) this.cancelLaunch(a, 'not-found');
      });
    }
  }

  /** The server timed out a launch while the agent was connected (a clock jump): the next heartbeat says so. */
  activityTimedOut(a: ActivityRecord): void {
    if (!this.alive || !this.connected) return;
    this.world.at(this.world.now + this.world.random(`hb:${a.id}`).int(20, 1_000), 'heartbeat: timed out', () => {
      if (this.alive && this.connected) this.cancelLaunch(a, 'timed-out');
    });
  }
}
