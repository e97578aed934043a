/**
 * `allot agent`: registers this machine with a pool and runs the steps granted to it; SIGTERM
 * drains it, a second signal hands the running steps back at once.
 */
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { DEFAULT_ENV_ALLOWLIST } from '../../activities/environment';
import { formatCpu, formatMemory } from '../../core';
import { openStore } from '../../store';
import { startAgent } from '../../workers/agent';
import type { Inventory } from '../../workers/inventory';
import { describeCustom, describeDetected, detectInventory } from '../../workers/inventory';
import { DEFAULT_POOL } from '../../workflows/messages';
import type { MetricsOptions } from '../lifecycle';
import { connectTemporal, metricsEndpoint, quietRuntime, say, serve, untilStopped } from '../lifecycle';
import type { Exit, InventoryOptions } from '../options';
import {
  advertiseAddress,
  collect,
  inventoryFlags,
  inventoryOptions,
  metricsOptions,
  storeOption,
  storeUrl,
} from '../options';
import { UserError } from '../errors';
import { parseInteger, parsePort, parseSeconds } from '../parse';

/** Options of `allot agent`. */
export interface AgentCommandOptions extends InventoryOptions, MetricsOptions {
  pool: string;
  nodeId?: string;
  dataDir: string;
  envAllow?: string[];
  /** Seconds running steps have to finish when the agent is stopped. @default "30" */
  drainTimeout?: string;
  /** Milliseconds between usage samples (and memory checks) of each workload. @default "500" */
  sampleInterval?: string;
  /** `false` with --no-cgroups: watch memory by polling even where cgroup v2 is available. */
  cgroups?: boolean;
  /** Store URL or folder (else ALLOT_STORE, else the pool's). */
  store?: string;
  /** Seconds between checkpoint saves while a step runs. @default "2" */
  checkpointSync?: string;
}

/** Adds `agent` to the program. */
export function registerAgent(program: Command, exit: Exit): void {
  const command = inventoryOptions(
    metricsOptions(
      program
        .command('agent')
        .description('register this machine with a pool and run the steps granted to it')
        .option('--pool <name>', 'pool to join', DEFAULT_POOL)
        .option('--node-id <id>', 'node id (default: host name); the agent polls allot-node-<id>')
        .option('--data-dir <dir>', 'where logs, outputs and checkpoints live', '.allot/agent')
        .option('--env-allow <name>', 'pass this variable of the agent through to workloads (repeatable)', collect),
      "this node's GPUs, steps and usage",
    )
      .option(
        '--drain-timeout <seconds>',
        'on SIGTERM, time running steps have to finish before they are handed back',
        '30',
      )
      .option('--sample-interval <ms>', 'time between usage samples and memory checks of each step', '500')
      .option('--no-cgroups', 'watch memory by polling even where cgroup v2 limits are available')
      .option('--checkpoint-sync <seconds>', 'time between checkpoint saves to the store while a step runs', '2'),
  );
  storeOption(command, "where steps' checkpoints and artifacts live (default: the pool's)").action(
    async (o: AgentCommandOptions) => exit(await agent(o)),
  );
}

function describeInventory(inv: Inventory): string[] {
  const { spec } = inv;
  const lines = [
    `node ${spec.id}: cpu ${formatCpu(spec.cpuMilli)}, memory ${formatMemory(spec.memoryMiB)}, ` +
      `${spec.gpus.length} GPU${spec.gpus.length === 1 ? '' : 's'}` +
      (inv.detected ? ` (detected${inv.detected.length === 0 ? ': none on this machine' : ''})` : ' (declared)') +
      (describeCustom(spec) ? `, ${describeCustom(spec)}` : ''),
  ];
  for (const d of describeDetected(inv.detected ?? [])) lines.push(`  ${d}`);
  if (!inv.detected || inv.detected.some((g) => g.migEnabled)) {
    for (const g of spec.gpus)
      lines.push(`  device ${g.index}: ${g.model}, ${formatMemory(g.memoryMiB)}${g.uuid ? `, ${g.uuid}` : ''}`);
  }
  const labels = Object.entries(spec.labels);
  if (labels.length > 0) lines.push(`  labels: ${labels.map(([k, v]) => `${k}=${v}`).join(', ')}`);
  return lines;
}

/** `allot agent`: registers this machine with a pool and runs the steps granted to it. */
export async function agent(o: AgentCommandOptions): Promise<number> {
  const drainTimeoutMs = parseSeconds(o.drainTimeout ?? '30', '--drain-timeout') ?? 30_000;
  const sampleMs = parseInteger(o.sampleInterval ?? '500', '--sample-interval', 50, 60_000) ?? 500;
  if (o.metricsPort !== undefined) parsePort(o.metricsPort, '--metrics-port');
  const checkpointSyncMs = parseSeconds(o.checkpointSync ?? '2', '--checkpoint-sync') ?? 2000;
  if (checkpointSyncMs < 200 || checkpointSyncMs > 3_600_000)
    throw new UserError(`--checkpoint-sync must be from 0.2 to 3600 seconds, got ${JSON.stringify(o.checkpointSync)}`);
  const storeFlag = storeUrl(o.store);
  const advertise = advertiseAddress(o);
  quietRuntime();
  const nodeId = o.nodeId ?? os.hostname();
  const inventory = await detectInventory(nodeId, inventoryFlags(o));
  for (const line of describeInventory(inventory)) say(line);
  const temporal = await connectTemporal();
  const metrics = await metricsEndpoint(o, '0.0.0.0');
  const running = await startAgent({
    client: temporal.client,
    connection: temporal.connection,
    namespace: temporal.settings.namespace,
    pool: o.pool,
    inventory: inventory.spec,
    visibleIds: inventory.visibleIds,
    dataDir: path.resolve(o.dataDir, nodeId),
    envAllowlist: [...DEFAULT_ENV_ALLOWLIST, ...(o.envAllow ?? [])],
    sampleMs,
    cgroups: o.cgroups !== false,
    ...(storeFlag !== undefined ? { store: openStore(storeFlag) } : {}),
    checkpointSyncMs,
    ...(advertise !== undefined ? { advertiseAddress: advertise } : {}),
    metrics: metrics?.registry,
    notice: (m) => say(m),
  });
  if (metrics) say(`metrics at ${metrics.server.url}`);
  say(`agent ${nodeId} registered with pool ${o.pool} on ${temporal.address}; polling allot-node-${nodeId}`);
  const handBack = (signal: string): void => {
    say(`${signal} again: handing running steps back now`);
    running.handBack();
  };
  return serve(
    async (stop) => {
      const why = await untilStopped(stop, { worker: running.done });
      say(
        `stopping (${why}): draining node ${nodeId}; running steps have ${Math.round(drainTimeoutMs / 1000)}s to finish`,
      );
      await running.drainAndStop(drainTimeoutMs);
      await metrics?.server.close();
      await temporal.close();
    },
    { again: handBack },
  );
}
