/**
 * An agent's link to its pool, and what the agent does when the link breaks:
 *
 * - **Heartbeats.** A heartbeat every few seconds (at least nine per node-lost time). One that the
 *   server accepts is contact: the pool has heard from the node no earlier than it was sent.
 * - **Fencing itself.** Without contact for a third of the pool's node-lost time, the agent stops
 *   every workload (SIGTERM, then SIGKILL) so that all are gone two thirds of the way: before the
 *   pool may declare the node lost and grant their resources, and run their steps, elsewhere.
 * - **Coming back.** After it fenced itself, or when the pool says the node is lost or unknown,
 *   the agent registers again, naming the leases whose workloads it stopped: the pool takes them
 *   back and tells their steps, which queue again.
 * - **Reconciling.** Every few heartbeats it asks the pool which leases it holds on the node, and
 *   stops a workload whose lease the pool no longer holds (released by someone else, or taken
 *   back while the agent was away), as well as learning the pool's node-lost time.
 */
import type { Client } from '@temporalio/client';
import type { RunningLaunch } from '../activities';
import type { NodeReport, NodeSpec } from '../core';
import { DEFAULT_HEALTH } from '../core';
import { nodeHeartbeatSignal, nodeQuery, poolWorkflowId } from '../workflows/messages';
import { registerNode } from './pool-client';

/** What the link needs. */
export interface PoolLinkOptions {
  client: Client;
  pool: string;
  inventory: NodeSpec;
  controlTaskQueue?: string;
  /** Launches running now, by lease id (the agent's). */
  running: Map<string, RunningLaunch>;
  /** Longest interval between heartbeats, ms. @default 5000 */
  heartbeatMs?: number;
  /** The pool's node-lost time as the registration said, ms. @default DEFAULT_HEALTH.nodeLostAfterMs */
  nodeLostAfterMs?: number;
  /** Notices worth a person's attention. */
  notice: (message: string) => void;
  /** Whether the agent is stopping (no registration then). */
  stopping: () => boolean;
}

/** How often the link checks whether it must fence, ms. */
const FENCE_CHECK_MS = 250;

/** Heartbeats between two reconciliations with the pool. */
const RECONCILE_EVERY = 3;

export class PoolLink {
  private lastContact = Date.now();
  private nodeLostMs: number;
  private beats = 0;
  private inFlight = false;
  private timers: NodeJS.Timeout[] = [];
  /** Leases whose workloads this agent stopped because it could not reach Temporal. */
  private readonly fenced = new Set<string>();
  private mustRegister = false;
  private registering = false;
  private cutOffNoticed = false;
  /** Launches already stopped because the pool no longer holds their leases. */
  private readonly notHeld = new WeakSet<RunningLaunch>();

  constructor(private readonly options: PoolLinkOptions) {
    this.nodeLostMs = options.nodeLostAfterMs ?? DEFAULT_HEALTH.nodeLostAfterMs;
  }

  /** Interval of heartbeats now, ms: nine per node-lost time at least. */
  get heartbeatMs(): number {
    return Math.max(250, Math.min(this.options.heartbeatMs ?? 5_000, Math.floor(this.nodeLostMs / 9)));
  }

  /** Starts heartbeats and the fence check. */
  start(): void {
    const beat = (): void => {
      void this.beat();
      this.timers[0] = setTimeout(beat, this.heartbeatMs);
    };
    this.timers[0] = setTimeout(beat, this.heartbeatMs);
    this.timers[1] = setInterval(() => this.checkFence(), FENCE_CHECK_MS);
  }

  /** Stops everything the link runs. */
  stop(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers = [];
  }

  /** Sends one heartbeat; a success is contact. Every few, reconciles with the pool. */
  private async beat(): Promise<void> {
    if (this.inFlight || this.options.stopping()) return;
    this.inFlight = true;
    const sentAt = Date.now();
    const handle = this.options.client.workflow.getHandle(poolWorkflowId(this.options.pool));
    try {
      await withTimeout(handle.signal(nodeHeartbeatSignal, { nodeId: this.options.inventory.id }), this.nodeLostMs / 6);
      this.contact(sentAt);
      if (this.mustRegister) await this.register();
      else if (++this.beats % RECONCILE_EVERY === 0) await this.reconcile(sentAt);
    } catch {
      // No contact: the fence check counts the silence.
    } finally {
      this.inFlight = false;
    }
  }

