/**
 * Named limits on a real Temporal server: the pool's `setLimit`, `removeLimit` and `limits`,
 * and steps that ask for a limit's units wait for them and get them when a holder releases.
 */
import { WorkflowFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { limitsQuery, poolWorkflowId, removeLimitUpdate, setLimitUpdate } from '../../src/workflows/messages';
import type { StepInput, StepResult } from '../../src/workflows/step-types';
import type { World } from '../helpers/harness';
import { createWorld, eventually, gpus } from '../helpers/harness';

let world: World;

beforeAll(async () => {
  world = await createWorld('named-limits');
  await world.addAgent({ gpus: gpus(2) });
});
afterAll(async () => world?.close());

const pool = () => world.client.workflow.getHandle(poolWorkflowId(world.pool));

function startStep(name: string, input: Partial<StepInput>) {
  return world.client.workflow.start('allotStep', {
    taskQueue: world.taskQueue,
    workflowId: `${name}-${Date.now()}`,
    args: [{ name, pool: world.pool, command: ['sleep', '2'], resources: { cpu: 1 }, ...input }],
  });
}

/** The message of the innermost cause of a refused Update. */
async function refusal(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  let e = err as { cause?: unknown; message?: string } | undefined;
  while (e?.cause instanceof Error) e = e.cause;
  return String(e?.message);
}

describe('named limits in the pool workflow', () => {
  it('grants the only unit to one step; the second waits as LimitExhausted and runs once the first releases', async () => {
    const set = await pool().executeUpdate(setLimitUpdate, { args: [{ name: 'fs', max: 1 }] });
    expect(set.limits).toEqual([{ name: 'fs', max: 1, inUse: 0, holders: [], waiting: 0 }]);
    const first = await startStep('first', { limits: { fs: 1 } });
    await eventually(async () => ((await world.status()).leases.some((l) => l.label === 'first') ? true : undefined));
    const second = await startStep('second', { limits: { fs: 1 } });
    const waiting = await eventually(async () => {
      const q = (await world.status()).queue.find((r) => r.label === 'second');
      return q?.reason === 'LimitExhausted' ? q : undefined;
    });
    expect(waiting.message).toBe('fs 1 of 1 in use');
    const report = await pool().query(limitsQuery);
    expect(report.limits[0]).toMatchObject({ name: 'fs', max: 1, inUse: 1, waiting: 1 });
    expect(report.limits[0]?.holders.map((h) => h.label)).toEqual(['first']);

    // Removing a limit in use is refused, naming how many hold it.
    expect(await refusal(pool().executeUpdate(removeLimitUpdate, { args: [{ name: 'fs' }] }))).toMatch(
      /^limit fs is in use: 1 step holds 1 of its units \(first\)/,
    );

    const [a, b] = (await Promise.all([first.result(), second.result()])) as StepResult[];
    expect(a?.exitCode).toBe(0);
    expect(b?.exitCode).toBe(0);
    // The second waited at least while the first ran.
    expect(b?.queuedMs ?? 0).toBeGreaterThanOrEqual((a?.runningMs ?? 0) - 500);
    const after = await pool().executeUpdate(removeLimitUpdate, { args: [{ name: 'fs' }] });
    expect(after.limits).toEqual([]);
  });

  it('fails a step that asks for a limit the pool does not have, naming it', async () => {
    const step = await startStep('unknown', { limits: { 'no-such-limit': 1 } });
    const err = await step.result().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect(String((err as WorkflowFailedError).cause?.message)).toMatch(/limit "no-such-limit" does not exist/);
  });

  it('refuses a malformed setLimit with the field, the value and what is allowed', async () => {
    expect(await refusal(pool().executeUpdate(setLimitUpdate, { args: [{ name: 'fs', max: -1 }] }))).toBe(
      'invalid limit:\nmax: must be a whole number from 0 to 1000000, got -1 (number)',
    );
  });
});
