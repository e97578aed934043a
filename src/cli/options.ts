/**
 * What the commands share: the exit callback, repeatable options, the inventory flags of
 * `allot dev` and `allot agent`, the `--workflows` modules of `allot dev` and `allot worker`, and
 * the `--store` of all three.
 */
import { isIP } from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Command } from 'commander';
import { storeUrlProblem } from '../store';
import { existingWorkflowPath } from '../workers/bundle-error';
import type { InventoryFlags } from '../workers/inventory';
import { UserError } from './errors';
import { parsePairs } from './parse';

/** Receives the exit code of the command that ran. */
export type Exit = (code: number) => void;

/** Commander's collector of a repeatable option: each use appends its value. */
export const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** Inventory flags as commander gives them. */
export interface InventoryOptions {
  gpus?: string;
  gpuModel?: string;
  gpuMemory?: string;
  cpu?: string;
  memory?: string;
  label?: string[];
  resource?: string[];
  advertiseAddress?: string;
}

/** Adds the flags that declare a node's inventory instead of detecting it. */
export function inventoryOptions(cmd: Command): Command {
  return cmd
    .option('--gpus <n>', 'declare this many GPUs instead of detecting them (like Slurm gres.conf)')
    .option('--gpu-model <model>', 'model of the declared GPUs', undefined)
    .option('--gpu-memory <quantity>', 'memory of each declared GPU, e.g. 80Gi')
    .option('--cpu <quantity>', 'CPU to offer, e.g. 16 or 15500m (default: detected cores)')
    .option('--memory <quantity>', 'memory to offer, e.g. 64Gi (default: detected)')
    .option('--label <key=value>', 'node label (repeatable)', collect)
    .option(
      '--resource <name=n>',
      'custom resource this node offers, e.g. nvme=2 (repeatable, like Slurm gres)',
      collect,
    )
    .option(
      '--advertise-address <host>',
      "where other nodes reach this one: a multi-node step's MASTER_ADDR when its replica 0 runs here (default: the host's primary address)",
    );
}

/** Adds `--metrics-port` and `--metrics-host`; `what` says what the endpoint serves. */
export function metricsOptions(cmd: Command, what: string): Command {
  return cmd
    .option('--metrics-port <port>', `serve Prometheus metrics (${what}) at /metrics`)
    .option('--metrics-host <address>', 'address of the metrics endpoint', '0.0.0.0');
}

/** The inventory flags in the form inventory detection takes. */
export function inventoryFlags(o: InventoryOptions): InventoryFlags {
  return {
    gpus: o.gpus,
    gpuModel: o.gpuModel,
    gpuMemory: o.gpuMemory,
    cpu: o.cpu,
    memory: o.memory,
    labels: parsePairs(o.label, '--label'),
    ...(o.resource ? { resources: o.resource } : {}),
  };
}

/** A DNS host name: labels of letters, digits and inner hyphens, not all digits (that would be an IPv4 address). */
const HOST_NAME =
  /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** `--advertise-address`, checked: a host name or an IP address, without a port. */
export function advertiseAddress(o: InventoryOptions): string | undefined {
  const a = o.advertiseAddress;
  if (a === undefined) return undefined;
  if (isIP(a) === 0 && !(HOST_NAME.test(a) && !/^[\d.]+$/.test(a)))
    throw new UserError(
      `--advertise-address must be a host name or an IP address without a port (it becomes MASTER_ADDR; allot picks MASTER_PORT), got ${JSON.stringify(a)}`,
    );
  return a;
}

/** `--workflows` paths made absolute; each must exist. */
export function workflowModules(list: string[] | undefined): string[] {
  return (list ?? []).map(existingWorkflowPath);
}

/** The modules as paths relative to here, for a progress line: ` (a.ts, b.ts)`, or nothing. */
export function describeModules(modules: readonly string[]): string {
  return modules.length > 0 ? ` (${modules.map((m) => path.relative(process.cwd(), m)).join(', ')})` : '';
}

/** Adds `--store`: where checkpoints and artifacts live. */
export function storeOption(cmd: Command, what: string): Command {
  return cmd.option('--store <url>', `${what}: file:///path, s3://bucket/prefix, or a folder (default: ALLOT_STORE)`);
}

/**
 * The store URL of `--store`, else of `ALLOT_STORE`, else `fallback`: a folder path becomes a
 * `file://` URL; a URL that cannot be used is a user error naming where it came from.
 */
export function storeUrl(flag: string | undefined, fallback?: string): string | undefined {
  const fromEnv = process.env.ALLOT_STORE !== undefined && process.env.ALLOT_STORE !== '';
  const given = flag ?? (fromEnv ? process.env.ALLOT_STORE : undefined);
  if (given === undefined) return fallback;
  const source = flag !== undefined ? '--store' : 'ALLOT_STORE';
  if (given.trim() === '')
    throw new UserError(`${source} is empty: give file:///path, s3://bucket/prefix, or a folder path`);
  const url = /^[a-z][a-z0-9+.-]*:/i.test(given) ? given : pathToFileURL(path.resolve(given)).href;
  const problem = storeUrlProblem(url);
  if (problem) throw new UserError(`${source}: ${problem}`);
  return url;
}
