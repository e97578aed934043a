/**
 * The simulated world: one clock, one queue of events, and a model of the Temporal server between
 * the parts: workflow mailboxes and tasks, workflow timers, activities with their timeouts, and
 * a network that delays, reorders and duplicates signals and cuts agents off.
 *
 * Time: `now` is the agents' clock (ms). The server's clock is `now + clockOffset`: workflow time
 * (`Date.now()` in a workflow) and every server-side deadline (timers, activity timeouts) run on
 * it, so a clock jump fires what falls due.
 */
import { SeededRandom } from '../../src/chaos/random';

/** A mix of numbers and strings into one 32-bit seed (FNV-1a). */
export function mix(...parts: (string | number)[]): number {
  let h = 0x811c9dc5;
  for (const p of parts) {
    const s = String(p);
    for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
    h = Math.imul(h ^ 0x2c, 0x01000193);
  }
  return h >>> 0;
}

interface Scheduled {
  at: number;
  seq: number;
  label: string;
  run: () => void;
}

/** A binary min-heap of events by time, then by the order they were scheduled. */
class EventQueue {
  private heap: Scheduled[] = [];
  get size(): number {
    return this.heap.length;
  }
  push(e: Scheduled): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(h[i] as Scheduled, h[p] as Scheduled)) break;
      [h[i], h[p]] = [h[p] as Scheduled, h[i] as Scheduled];
      i = p;
    }
  }
  pop(): Scheduled | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && before(h[l] as Scheduled, h[m] as Scheduled)) m = l;
        if (r < h.length && before(h[r] as Scheduled, h[m] as Scheduled)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m] as Scheduled, h[i] as Scheduled];
        i = m;
      }
    }
    return top;
  }
}

/**
 * A payload as the receiver gets it: a copy through JSON, as Temporal's data converter makes one
 * (a `reply` callback of the model is kept).
 */
function asSent(payload: unknown): unknown {
  if (payload === undefined) return undefined;
  const copy = JSON.parse(JSON.stringify(payload)) as unknown;
  const reply = (payload as { reply?: unknown }).reply;
  if (typeof reply === 'function') (copy as { reply: unknown }).reply = reply;
  return copy;
}

function before(a: Scheduled, b: Scheduled): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/** Something a workflow's task handles: a signal, a fired timer or a resolved activity. */
export interface MailItem {
  kind: string;
  payload?: unknown;
}

/** A workflow as the server sees it: a mailbox that tasks drain while the control worker is up. */
export abstract class WorkflowModel {
  readonly mailbox: MailItem[] = [];
  closed = false;
  private taskPending = false;

  constructor(
    readonly world: World,
    readonly id: string,
  ) {}

  /** Adds an item and makes sure a task will run. */
  post(item: MailItem): void {
    if (this.closed) return;
    this.mailbox.push(item);
    this.wake();
  }

  /** Runs a task soon if there is anything to do and the control worker is up. */
  wake(): void {
    if (this.taskPending || this.closed || !this.world.workerUp) return;
    this.taskPending = true;
    const latency = this.world.taskLatency(this.id);
    this.world.at(this.world.now + latency, `task ${this.id}`, () => {
      this.taskPending = false;
      if (this.closed || !this.world.workerUp) return;
      const items = this.mailbox.splice(0);
      this.runTask(items);
    });
  }

  /** Handles the items of one task, in order, then lets the workflow's code go on. */
  protected abstract runTask(items: MailItem[]): void;

  /** A timer that fires on the server's clock. */
  timer(ms: number, kind: string, payload?: unknown): void {
    this.world.serverTimer(this.world.serverNow + ms, () => this.post({ kind, payload }));
  }
}

/** How a launch activity ended, as the step workflow sees it. */
export type ActivityOutcome =
  | { kind: 'completed'; exitCode: number; released: boolean }
  | { kind: 'failed'; type: string; message: string }
  | { kind: 'cancelled' }
  | { kind: 'timeout'; timeoutType: 'SCHEDULE_TO_START' | 'HEARTBEAT' | 'START_TO_CLOSE' };

/** What a launch carries to the agent. */
export interface LaunchModelInput {
  stepId: string;
  requestId: string;
  leaseId: string;
  pool: string;
  gpuIndices: number[];
  gpuMilli: number;
  cpuMilli: number;
  gracePeriodMs: number;
  /** The pool's node-lost time when the lease was granted: the agent's fencing bound. */
  fenceMs?: number;
  /** A gang's replica: its rank and the gang's size. */
  gang?: { rank: number; size: number };
}

/** A launch activity on the server. */
export interface ActivityRecord {
  id: string;
  stepId: string;
  node: string;
  input: LaunchModelInput;
  state: 'scheduled' | 'started' | 'closed';
  cancelRequested: boolean;
  /** Bumped whenever the heartbeat deadline is set anew. */
  deadlineGeneration: number;
  /**
   * A gang's rendezvous on replica 0's node (it names a port), not a launch: no heartbeats, 30 s
   * to answer once started, and a cancellation that does not wait for the agent.
   */
  rendezvous?: boolean;
}

