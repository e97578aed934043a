/**
 * The disruptions of a chaos run, each on a seeded schedule: kill -9 of the Temporal server, the
 * control worker or an agent, then starting it again; partitions that cut an agent off from the
 * server for a while; and a keeper that starts again whatever dies on its own.
 */
import type { Violation } from './invariants';
import type { ManagedProcess } from './processes';
import type { PartitionProxy } from './proxy';
import { SeededRandom } from './random';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** One kill of the run. */
export interface Kill {
  target: string;
  kind: 'server' | 'worker' | 'agent';
  /** Ms since the run began. */
  atMs: number;
  /** Ms from the kill until the process served again. */
  downMs: number;
}

/** One partition of the run: an agent cut off from the server, from `atMs` for `durationMs`. */
export interface Partition {
  node: string;
  atMs: number;
  durationMs: number;
}

/** The processes a run disrupts; agent `i` runs node `nodes[i]` and reaches the server through `proxies[i]`. */
export interface Cast {
  server: ManagedProcess;
  worker: ManagedProcess;
  agents: ManagedProcess[];
  nodes: string[];
  proxies: PartitionProxy[];
}

/** The schedule's parameters. */
export interface DisruptionPlan {
  /** Seed of the kill and partition schedules. */
  seed: number;
  kills: number;
  partitions: number;
  /** Seconds between kills: drawn from [min, max]. */
  gapSeconds: [number, number];
}

/** The disruptions of one run, and what they did. */
export class Disruptions {
  readonly kills: Kill[] = [];
  readonly partitions: Partition[] = [];
  /** Why the run must stop: a process could not start again. */
  stuck: string | undefined;
  /** Processes the kill schedule is restarting right now: the keeper leaves them alone. */
  private readonly busy = new Set<ManagedProcess>();
  private stopping = false;

  constructor(
    private readonly cast: Cast,
    private readonly plan: DisruptionPlan,
    private readonly began: number,
    /** Where a process that cannot come back is reported (`step lost`). */
    private readonly violations: Violation[],
    private readonly say: (line: string) => void,
  ) {}

  private get all(): ManagedProcess[] {
    return [this.cast.server, this.cast.worker, ...this.cast.agents];
  }

  /** Starts again every process that dies on its own, until `stopKeeping`. */
  async keepAlive(): Promise<void> {
    while (!this.stopping) {
      for (const p of this.all) {
        if (!this.stopping && !this.busy.has(p) && !p.alive) {
          this.say(`${p.name} died on its own; starting it again`);
          this.busy.add(p);
          await this.reachable(p);
          await p.start().catch((err: unknown) => this.say(`${p.name} did not start: ${String(err)}`));
          this.busy.delete(p);
        }
      }
      await sleep(1_000);
    }
  }

  /** Ends `keepAlive` at its next round. */
  stopKeeping(): void {
    this.stopping = true;
  }

  /** Runs the kill schedule and the partition schedule; resolves once both are over. */
  async run(): Promise<void> {
    await Promise.all([this.killSchedule(), this.partitionSchedule()]);
  }

  /**
   * An agent exits at start when it cannot reach the server: wait until its partition is over
   * before starting it again.
   */
  private async reachable(p: ManagedProcess): Promise<void> {
    const proxy = this.cast.proxies[this.cast.agents.indexOf(p)];
    while (proxy?.cut) await sleep(250);
  }

  private async partitionSchedule(): Promise<void> {
    const rng = new SeededRandom(this.plan.seed * 31 + 7);
    const { proxies, nodes } = this.cast;
    const [minGap, maxGap] = this.plan.gapSeconds;
    for (let k = 1; k <= this.plan.partitions && !this.stuck; k++) {
      await sleep((rng.between(minGap, maxGap) + rng.between(5, 15)) * 1000);
      const i = Math.floor(rng.next() * proxies.length);
      const proxy = proxies[i];
      const node = nodes[i] ?? '';
      if (!proxy) continue;
      const durationMs = Math.round(rng.between(12_000, 45_000));
      const atMs = Date.now() - this.began;
      proxy.partition();
      this.say(`partition ${k}/${this.plan.partitions}: ${node} cut off for ${(durationMs / 1000).toFixed(1)}s`);
      await sleep(durationMs);
      proxy.heal();
      this.partitions.push({ node, atMs, durationMs });
    }
  }

  private async killSchedule(): Promise<void> {
    const rng = new SeededRandom(this.plan.seed);
    const { server, worker, agents } = this.cast;
    for (let k = 1; k <= this.plan.kills; k++) {
      await sleep(rng.between(this.plan.gapSeconds[0], this.plan.gapSeconds[1]) * 1000);
      const roll = rng.next();
      const target = roll < 0.25 ? server : roll < 0.5 ? worker : rng.pick(agents);
      const down = rng.between(300, 2_500);
      while (this.busy.has(target)) await sleep(200);
      this.busy.add(target);
      const killedAt = Date.now();
      await target.kill9();
      await sleep(down);
      let back = false;
      for (let attempt = 1; attempt <= 2 && !back; attempt++) {
        try {
          await this.reachable(target);
          await target.start(120_000);
          back = true;
        } catch (err) {
          this.say(`${target.name} did not come back (${String(err).split('\n')[0]})`);
        }
      }
      if (!back) {
        // An agent waits for the pool to take its registration: the pool has stopped answering.
        this.stuck = `${target.name} could not start again after kill ${k} (${target.spec.kind === 'agent' ? 'the pool did not take its registration' : 'not ready'})`;
        this.violations.push({ invariant: 'step lost', message: `the system did not recover: ${this.stuck}` });
        break;
      }
      this.busy.delete(target);
      this.kills.push({
        target: target.name,
        kind: target.spec.kind,
        atMs: killedAt - this.began,
        downMs: Date.now() - killedAt,
      });
      this.say(
        `kill ${k}/${this.plan.kills}: ${target.name}, back after ${((Date.now() - killedAt) / 1000).toFixed(1)}s`,
      );
    }
  }
}
