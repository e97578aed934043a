/**
 * A model of the `allotPool` workflow around the real `PoolState` and `decide()`: its handlers, one
 * scheduling cycle per task, the health timer, delivery of grants, rejections, preemptions and
 * revocations to steps, and continue-as-new through the real pack and unpack of its state.
 */
import type { AcquireInput, Effect, HealthPolicy, NodeSpec, SchedulingPolicy } from '../../src/core';
import { PoolState, emptyPoolState, validateAcquireInput, validateHealthPolicy } from '../../src/core';
import { packState, unpackState } from '../../src/workflows/carry';
import { HEALTH_TIMER_SLACK_MS } from '../../src/workflows/pool';
import { checkLimitRemoval } from '../../src/workflows/pool-validation';
import type { MailItem, World } from './world';
import { WorkflowModel } from './world';

export const POOL_ID = 'allot-pool/sim';

/** What the pool's registration answers an agent. */
export interface RegistrationAnswer {
  kill: string[];
  nodeLostAfterMs: number;
}

export class PoolModel extends WorkflowModel {
  /**
   * `true` leaves custom amounts off every lease, as the pool once did: the protocol-sim test sets
   * it to show that the over-allocation check of custom resources can fail.
   */
  static forgetCustom = false;
  state: PoolState;
  /** Effects decided and delivered, for the invariants: preemptions by victim and preemptor. */
  readonly onEffect: ((e: Effect) => void)[] = [];
  runs = 1;
  /** When (server time) a limit's max last changed: its holders before then may hold more than a lowered max. */
  limitsLoweredAt = -Infinity;
  private healthTimerAt: number | undefined;
  /** When the armed health timer was due, on the server's clock. */
  private healthDueAt = 0;
  private healthGeneration = 0;

  constructor(world: World) {
    super(world, POOL_ID);
    this.state = new PoolState(emptyPoolState('sim'));
  }

  protected runTask(items: MailItem[]): void {
    const now = this.world.serverNow;
    let dirty = false;
    let healthDue = false;
    for (const item of items) {
      switch (item.kind) {
        case 'acquire': {
          const input = item.payload as AcquireInput;
          if (validateAcquireInput(input).length > 0) break;
          const outcome = this.state.enqueue(input, now);
          const rejection = outcome.status === 'rejected' ? this.state.rejectionOf(input.requestId) : undefined;
          if (rejection) this.deliver({ kind: 'reject', rejection });
          dirty = true;
          break;
        }
        case 'release': {
          const { requestId, requeue, stopped } = item.payload as {
            requestId: string;
            requeue?: boolean;
            stopped?: boolean;
          };
          const options = { requeue: requeue === true, stopped: stopped === true };
          for (const e of this.state.handleRelease(requestId, now, options)) this.deliver(e);
          dirty = true;
          break;
        }
        case 'renew': {
          const message = item.payload as { requestId: string; workflowId?: string };
          const effects = this.state.handleRenew(message, now);
          if (effects.length > 0) this.world.log(`pool: renewal of ${message.requestId}, which it does not hold`);
          for (const e of effects) this.deliver(e);
          break;
        }
        case 'nodeHeartbeat': {
          const { nodeId, stopping } = item.payload as { nodeId: string; stopping?: boolean };
          if (stopping) {
            this.state.markNotReady(nodeId);
            dirty = true;
          } else if (this.state.heartbeat(nodeId, now)) dirty = true;
          break;
        }
        case 'register': {
          const { spec, runningLeases, deadLeases, reply } = item.payload as {
            spec: NodeSpec;
            runningLeases: string[];
            deadLeases: string[];
            reply: (a: RegistrationAnswer) => void;
          };
          const answer = this.state.register(spec, now, { runningLeases, deadLeases });
          for (const e of answer.effects) this.deliver(e);
          reply({ kill: answer.kill, nodeLostAfterMs: answer.nodeLostAfterMs });
          dirty = true;
          break;
        }
        case 'grant-undeliverable': {
          const { requestId } = item.payload as { requestId: string };
          this.state.release(requestId);
          dirty = true;
          break;
        }
        case 'health':
          if (item.payload === this.healthGeneration) {
            this.healthTimerAt = undefined;
            healthDue = true;
            // A timer that fires late means the pool did not run: that time is not silence of nodes.
            const late = now - this.healthDueAt;
            if (late > HEALTH_TIMER_SLACK_MS) this.state.resume(late);
          }
          break;
        case 'set-health': {
          const policy = item.payload as Partial<HealthPolicy>;
          if (validateHealthPolicy(policy, this.state.health).length > 0) {
            this.world.log(`pool refuses health ${JSON.stringify(policy)}`);
            break;
          }
          this.state.setHealth(policy, now);
          dirty = true;
          break;
        }
        case 'set-policy':
          this.state.setPolicy(item.payload as Partial<SchedulingPolicy>);
          dirty = true;
          break;
        case 'set-quota': {
          const q = item.payload as { team: string; gpu: number; borrow?: number };
          this.state.setTeamQuota({
            name: q.team,
            nominal: { gpu: q.gpu * 1000 },
            ...(q.borrow !== undefined ? { borrowingLimit: { gpu: q.borrow * 1000 } } : {}),
          });
          dirty = true;
          break;
        }
        case 'set-limit':
          this.state.setLimit(item.payload as { name: string; max: number });
          this.limitsLoweredAt = now;
          dirty = true;
          break;
        case 'remove-limit': {
          // As the pool's validator: refused while a lease holds units of it.
          const input = item.payload as { name: string };
          try {
            checkLimitRemoval(this.state, input);
          } catch (err) {
            this.world.log(`pool refuses to remove limit ${input.name}: ${String(err)}`);
            break;
          }
          this.state.removeLimit(input.name);
          dirty = true;
          break;
        }
        case 'continue-as-new':
          this.continueAsNew();
          dirty = true;
          break;
        case 'wake':
          // A new run schedules at its start.
          dirty = true;
          break;
      }
    }
    if (healthDue) {
      for (const e of this.state.checkHealth(now)) {
        if (e.kind === 'revoke') this.world.log(`pool revokes ${e.lease.leaseId} of ${e.lease.label}: ${e.reason}`);
        this.deliver(e);
      }
      dirty = true;
    }
    if (dirty) for (const e of this.state.schedule(now)) this.deliver(e);
    if (PoolModel.forgetCustom) for (const l of this.state.leases) delete l.custom;
    this.armHealthTimer();
  }