/** Parts the world drives; each model registers itself. */
export interface AgentLike {
  readonly id: string;
  alive: boolean;
  connected: boolean;
  startLaunch(a: ActivityRecord): void;
  cancelLaunch(a: ActivityRecord, why: 'cancel' | 'not-found' | 'timed-out'): void;
  /** The server timed out a launch while the agent is connected: it hears so at its next heartbeat. */
  activityTimedOut(a: ActivityRecord): void;
}

/** The whole simulated world. */
export class World {
  now = 0;
  clockOffset = 0;
  workerUp = true;
  readonly trace: string[] = [];
  private readonly queue = new EventQueue();
  private seq = 0;
  private readonly counters = new Map<string, number>();
  readonly workflows = new Map<string, WorkflowModel>();
  readonly agents = new Map<string, AgentLike>();
  readonly activities = new Map<string, ActivityRecord>();
  private activityCounter = 0;
  /** Called after every event (the invariants). */
  afterEvent: () => void = () => undefined;
  /** Set by a check that found a violation: the run stops. */
  stopped = false;
  eventsRun = 0;

  constructor(
    readonly seed: number,
    private readonly traceLimit = 400,
  ) {}

  get serverNow(): number {
    return this.now + this.clockOffset;
  }

  /** A random source for one purpose: the same seed, label and count give the same draws. */
  random(label: string): SeededRandom {
    const n = (this.counters.get(label) ?? 0) + 1;
    this.counters.set(label, n);
    return new SeededRandom(mix(this.seed, label, n));
  }

  log(line: string): void {
    this.trace.push(`${(this.now / 1000).toFixed(3)}s ${line}`);
    if (this.trace.length > this.traceLimit * 2) this.trace.splice(0, this.trace.length - this.traceLimit);
  }

  /** Runs `run` at sim time `at` (never earlier than now). */
  at(at: number, label: string, run: () => void): void {
    this.queue.push({ at: Math.max(this.now, Math.round(at)), seq: this.seq++, label, run });
  }

  /** Runs `run` when the server's clock reaches `serverAt` (a clock jump brings it forward). */
  serverTimer(serverAt: number, run: () => void): void {
    const offset = this.clockOffset;
    this.at(serverAt - offset, 'server timer', () => {
      // A jump since it was set already ran it.
      if (this.clockOffset !== offset) return;
      run();
    });
    this.pendingTimers.push({ serverAt, run, offset });
  }

  private pendingTimers: { serverAt: number; run: () => void; offset: number }[] = [];

  /** The server's clock jumps forward: timers that fall due fire now. */
  jumpClock(byMs: number): void {
    const old = this.clockOffset;
    this.clockOffset += byMs;
    const timers = this.pendingTimers.filter((t) => t.offset === old && t.serverAt - old > this.now);
    this.pendingTimers = [];
    for (const t of timers) this.serverTimer(t.serverAt, t.run);
    this.onClockJump?.(byMs);
  }

  onClockJump?: (byMs: number) => void;

  /** Called as an activity ends on the server (the invariants). */
  onActivityResolved?: (a: ActivityRecord, outcome: ActivityOutcome) => void;

  /** Runs events until `until` (sim time) or until the queue is empty or a check stopped the run. */
  run(until: number, done: () => boolean = () => false): void {
    for (;;) {
      if (this.stopped || done()) return;
      const e = this.queue.pop();
      if (!e) return;
      if (e.at > until) {
        this.queue.push(e);
        this.now = until;
        return;
      }
      this.now = e.at;
      this.eventsRun++;
      e.run();
      if (this.pendingTimers.length > 5_000)
        this.pendingTimers = this.pendingTimers.filter((t) => t.serverAt > this.serverNow);
      this.afterEvent();
    }
  }

  /** How long a workflow task takes to start after it is due: usually tens of ms, now and then seconds. */
  taskLatency(workflowId: string): number {
    const r = this.random(`latency:${workflowId}`);
    const x = r.next();
    return x < 0.9 ? r.int(5, 60) : x < 0.99 ? r.int(60, 1_500) : r.int(1_500, 6_000);
  }

  /** Network delay of one message: mostly small, sometimes seconds. */
  delay(label: string): number {
    const r = this.random(`delay:${label}`);
    const x = r.next();
    return x < 0.85 ? r.int(1, 150) : x < 0.98 ? r.int(150, 2_500) : r.int(2_500, 12_000);
  }

  /** Whether a message is delivered twice. */
  duplicated(label: string): boolean {
    return this.random(`dup:${label}`).next() < 0.03;
  }

