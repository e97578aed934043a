/**
 * What a workload gets, and what it does not: its argv exactly (never a shell), only allowlisted
 * variables of the agent (never its Temporal API key or codec key), and a run only under a lease
 * the pool granted to that very step — a grant forged with the plain `temporal` CLI is refused.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Lease } from '../../src/core';
import { poolWorkflowId, progressQuery, statusQuery } from '../../src/workflows/messages';
import type { StepInput, StepResult } from '../../src/workflows/step-types';
import type { SecureWorld } from './world';
import { createSecureWorld, temporalCli } from './world';
import { tempDir } from '../helpers/temp';

let world: SecureWorld;

beforeAll(async () => {
  world = await createSecureWorld('workload', { gpus: 1 });
});
afterAll(async () => world?.close());

function startStep(input: Omit<StepInput, 'pool'>, id = `wl-${randomUUID().slice(0, 8)}`) {
  return world.client.workflow.start('allotStep', {
    taskQueue: world.taskQueue,
    workflowId: id,
    args: [{ ...input, pool: world.pool }],
  });
}

/** Writes what the workload saw (argv, environment names) as its JSON outputs. */
const REPORT = `require('fs').writeFileSync(process.env.ALLOT_OUTPUT, JSON.stringify({ argv: process.argv.slice(1), env: Object.keys(process.env) }))`;

describe('a workload', () => {
  it('gets its argv exactly as given: no shell expands, splits or runs any of it', async () => {
    const cwd = tempDir('argv');
    const args = ['two words', '$(touch pwned)', '`touch pwned2`', '; touch pwned3', '*', '"quoted"', "it's", '$HOME'];
    const result: StepResult = await (
      await startStep({ name: 'argv', command: [process.execPath, '-e', REPORT, ...args], cwd })
    ).result();
    expect(result.outputs.argv).toEqual(args);
    for (const f of ['pwned', 'pwned2', 'pwned3']) expect(existsSync(path.join(cwd, f))).toBe(false);
  });

  it('sees only allowlisted variables of the agent, never its Temporal API key or codec key', async () => {
    const planted = {
      TEMPORAL_API_KEY: 'agent-api-key',
      ALLOT_CODEC_KEY: 'agent-codec-key',
      AWS_SECRET_ACCESS_KEY: 'agent-aws-secret',
      TEMPORAL_TLS_CLIENT_KEY_DATA: 'agent-tls-key',
    };
    Object.assign(process.env, planted);
    try {
      const result: StepResult = await (
        await startStep({ name: 'env', command: [process.execPath, '-e', REPORT], env: { WANDB_MODE: 'offline' } })
      ).result();
      const names = result.outputs.env as string[];
      for (const name of Object.keys(planted)) expect(names).not.toContain(name);
      expect(names).toEqual(expect.arrayContaining(['PATH', 'WANDB_MODE', 'ALLOT_STEP_ID', 'CUDA_VISIBLE_DEVICES']));
      expect(names.filter((n) => !n.startsWith('ALLOT_'))).not.toContain('ALLOT_CODEC_KEY');
    } finally {
      for (const name of Object.keys(planted)) delete process.env[name];
    }
  });
});

const FENCING = new Set(['StaleLease', 'DeviceConflict']);

/** The fencing refusals (StaleLease, DeviceConflict) in a step's history. */
async function fencingRefusals(client: Client, stepId: string): Promise<string[]> {
  const history = await client.workflow.getHandle(stepId).fetchHistory();
  return (history.events ?? [])
    .map((e) => e.activityTaskFailedEventAttributes?.failure)
    .filter((f) => FENCING.has(f?.applicationFailureInfo?.type ?? f?.cause?.applicationFailureInfo?.type ?? ''))
    .map((f) => f?.message ?? '');
}

async function until<T>(check: () => Promise<T | undefined>, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('a grant forged with the temporal CLI', () => {
  it("is refused by the agent, with an unknown lease or with another step's lease, and never runs", async () => {
    const marks = path.join(tempDir('fence'), 'marks');
    const command = (seconds: number): string[] => [
      'sh',
      '-c',
      `echo "start $ALLOT_STEP_ID $ALLOT_LEASE_ID $(date +%s%N)" >> ${marks}; sleep ${seconds}; echo "end $ALLOT_STEP_ID $ALLOT_LEASE_ID $(date +%s%N)" >> ${marks}`,
    ];
    const holder = await startStep({ name: 'holder', command: command(10), resources: { gpu: 1 } });
    const pool = world.client.workflow.getHandle(poolWorkflowId(world.pool));
    const held: Lease = await until(
      async () => (await pool.query(statusQuery)).leases.find((l) => l.label === 'holder'),
      'the holder to be granted the GPU',
    );
    const waiter = await startStep({ name: 'waiter', command: command(1), resources: { gpu: 1 } });
    const waiting = async (): Promise<string> =>
      until(async () => {
        const p = await waiter.query(progressQuery);
        return p.state === 'queued' && (await pool.query(statusQuery)).queue.some((q) => q.requestId === p.requestId)
          ? p.requestId
          : undefined;
      }, 'the waiter to queue');

    const forge = async (lease: Lease, refusals: number): Promise<void> => {
      const sent = await temporalCli([
        'workflow',
        'signal',
        '--workflow-id',
        waiter.workflowId,
        '--name',
        'grant',
        '--input',
        JSON.stringify(lease),
      ]);
      expect(sent.code, sent.stderr).toBe(0);
      await until(
        async () => ((await fencingRefusals(world.client, waiter.workflowId)).length >= refusals ? true : undefined),
        `refusal ${refusals} of a forged grant`,
      );
    };
    // A lease the pool never granted.
    await forge(
      {
        ...held,
        leaseId: 'forged-1',
        requestId: await waiting(),
        owner: { kind: 'workflow', workflowId: waiter.workflowId },
      },
      1,
    );
    // The holder's own lease, claimed for the waiter: the pool holds it, on this node, but not for the waiter.
    await forge({ ...held, requestId: await waiting() }, 2);

    const [holderResult, waiterResult] = (await Promise.all([holder.result(), waiter.result()])) as StepResult[];
    expect(holderResult?.exitCode).toBe(0);
    expect(waiterResult?.exitCode).toBe(0);
    const lines = readFileSync(marks, 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.split(' '));
    const runs = (step: string) => lines.filter((l) => l[1] === step);
    // The waiter ran once, under a lease of its own, after the holder had ended.
    expect(runs(waiter.workflowId).filter((l) => l[0] === 'start')).toHaveLength(1);
    const waiterStart = runs(waiter.workflowId).find((l) => l[0] === 'start');
    expect(waiterStart?.[2]).not.toBe(held.leaseId);
    expect(waiterStart?.[2]).not.toBe('forged-1');
    const holderEnd = runs(holder.workflowId).find((l) => l[0] === 'end');
    expect(BigInt(waiterStart?.[3] ?? 0)).toBeGreaterThan(BigInt(holderEnd?.[3] ?? Infinity));
    expect(await fencingRefusals(world.client, waiter.workflowId)).toEqual([
      expect.stringContaining('lease forged-1 is not held'),
      expect.stringContaining(`lease ${held.leaseId} is not held by pool ${world.pool} for step ${waiter.workflowId}`),
    ]);
  }, 120_000);
});