  private contact(at: number): void {
    this.lastContact = Math.max(this.lastContact, at);
    if (this.cutOffNoticed) {
      this.cutOffNoticed = false;
      this.options.notice(`reached Temporal again after ${Math.round((Date.now() - at) / 1000)} s`);
    }
  }

  /** Stops every workload when the agent has been cut off for longer than it may run them. */
  private checkFence(): void {
    const silentMs = Date.now() - this.lastContact;
    for (const [leaseId, launch] of this.options.running) {
      if (this.fenced.has(leaseId)) continue;
      // A lease granted under a shorter node-lost time is stopped by that one.
      const lostMs = Math.min(this.nodeLostMs, launch.input.fenceMs ?? Infinity);
      if (silentMs < lostMs / 3) continue;
      if (!this.cutOffNoticed) {
        this.cutOffNoticed = true;
        this.options.notice(
          `cannot reach Temporal for ${Math.round(silentMs / 1000)} s: stopping workloads, so that their steps can run elsewhere`,
        );
      }
      this.fenced.add(leaseId);
      this.mustRegister = true;
      const killBy = this.lastContact + (2 * lostMs) / 3;
      launch.stop('fenced', Math.max(0, killBy - Date.now()));
    }
  }

  /** Asks the pool about the node: registers again if it must, stops workloads whose lease is gone. */
  private async reconcile(sentAt: number): Promise<void> {
    const handle = this.options.client.workflow.getHandle(poolWorkflowId(this.options.pool));
    let report: NodeReport;
    try {
      report = await withTimeout(handle.query(nodeQuery, this.options.inventory.id), this.nodeLostMs / 6);
    } catch {
      return; // The pool cannot answer now (its worker is down): no news.
    }
    this.contact(sentAt);
    if (report.nodeLostAfterMs > 0) this.nodeLostMs = report.nodeLostAfterMs;
    if (!report.known || report.lost) {
      this.options.notice(
        report.lost
          ? `pool ${this.options.pool} considers this node lost: registering again`
          : `pool ${this.options.pool} does not know this node: registering again`,
      );
      this.mustRegister = true;
      await this.register();
      return;
    }
    const held = new Set(report.leases.map((l) => l.leaseId));
    for (const [leaseId, launch] of this.options.running) {
      // Only launches that began before the question was asked: a newer one's grant may be newer too.
      if (held.has(leaseId) || launch.startedAt >= sentAt || this.fenced.has(leaseId)) continue;
      if (this.notHeld.has(launch)) continue;
      this.notHeld.add(launch);
      this.options.notice(`pool ${this.options.pool} no longer holds lease ${leaseId}: stopping ${launch.input.name}`);
      launch.stop('not-held', launch.input.gracePeriodMs);
    }
  }

  /**
   * Registers the node again, naming the leases whose workloads it stopped and that have exited
   * (one still stopping is named at the next registration, once it is gone).
   */
  async register(): Promise<void> {
    if (this.registering || this.options.stopping()) return;
    this.registering = true;
    const dead = [...this.fenced].filter((id) => !this.options.running.has(id));
    try {
      const result = await registerNode(
        this.options.client,
        this.options.pool,
        this.options.inventory,
        this.options.controlTaskQueue,
        {
          runningLeases: [...this.options.running.keys()].filter((id) => !this.fenced.has(id)),
          deadLeases: dead,
          keepTrying: () => !this.options.stopping(),
        },
      );
      if (result.nodeLostAfterMs !== undefined) this.nodeLostMs = result.nodeLostAfterMs;
      for (const id of dead) this.fenced.delete(id);
      this.mustRegister = this.fenced.size > 0;
      for (const leaseId of result.kill) this.options.running.get(leaseId)?.stop('not-held', 0);
      this.options.notice(`registered node ${this.options.inventory.id} with pool ${this.options.pool} again`);
    } catch (err) {
      if (!this.options.stopping()) this.options.notice(`could not register again: ${(err as Error).message}`);
    } finally {
      this.registering = false;
    }
  }
}

/** A promise that rejects after `ms` unless `p` settles first. */
function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${Math.round(ms)} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}