  /**
   * Sends a signal between workflows or from a client: delayed, sometimes duplicated. The sender
   * learns of a closed target through `onClosed` (as `signalExternal` fails).
   */
  signal(
    to: string,
    kind: string,
    payload: unknown,
    from: string,
    options: { onClosed?: () => void; duplicates?: boolean } = {},
  ): void {
    const label = `${from}>${to}:${kind}`;
    payload = asSent(payload);
    const copies = options.duplicates !== false && this.duplicated(label) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      this.at(this.now + this.delay(label), `signal ${label}`, () => {
        const target = this.workflows.get(to);
        if (!target || target.closed) {
          if (i === 0) options.onClosed?.();
          return;
        }
        target.post({ kind, payload });
      });
    }
  }

  /** Schedules a launch on a node's task queue; its outcome comes back to the step's mailbox. */
  scheduleActivity(stepId: string, node: string, input: LaunchModelInput, rendezvous = false): ActivityRecord {
    const a: ActivityRecord = {
      id: `act-${++this.activityCounter}`,
      stepId,
      node,
      input,
      state: 'scheduled',
      cancelRequested: false,
      deadlineGeneration: 0,
      ...(rendezvous ? { rendezvous } : {}),
    };
    this.activities.set(a.id, a);
    this.serverTimer(this.serverNow + 60_000, () => {
      if (a.state === 'scheduled') this.resolveActivity(a, { kind: 'timeout', timeoutType: 'SCHEDULE_TO_START' });
    });
    this.at(this.now + this.delay(`schedule:${node}`), 'activity scheduled', () => this.offerWork(node));
    return a;
  }

  /** Hands scheduled launches to the node's agent if it polls. */
  offerWork(node: string): void {
    const agent = this.agents.get(node);
    if (!agent || !agent.alive || !agent.connected) return;
    for (const a of this.activities.values()) {
      if (a.node !== node || a.state !== 'scheduled') continue;
      a.state = 'started';
      if (a.rendezvous) {
        this.rendezvous(a, agent);
        continue;
      }
      this.log(`agent ${node} starts ${a.id} (${a.stepId}, lease ${a.input.leaseId})`);
      agent.startLaunch(a);
    }
  }

  /** The agent names a port for a gang: it answers unless it dies or is cut off first; 30 s at most. */
  private rendezvous(a: ActivityRecord, agent: AgentLike): void {
    this.log(`agent ${a.node} names a port for ${a.stepId} (${a.id})`);
    this.serverTimer(this.serverNow + 30_000, () => {
      if (a.state === 'started') this.resolveActivity(a, { kind: 'timeout', timeoutType: 'START_TO_CLOSE' });
    });
    this.at(this.now + this.delay(`complete:${a.node}`), 'rendezvous answers', () => {
      if (a.state === 'started' && agent.alive && agent.connected)
        this.resolveActivity(a, { kind: 'completed', exitCode: 0, released: false });
    });
  }

  /** The agent of a started activity went silent (dead or cut off): it times out unless heard from. */
  activitySilent(a: ActivityRecord): void {
    if (a.state !== 'started' || a.rendezvous) return;
    const generation = ++a.deadlineGeneration;
    this.serverTimer(this.serverNow + 20_000, () => {
      if (a.state === 'started' && a.deadlineGeneration === generation) {
        this.resolveActivity(a, { kind: 'timeout', timeoutType: 'HEARTBEAT' });
        this.agents.get(a.node)?.activityTimedOut(a);
      }
    });
  }

  /** The agent of a started activity is heard from again. */
  activityHeard(a: ActivityRecord): void {
    a.deadlineGeneration++;
  }

  /** The step asks to cancel its launch (it waits for the cancellation to complete). */
  cancelActivity(a: ActivityRecord): void {
    if (a.state === 'closed' || a.cancelRequested) return;
    a.cancelRequested = true;
    if (a.state === 'scheduled' || a.rendezvous) {
      this.resolveActivity(a, { kind: 'cancelled' });
      return;
    }
    const agent = this.agents.get(a.node);
    if (agent?.alive && agent.connected) {
      this.at(this.now + this.random(`hb:${a.id}`).int(20, 1_000), 'cancel reaches agent', () => {
        if (a.state === 'started' && agent.alive && agent.connected) agent.cancelLaunch(a, 'cancel');
      });
    }
  }

  /** The activity ends; its outcome goes to the step (if the step still runs). */
  resolveActivity(a: ActivityRecord, outcome: ActivityOutcome): void {
    if (a.state === 'closed') return;
    a.state = 'closed';
    this.log(`${a.id} of ${a.stepId} ends: ${JSON.stringify(outcome)}`);
    this.onActivityResolved?.(a, outcome);
    const step = this.workflows.get(a.stepId);
    step?.post({ kind: 'activity', payload: { id: a.id, outcome } });
  }
}
