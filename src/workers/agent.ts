/**
 * The node agent: registers its inventory with the pool, heartbeats, and runs workloads granted
 * to this node from the task queue `allot-node-<id>`.
 *
 * On start it kills what a previous life of the agent left running (those launches died with it;
 * their steps run again), then registers, naming those leases as dead; the pool answers which
 * reported leases it no longer holds, and those are killed too.
 *
 * While it runs, it keeps its link to the pool (see `pool-link.ts`): heartbeats, and when it cannot
 * reach Temporal for too long, it stops its workloads itself, before the pool may run their steps
 * elsewhere; when it is back, it registers again.
 *
 * To stop, it drains (`drainAndStop`): the pool grants the node nothing new, running steps have
 * until a deadline to finish, and what still runs then is stopped (SIGTERM, then SIGKILL after
 * each step's grace period) and handed back to be run again elsewhere. A node the agent drained
 * this way is made schedulable again when the agent comes back; a drain by an operator
 * (`allot drain`) outlives restarts.
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import type { NativeConnection } from '@temporalio/worker';
import { Worker } from '@temporalio/worker';
import type { Registry } from 'prom-client';
import type { CgroupSupport, GpuUsageSource, RunningLaunch } from '../activities';
import { createActivities, killGroup, LeaseLedger, prepareCgroups } from '../activities';
import type { NodeSpec } from '../core';
import {
  drainUpdate,
  leaseQuery,
  nodeHeartbeatSignal,
  nodeTaskQueue,
  poolWorkflowId,
  statusQuery,
} from '../workflows/messages';
import { PoolLink } from './pool-link';
import { workerDataConverter } from './codec';
import { GpuSampler } from './detect/gpu-sampler';
import { registerAgentMetrics, registerStoreMetrics } from './metrics';
import { openStore } from '../store';
import type { Store } from '../store/types';
import { registerNode } from './pool-client';

/** Options of a node agent. */
export interface AgentOptions {
  client: Client;
  connection: NativeConnection;
  namespace: string;
  pool: string;
  inventory: NodeSpec;
  /** Device index → the id `CUDA_VISIBLE_DEVICES` takes for it. @default the index itself */
  visibleIds?: Record<number, string>;
  /** Root of logs, outputs, checkpoints and the lease ledger. */
  dataDir: string;
  /** Agent variables passed to workloads. @default DEFAULT_ENV_ALLOWLIST */
  envAllowlist?: string[];
  /** Task queue of the control worker, used if the pool must be started. @default "allot" */
  controlTaskQueue?: string;
  /** Interval of heartbeats to the pool, ms. @default 5000 */
  heartbeatMs?: number;
  /** Time between usage samples and memory checks of each workload, ms. @default 500 */
  sampleMs?: number;
  /** Time between nvidia-smi samples while steps with GPUs run, ms. @default 2000 */
  gpuSampleMs?: number;
  /** Whether to limit workloads with cgroup v2 where the machine allows it. @default true */
  cgroups?: boolean;
  /** Registry to add the agent's metrics to (`allot_node_*`). @default none */
  metrics?: Registry;
  /** Called with notices worth a person's attention. */
  notice?: (message: string) => void;
  /**
   * The agent's own store for checkpoints and artifacts; without one it uses its pool's (named by
   * the worker's `--store`), and without either checkpoints stay on the node. @default the pool's
   */
  store?: Store;
  /** Time between checkpoint saves while a workload runs, ms. @default 2000 */
  checkpointSyncMs?: number;
  /** Where other nodes reach this one (a gang's `MASTER_ADDR`). @default the inventory's, else the host's primary address */
  advertiseAddress?: string;
  /** Payload codecs. @default workerDataConverter(): the unreadable-payload guard, and encryption with ALLOT_CODEC_KEY */
  dataConverter?: DataConverter;
}

/** A running agent. */
export interface Agent {
  worker: Worker;
  ledger: LeaseLedger;
  /** Launches running now, by lease id. */
  running: Map<string, RunningLaunch>;
  /** How workloads' memory is limited on this node. */
  cgroups: CgroupSupport;
  /** The store checkpoints and artifacts live in (the agent's own, or its pool's), if any. */
  store: Store | undefined;
  /** Resolves when the worker has stopped (heartbeats stop with it). */
  done: Promise<void>;
  /**
   * Drains the node and stops: no new grants; running steps have `deadlineMs` to finish; then the
   * rest are stopped and handed back. Resolves when the worker has stopped.
   */
  drainAndStop(deadlineMs: number): Promise<void>;
  /** Hands running steps back at once (a second Ctrl-C during a drain). */
  handBack(): void;
}

/** Kills the process groups of claims, returning their lease ids. */
function killClaims(claims: { leaseId: string; pgid?: number }[]): string[] {
  return claims.filter((c) => c.pgid !== undefined && killGroup(c.pgid)).map((c) => c.leaseId);
}