  /**
   * Carries the state into a new run, as the workflow does: through pack and unpack. With
   * `replay` (a worker restarted), the run is the same: its timers stay armed.
   */
  continueAsNew(replay = false): void {
    const carried = packState(this.state.toJSON());
    const data = 'packed' in carried ? unpackState(carried.packed) : JSON.parse(JSON.stringify(carried.state));
    this.state = new PoolState(data);
    if (replay) return;
    this.runs++;
    this.healthTimerAt = undefined;
    this.healthGeneration++;
    this.world.log(`pool continues as new (run ${this.runs})`);
  }

  private armHealthTimer(): void {
    const deadline = this.state.nextHealthDeadline(this.world.serverNow);
    if (deadline === undefined) return;
    // Short sleeps while nodes are known, as the workflow: a clock jump within one goes unnoticed.
    const cap = this.state.nodes.length > 0 ? Math.floor(this.state.health.nodeLostAfterMs / 6) : Infinity;
    const at = Math.max(Math.min(deadline, this.world.serverNow + cap), this.world.serverNow + 250);
    if (this.healthTimerAt !== undefined && this.healthTimerAt <= at) return;
    this.healthTimerAt = at;
    this.healthDueAt = at;
    const generation = ++this.healthGeneration;
    this.timer(at - this.world.serverNow, 'health', generation);
  }

  private deliver(effect: Effect): void {
    for (const f of this.onEffect) f(effect);
    const owner =
      effect.kind === 'reject' ? effect.rejection.owner : effect.kind === 'gone' ? effect.owner : effect.lease.owner;
    if (owner.kind !== 'workflow') return;
    const to = owner.workflowId;
    if (effect.kind === 'grant') {
      const requestId = effect.lease.requestId;
      this.world.signal(to, 'grant', effect.lease, this.id, {
        onClosed: () => this.post({ kind: 'grant-undeliverable', payload: { requestId } }),
      });
    } else if (effect.kind === 'reject') {
      this.world.signal(to, 'reject', effect.rejection, this.id);
    } else if (effect.kind === 'gone') {
      const { requestId, reason, message } = effect;
      this.world.signal(to, 'revoke', { requestId, leaseId: '', reason, message }, this.id);
    } else if (effect.kind === 'preempt') {
      const { lease, message } = effect;
      this.world.signal(to, 'preempt', { requestId: lease.requestId, leaseId: lease.leaseId, message }, this.id);
    } else {
      const { lease, reason, message } = effect;
      this.world.signal(to, 'revoke', { requestId: lease.requestId, leaseId: lease.leaseId, reason, message }, this.id);
    }
  }
}
