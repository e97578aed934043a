/**
 * A model of the node agent: registration, heartbeats, launches with fencing (its own pool,
 * exactly the lease) and the device ledger, workloads as processes that stop on SIGTERM (or not)
 * and die by SIGKILL after their grace, the watchdog that kills workloads when the agent dies,
 * restarts that kill what a previous life left behind and name it dead, and the pool link: the
 * agent fences itself when cut off from Temporal, reconciles with the pool, and registers again.
 */
import type { Lease, NodeSpec } from '../../src/core';
import { DEVICE_WAIT_MS, FENCING_WAIT_MS, leaseMismatch } from '../../src/activities/fencing';
import type { PoolModel, RegistrationAnswer } from './pool-model';
import { POOL_ID } from './pool-model';
import type { SimNodeSpec } from './scenario';
import type { ActivityOutcome, ActivityRecord, AgentLike, LaunchModelInput, World } from './world';

/** A workload process on a node. */
export interface Workload {
  node: string;
  stepId: string;
  /** The attempt's request: a gang's replicas share it. */
  requestId: string;
  leaseId: string;
  activityId: string;
  /** A gang's replica: its rank and the gang's size. */
  gang?: { rank: number; size: number };
  gpus: { index: number; milli: number }[];
  startedAt: number;
  state: 'running' | 'stopping' | 'dead';
  /** Bumped when its exit is scheduled anew. */
  generation: number;
  /** When it was told to stop (SIGTERM), if it was. */
  termAt?: number;
  /** When its SIGKILL is due, once it was told to stop. */
  killAt?: number;
  /** Why it was stopped, if it was. */
  stopWhy?: 'cancel' | 'not-found' | 'timed-out' | 'fenced' | 'not-held';
  /** Its launch's fence time (the pool's node-lost time when granted), ms. */
  fenceMs?: number;
}