/** Registers the node and starts polling its task queue. */
export async function startAgent(given: AgentOptions): Promise<Agent> {
  const address = given.advertiseAddress ?? given.inventory.address ?? primaryAddress();
  // The pool keeps the address with the node: status shows it, and gangs rendezvous at it.
  const options = { ...given, inventory: { ...given.inventory, address } };
  const notice = options.notice ?? (() => undefined);
  const nodeId = options.inventory.id;
  notice(`advertised address: ${address} (a multi-node step's MASTER_ADDR when its replica 0 runs here)`);
  const ledger = new LeaseLedger(path.join(options.dataDir, 'ledger.json'));
  const orphanClaims = ledger.takeOrphans();
  const orphans = killClaims(orphanClaims);
  if (orphans.length > 0) notice(`killed workloads left by a previous run of this agent: leases ${orphans.join(', ')}`);
  const pool = options.client.workflow.getHandle(poolWorkflowId(options.pool));
  const cgroups: CgroupSupport = options.cgroups === false ? { available: false, why: 'turned off' } : prepareCgroups();
  notice(
    cgroups.available
      ? `limits: cgroup v2 under ${cgroups.parent.dir} (memory.max${cgroups.parent.cpu ? ', cpu.max' : ''})`
      : `limits: memory watched every ${options.sampleMs ?? 500}ms (no cgroup: ${cgroups.why}); CPU limits are advisory`,
  );
  const gpu: GpuUsageSource = new GpuSampler(options.gpuSampleMs);
  const running = new Map<string, RunningLaunch>();
  const handback = new AbortController();
  let draining = false;
  const onEnded = options.metrics
    ? registerAgentMetrics(options.metrics, {
        inventory: options.inventory,
        ledger,
        running,
        gpu,
        draining: () => draining,
      })
    : undefined;
  // The store is known once the pool has answered the registration (it may name one); launches wait for it.
  let storeKnown: (store: Store | undefined) => void = () => undefined;
  const storeReady = new Promise<Store | undefined>((resolve) => (storeKnown = resolve));
  const finishing = new Set<string>();
  const worker = await Worker.create({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: nodeTaskQueue(nodeId),
    activities: createActivities({
      nodeId,
      advertiseAddress: address,
      dataDir: options.dataDir,
      ledger,
      envAllowlist: options.envAllowlist,
      visibleIds: options.visibleIds,
      cgroups,
      gpu,
      sampleMs: options.sampleMs,
      running,
      onEnded,
      handback: handback.signal,
      draining: () => draining,
      store: storeReady,
      checkpointSyncMs: options.checkpointSyncMs,
      storeEvents: options.metrics ? registerStoreMetrics(options.metrics, nodeId) : undefined,
      finishing,
      // Fencing asks this agent's own pool, whatever pool a launch names (see fencing.ts).
      pool: options.pool,
      lookupLease: (leaseId) => pool.query(leaseQuery, leaseId),
    }),
    dataConverter: options.dataConverter ?? workerDataConverter(),
    maxConcurrentActivityTaskExecutions: 1000,
    // Cancellation reaches an activity only with a heartbeat: send them at once so that a
    // cancelled step's processes are signalled within about a second.
    maxHeartbeatThrottleInterval: '1s',
    defaultHeartbeatThrottleInterval: '1s',
    shutdownGraceTime: '5s',
  });
  const done = worker.run();
  // Orphans died with the agent's earlier life: the pool takes their leases back, and their
  // steps, which may be waiting to hear that their workloads stopped, queue again.
  let registered: Awaited<ReturnType<typeof registerNode>>;
  try {
    registered = await registerNode(options.client, options.pool, options.inventory, options.controlTaskQueue, {
      runningLeases: ledger.list().map((c) => c.leaseId),
      deadLeases: orphanClaims.map((c) => c.leaseId),
    });
  } catch (err) {
    storeKnown(options.store);
    throw err;
  }
  const store = chooseStore(options.store, registered.store, notice);
  storeKnown(store);
  // Said at start rather than at the first step: a store this agent cannot reach (no credentials,
  // no such bucket, an unmounted share). Steps then fail to save or restore, and say so.
  store
    ?.stat('checkpoints/.reachable')
    .catch((err: unknown) => notice(`store ${store.url} cannot be used from this node: ${(err as Error).message}`));
  const stale = killClaims(ledger.list().filter((c) => registered.kill.includes(c.leaseId)));
  if (stale.length > 0) notice(`killed workloads whose leases the pool no longer holds: ${stale.join(', ')}`);

  // A drain this agent made when it last stopped ends when it is back.
  const drainedMarker = path.join(options.dataDir, 'drained-by-agent');
  if (existsSync(drainedMarker)) {
    try {
      await pool.executeUpdate(drainUpdate, { args: [{ nodeId, drain: false }] });
      rmSync(drainedMarker, { force: true });
      notice(`node ${nodeId} is schedulable again (this agent drained it when it stopped)`);
    } catch (err) {
      notice(`could not undrain node ${nodeId}: ${(err as Error).message}; run \`allot drain ${nodeId} --undo\``);
    }
  }

  const link = new PoolLink({
    client: options.client,
    pool: options.pool,
    inventory: options.inventory,
    controlTaskQueue: options.controlTaskQueue,
    running,
    heartbeatMs: options.heartbeatMs,
    nodeLostAfterMs: registered.nodeLostAfterMs,
    notice,
    stopping: () => worker.getState() !== 'RUNNING',
  });
  link.start();
  // When the worker starts to stop (without a drain: allot dev stopped, say), tell the pool at
  // once, so that the steps it interrupts run again elsewhere rather than wait for this node.
  const watchStop = setInterval(() => {
    if (worker.getState() === 'RUNNING') return;
    clearInterval(watchStop);
    link.stop();
    pool.signal(nodeHeartbeatSignal, { nodeId, stopping: true }).catch(() => undefined);
  }, 250);
  void done.finally(() => {
    link.stop();
    clearInterval(watchStop);
  });

  const handBack = (): void => {
    draining = true;
    if (!handback.signal.aborted) handback.abort();
  };
  const drainAndStop = async (deadlineMs: number): Promise<void> => {
    if (!draining) {
      draining = true;
      try {
        const status = await pool.query(statusQuery);
        const byOperator = status.nodes.find((n) => n.id === nodeId)?.status === 'Draining';
        await pool.executeUpdate(drainUpdate, { args: [{ nodeId, drain: true }] });
        if (!byOperator) {
          // The data dir exists once a step has run; an agent that ran none still marks its drain.
          mkdirSync(options.dataDir, { recursive: true });
          writeFileSync(drainedMarker, `${new Date().toISOString()}\n`);
        }
      } catch (err) {
        notice(`could not drain node ${nodeId} in pool ${options.pool}: ${(err as Error).message}`);
      }
    }
    if (running.size + finishing.size > 0) {
      notice(
        `draining: waiting up to ${Math.round(deadlineMs / 1000)}s for ${running.size} running step(s): ` +
          `${[...running.values()].map((r) => r.input.name).join(', ')} (Ctrl-C again hands them back now)`,
      );
      const deadline = Date.now() + deadlineMs;
      while (running.size + finishing.size > 0 && Date.now() < deadline && !handback.signal.aborted) {
        await new Promise((r) => setTimeout(r, 100));
      }
      if (running.size > 0) {
        notice(`handing back ${running.size} step(s) to run again elsewhere: SIGTERM, then SIGKILL after their grace`);
        handBack();
        // Handed-back workloads stop within their grace; their last checkpoints are sent after.
        while (running.size + finishing.size > 0) await new Promise((r) => setTimeout(r, 100));
      }
    }
    // Let the handed-back launches report their failure before the worker goes.
    await new Promise((r) => setTimeout(r, 200));
    if (worker.getState() === 'RUNNING') worker.shutdown();
    await done.catch(() => undefined);
  };
  return { worker, ledger, running, cgroups, store, done, drainAndStop, handBack };
}

