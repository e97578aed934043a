/**
 * What the administrator's commands (`quota`, `template`, `policy`) share: they go through the
 * pool's Updates, whose validators reject bad input before it touches the pool's state.
 */
import type { ResourceVector } from '../core';
import { formatCpu, formatGpu, formatMemory } from '../core';
import { poolWorkflowId } from '../workflows/messages';
import { cliClient } from './context';
import { rootMessage, UserError } from './errors';
import { parsePairs } from './parse';

/** Formats a resource vector for people: `gpu 8, cpu 64, memory 512Gi`. */
export function formatVector(v: ResourceVector | undefined): string {
  if (!v || Object.keys(v).length === 0) return '-';
  return Object.entries(v)
    .map(([k, n]) => {
      if (k === 'gpu') return `gpu ${formatGpu(n)}`;
      if (k === 'cpu') return `cpu ${formatCpu(n)}`;
      if (k === 'memory') return `memory ${formatMemory(n)}`;
      return `${k} ${n}`;
    })
    .join(', ');
}

/** A handle on a pool's workflow. */
export type PoolHandle = ReturnType<Awaited<ReturnType<typeof cliClient>>['client']['workflow']['getHandle']>;

/** Runs `action` on the pool's workflow; a refusal becomes the user's error it is. */
export async function withPool<T>(pool: string, action: (handle: PoolHandle) => Promise<T>): Promise<T> {
  const { client, close } = await cliClient();
  try {
    return await action(client.workflow.getHandle(poolWorkflowId(pool)));
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError(rootMessage(err), 1);
  } finally {
    await close();
  }
}

/** A resource vector from `--gpu`, `--cpu`, `--memory` and `--custom` (flags named with `prefix`). */
export function vectorFrom(
  o: { gpu?: string; cpu?: string; memory?: string; custom?: string[] },
  prefix: string,
): Record<string, number | string> | undefined {
  const v: Record<string, number | string> = {};
  if (o.gpu !== undefined) v.gpu = /^\d+(\.\d+)?$/.test(o.gpu) ? Number(o.gpu) : o.gpu;
  if (o.cpu !== undefined) v.cpu = o.cpu;
  if (o.memory !== undefined) v.memory = o.memory;
  for (const [k, n] of Object.entries(parsePairs(o.custom, `${prefix}custom`))) v[k] = /^\d+$/.test(n) ? Number(n) : n;
  return Object.keys(v).length > 0 ? v : undefined;
}

/** `on`/`off` (or true/false, yes/no) of a flag. */
export function onOff(value: string | undefined, flag: string): boolean | undefined {
  if (value === undefined) return undefined;
  if (['on', 'true', 'yes'].includes(value)) return true;
  if (['off', 'false', 'no'].includes(value)) return false;
  throw new UserError(`${flag} must be on or off, got ${JSON.stringify(value)}`);
}