/** Heartbeats between reconciliations (as the pool link). */
const RECONCILE_EVERY = 3;

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
  /**
   * Off brings back a bug the simulation found (for its own test): an agent cut off from Temporal
   * keeps its workloads running, and its steps run again elsewhere.
   */
  static fenceWhenCutOff = true;

  alive = true;
  connected = true;
  /** Since when (sim time) the agent has been alive and connected, as of its last boot or healed partition. */
  reachableSince = 0;
  readonly ledger = new Map<string, Claim>();
  /** What the ledger file holds: it survives the agent. */
  private ledgerFile: Claim[] = [];
  readonly workloads = new Map<string, Workload>();
  private readonly pendingCompletions = new Map<string, ActivityOutcome>();
  private life = 0;
  private partitionUntil = 0;
  /** The link: last accepted heartbeat's send time, the pool's node-lost time, fenced leases. */
  private lastContact = 0;
  private nodeLostMs = 60_000;
  private beats = 0;
  private readonly fenced = new Set<string>();
  private mustRegister = false;
  private registering = false;
  /** Launches of this life not yet running their workload (fencing, waiting for devices). */
  private readonly launching = new Set<string>();
  /** Leases of a previous life (the ledger file at boot): dead, named at registration. */
  private orphans: string[] = [];

  constructor(
    private readonly world: World,
    private readonly pool: PoolModel,
    readonly node: SimNodeSpec,
    private readonly observer: WorkloadObserver,
    private readonly durations: (
      stepId: string,
      rank?: number,
    ) => { durationMs: number; exitAfterTermMs: number; exitCode?: number },
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
      ...(this.node.custom ? { custom: { ...this.node.custom } } : {}),
    };
  }

  /** The agent process starts: orphans are killed, the node registers, heartbeats begin. */
  boot(): void {
    this.alive = true;
    this.reachableSince = this.world.now;
    const life = ++this.life;
    // Orphans of a previous life: their workloads died with it (the watchdog); the pool hears
    // that their leases are dead, so that steps waiting on them queue again.
    this.orphans = this.ledgerFile.map((c) => c.leaseId);
    this.ledgerFile = [];
    this.ledger.clear();
    this.fenced.clear();
    this.launching.clear();
    this.mustRegister = false;
    this.registering = false;
    this.lastContact = this.world.now;
    this.register(life, true);
    this.linkLoop(life);
  }

  /**
   * Registers (again), naming what runs and what is dead; at boot it goes on until it succeeds,
   * and workloads are offered only after.
   */
  private register(life: number, boot = false): void {
    if (this.registering) return;
    this.registering = true;
    const dead = [...this.orphans, ...[...this.fenced].filter((id) => !this.workloads.has(id))];
    const running = [...this.workloads.keys()].filter((id) => !this.fenced.has(id));
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
            deadLeases: dead,
            reply: (a: RegistrationAnswer) => {
              this.world.at(this.world.now + this.world.delay(`reply:${this.id}`), 'registration answer', () => {
                if (answered || life !== this.life || !this.alive || !this.connected) return;
                answered = true;
                this.registering = false;
                this.nodeLostMs = a.nodeLostAfterMs;
                this.orphans = this.orphans.filter((id) => !dead.includes(id));
                for (const id of dead) this.fenced.delete(id);
                this.mustRegister = this.fenced.size > 0;
                this.world.log(
                  `agent ${this.id} registered (dead ${dead.join(',') || 'none'}, kill ${a.kill.join(',') || 'none'})`,
                );
                for (const leaseId of a.kill) this.kill(leaseId);
                this.world.offerWork(this.id);
              });
            },
          },
          `agent:${this.id}`,
          { duplicates: false },
        );
      }
      if (boot || this.connected) this.world.at(this.world.now + 10_000, 'registration resend', send);
      else this.registering = false;
    };
    send();
  }

  /** Heartbeats as often as the pool's node-lost time needs; the fence check; reconciliation. */
  private linkLoop(life: number): void {
    const heartbeatMs = (): number => Math.max(250, Math.min(5_000, Math.floor(this.nodeLostMs / 9)));
    const beat = (): void => {
      if (life !== this.life || !this.alive) return;
      if (this.connected) {
        // The server accepts the signal: contact, as of when it was sent.
        const sentAt = this.world.now;
        this.world.signal(POOL_ID, 'nodeHeartbeat', { nodeId: this.id }, `agent:${this.id}`);
        this.lastContact = Math.max(this.lastContact, sentAt);
        if (this.mustRegister) this.register(life);
        else if (++this.beats % RECONCILE_EVERY === 0) this.reconcile(life, sentAt);
      }
      this.world.at(this.world.now + heartbeatMs(), 'agent heartbeat', beat);
    };
    this.world.at(this.world.now + heartbeatMs(), 'agent heartbeat', beat);
    const check = (): void => {
      if (life !== this.life || !this.alive) return;
      this.checkFence();
      this.world.at(this.world.now + 1_000, 'fence check', check);
    };
    this.world.at(this.world.now + 1_000, 'fence check', check);
  }

  /** Stops every workload when the agent has been cut off for a third of the node-lost time. */
  private checkFence(): void {
    if (!AgentModel.fenceWhenCutOff) return;
    const silentMs = this.world.now - this.lastContact;
    for (const w of this.workloads.values()) {
      if (this.fenced.has(w.leaseId) || w.state === 'dead') continue;
      const lostMs = Math.min(this.nodeLostMs, w.fenceMs ?? Infinity);
      if (silentMs < lostMs / 3) continue;
      this.fenced.add(w.leaseId);
      this.mustRegister = true;
      const killBy = this.lastContact + (2 * lostMs) / 3;
      this.world.log(`agent ${this.id} cut off for ${silentMs}ms: fences ${w.leaseId} of ${w.stepId}`);
      this.stop(w, Math.max(0, killBy - this.world.now), 'fenced');
    }
  }

  /** The node query: re-register when the pool lost the node; stop workloads whose lease is gone. */
  private reconcile(life: number, sentAt: number): void {
    this.world.at(this.world.now + this.world.delay(`query:${this.id}`), 'node query', () => {
      if (life !== this.life || !this.alive || !this.connected || !this.world.workerUp) return;
      const report = this.pool.state.nodeReport(this.id, this.world.serverNow);
      this.lastContact = Math.max(this.lastContact, sentAt);
      if (report.nodeLostAfterMs > 0) this.nodeLostMs = report.nodeLostAfterMs;
      if (!report.known || report.lost) {
        this.world.log(
          `agent ${this.id}: the pool ${report.lost ? 'lost' : 'does not know'} the node; registering again`,
        );
        this.mustRegister = true;
        this.register(life);
        return;
      }
      const held = new Set(report.leases.map((l) => l.leaseId));
      for (const w of this.workloads.values()) {
        if (held.has(w.leaseId) || w.startedAt >= sentAt || this.fenced.has(w.leaseId)) continue;
        const a = this.world.activities.get(w.activityId);
        this.world.log(`agent ${this.id}: the pool no longer holds ${w.leaseId}; stopping ${w.stepId}`);
        this.stop(w, a?.input.gracePeriodMs ?? 0, 'not-held');
      }
    });
  }

  /** A launch reaches the agent. */
  startLaunch(a: ActivityRecord): void {
    const input = a.input;
    const life = this.life;
    this.launching.add(a.id);
    // Fencing: ask this agent's own pool for the lease, and compare all of it with the launch.
    const deadline = this.world.now + FENCING_WAIT_MS;
    const ask = (wait: number): void => {
      this.world.at(this.world.now + this.world.delay(`query:${this.id}`), 'fencing query', () => {
        if (life !== this.life || !this.alive || a.state !== 'started') return;
        if (!this.connected || !this.world.workerUp) {
          if (this.world.now + wait > deadline) {
            this.complete(a, { kind: 'failed', type: 'FencingUnavailable', message: 'the pool did not answer' });
            return;
          }
          this.world.at(this.world.now + wait, 'fencing retry', () => ask(Math.min(wait * 2, 4_000)));
          return;
        }
        const lease = this.pool.state.leases.find((l) => l.leaseId === input.leaseId) ?? null;
        const why = leaseMismatch(toLaunchInput(input), lease as Lease | null, this.id, POOL_ID);
        if (why) {
          this.complete(a, { kind: 'failed', type: 'StaleLease', message: why });
          return;
        }
        this.claimDevices(a, life, this.world.now + DEVICE_WAIT_MS);
      });
    };
    ask(250);
  }

  /** Claims the launch's devices, waiting a while for a stopping workload to free them. */
  private claimDevices(a: ActivityRecord, life: number, deadline: number): void {
    if (life !== this.life || !this.alive || a.state !== 'started') return;
    if (a.cancelRequested) {
      this.complete(a, { kind: 'cancelled' });
      return;
    }
    const conflict = this.claim(a.input);
    if (!conflict) {
      this.spawn(a, a.input);
      return;
    }
    if (conflict.sameLease || this.world.now >= deadline) {
      this.complete(a, { kind: 'failed', type: 'DeviceConflict', message: conflict.message });
      return;
    }
    this.world.at(this.world.now + 1_000, 'device wait', () => this.claimDevices(a, life, deadline));
  }

  private claim(input: LaunchModelInput): { message: string; sameLease: boolean } | undefined {
    const existing = this.ledger.get(input.leaseId);
    if (existing) return { message: `lease ${input.leaseId} is already running`, sameLease: true };
    const share = input.gpuIndices.length === 1 && input.gpuMilli < 1000 ? input.gpuMilli : 1000;
    const gpus = input.gpuIndices.map((index) => ({ index, milli: share }));
    for (const g of gpus) {
      let used = 0;
      for (const c of this.ledger.values()) for (const h of c.gpus) if (h.index === g.index) used += h.milli;
      if (used + g.milli > 1000) return { message: `GPU ${g.index} is held`, sameLease: false };
    }
    const claim = { leaseId: input.leaseId, stepId: input.stepId, gpus };
    this.ledger.set(input.leaseId, claim);
    this.ledgerFile = [...this.ledger.values()];
    return undefined;
  }

  private spawn(a: ActivityRecord, input: LaunchModelInput): void {
    this.launching.delete(a.id);
    const claim = this.ledger.get(input.leaseId) as Claim;
    const w: Workload = {
      node: this.id,
      stepId: input.stepId,
      requestId: input.requestId,
      leaseId: input.leaseId,
      activityId: a.id,
      ...(input.gang ? { gang: input.gang } : {}),
      gpus: claim.gpus,
      startedAt: this.world.now,
      state: 'running',
      generation: 0,
      ...(input.fenceMs !== undefined ? { fenceMs: input.fenceMs } : {}),
    };
    this.workloads.set(input.leaseId, w);
    this.observer.started(w);
    const { durationMs, exitCode } = this.durations(input.stepId, input.gang?.rank);
    const generation = w.generation;
    this.world.at(this.world.now + durationMs, 'workload finishes', () => {
      if (w.state === 'running' && w.generation === generation) this.exited(w, 'done', exitCode ?? 0);
    });
  }

  /** SIGTERM, then SIGKILL after the grace period; a later, shorter deadline brings the SIGKILL forward. */
  private stop(w: Workload, graceMs: number, why: NonNullable<Workload['stopWhy']>): void {
    if (w.state === 'dead') return;
    const killAt = this.world.now + graceMs;
    if (w.state === 'stopping') {
      if (w.killAt !== undefined && killAt >= w.killAt) return;
    } else {
      w.state = 'stopping';
      w.termAt = this.world.now;
      w.stopWhy = why;
    }
    w.killAt = killAt;
    const generation = ++w.generation;
    const { exitAfterTermMs } = this.durations(w.stepId);
    const exitAt = Math.min((w.termAt ?? this.world.now) + exitAfterTermMs, killAt);
    this.world.at(exitAt, 'workload stops', () => {
      if (w.state === 'stopping' && w.generation === generation) this.exited(w, 'stopped');
    });
  }

  private exited(w: Workload, how: 'done' | 'stopped' | 'killed', exitCode = 0): void {
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
      // The agent gives the lease back as the workload ends, then completes the launch. Not a
      // gang's replica: its release would free every replica's lease; the step releases.
      if (a.input.gang) {
        this.complete(a, { kind: 'completed', exitCode, released: false });
        return;
      }
      const released = this.connected;
      if (released) {
        const requestId = a.input.requestId;
        this.world.signal(POOL_ID, 'release', { requestId }, `agent:${this.id}`);
      }
      this.complete(a, { kind: 'completed', exitCode: 0, released });
    } else if (how === 'stopped') {
      const why = w.stopWhy;
      // A step that is gone cannot release, and one whose launch timed out waits to hear that
      // the workload stopped: the agent gives the lease back.
      if ((why === 'not-found' || why === 'timed-out') && this.connected && !a.input.gang) {
        const message =
          why === 'timed-out'
            ? { requestId: a.input.requestId, requeue: true, stopped: true }
            : { requestId: a.input.requestId };
        this.world.signal(POOL_ID, 'release', message, `agent:${this.id}`);
      }
      if (why === 'fenced') this.complete(a, { kind: 'failed', type: 'NodeFenced', message: 'cut off from Temporal' });
      else if (why === 'not-held')
        this.complete(a, { kind: 'failed', type: 'LeaseNotHeld', message: 'lease not held' });
      else this.complete(a, { kind: 'cancelled' });
    }
  }

  private complete(a: ActivityRecord, outcome: ActivityOutcome): void {
    this.launching.delete(a.id);
    if (this.connected && this.alive) {
      this.world.at(this.world.now + this.world.delay(`complete:${this.id}`), 'activity completes', () => {
        if (a.state === 'started') this.world.resolveActivity(a, outcome);
      });
    } else this.pendingCompletions.set(a.id, outcome);
  }

  /** The step cancelled the launch, or its workflow is gone. */
  cancelLaunch(a: ActivityRecord, why: 'cancel' | 'not-found' | 'timed-out'): void {
    const w = [...this.workloads.values()].find((x) => x.activityId === a.id);
    if (!w) return;
    if (w.state === 'stopping' && w.stopWhy !== why && (why === 'not-found' || why === 'timed-out')) w.stopWhy = why;
    this.stop(w, a.input.gracePeriodMs, why);
  }

  /** The workload of a gang's replica dies on its own (OOM, a crash): its launch ends with exit 137. */
  killReplica(stepId: string, rank: number): void {
    if (!this.alive) return;
    for (const w of this.workloads.values()) {
      if (w.stepId !== stepId || w.gang?.rank !== rank || w.state === 'dead') continue;
      this.world.log(`the workload of ${stepId}'s replica ${rank} on ${this.id} dies`);
      this.exited(w, 'done', 137);
    }
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
    this.reachableSince = this.world.now;
    this.world.log(`agent ${this.id} reaches Temporal again`);
    if (!this.alive) return;
    // Registration (if it fenced) and reconciliation follow from the next heartbeats.
    for (const [id, outcome] of this.pendingCompletions) {
      const a = this.world.activities.get(id);
      if (a && a.state === 'started') this.world.resolveActivity(a, outcome);
    }
    this.pendingCompletions.clear();
    // Launches of this life still being fenced heartbeat too.
    for (const id of this.launching) {
      const a = this.world.activities.get(id);
      if (a?.state === 'started') this.world.activityHeard(a);
    }
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

/** The parts of a launch's input that fencing compares, as the activity receives them. */
function toLaunchInput(input: LaunchModelInput): Parameters<typeof leaseMismatch>[0] {
  const share = input.gpuIndices.length === 1 && input.gpuMilli < 1000 ? input.gpuMilli / 1000 : undefined;
  return {
    stepId: input.stepId,
    name: input.stepId,
    attempt: 1,
    leaseId: input.leaseId,
    pool: input.pool,
    requestId: input.requestId,
    command: [],
    env: {},
    gpuIndices: input.gpuIndices,
    ...(share !== undefined ? { gpuFraction: share } : {}),
    gracePeriodMs: input.gracePeriodMs,
  };
}