/** The agent's own store, else its pool's; says which, and when they differ. */
function chooseStore(
  own: Store | undefined,
  pools: string | undefined,
  notice: (m: string) => void,
): Store | undefined {
  if (own) {
    if (pools !== undefined && pools !== own.url)
      notice(
        `store: ${own.url} (this agent's own; its pool names ${pools}: steps that move between them will not find their checkpoints)`,
      );
    else notice(`store: ${own.url}`);
    return own;
  }
  if (pools === undefined) {
    notice(
      'store: none; checkpoints stay on this node and steps cannot declare outputs (give one with --store or ALLOT_STORE)',
    );
    return undefined;
  }
  try {
    const store = openStore(pools);
    notice(`store: ${store.url} (the pool's)`);
    return store;
  } catch (err) {
    notice(`store: none; the pool's store ${pools} cannot be used here: ${(err as Error).message}`);
    return undefined;
  }
}

/**
 * The host's primary address: its first non-loopback IPv4 address (else IPv6), where other nodes
 * most likely reach it; the loopback address on a machine without a network.
 */
export function primaryAddress(interfaces = os.networkInterfaces()): string {
  const all = Object.values(interfaces).flatMap((list) => list ?? []);
  const usable = all.filter((a) => !a.internal && !(a.family === 'IPv6' && a.address.startsWith('fe80')));
  return (usable.find((a) => a.family === 'IPv4') ?? usable[0])?.address ?? '127.0.0.1';
}
