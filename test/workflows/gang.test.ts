/**
 * Attack: gang steps on a real Temporal server with two in-process agents. Checks that a gang's
 * replicas end together (no replica left running), and that the pool frees every copy.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StepInput } from '../../src/workflows/step-types';
import type { World } from '../helpers/harness';
import { createWorld, eventually, gpus } from '../helpers/harness';
import { tempDir } from '../helpers/temp';
import { alive } from '../helpers/processes';

let world: World;

beforeAll(async () => {
  world = await createWorld('gang');
  await world.addAgent({ gpus: gpus(1) });
  await world.addAgent({ gpus: gpus(1) });
}, 60_000);
afterAll(async () => world?.close());

let counter = 0;
function startStep(input: Omit<StepInput, 'pool'>) {
  return world.client.workflow.start('allotStep', {
    taskQueue: world.taskQueue,
    workflowId: `gang-${Date.now()}-${++counter}`,
    args: [{ ...input, pool: world.pool }],
  });
}

async function pidOf(dir: string, rank: number): Promise<number> {
  return eventually(
    () => {
      const f = path.join(dir, `pid-${rank}`);
      return existsSync(f) && readFileSync(f, 'utf8').trim() !== '' ? Number(readFileSync(f, 'utf8')) : undefined;
    },
    30_000,
    `replica ${rank} started`,
  );
}

async function expectAllFree(): Promise<void> {
  await eventually(
    async () => {
      const s = await world.status();
      return s.leases.length === 0 && s.nodes.every((n) => n.gpus.every((g) => g.used === 0)) ? true : undefined;
    },
    30_000,
    'all GPUs free',
  );
}

/** Each replica writes its pid and sleeps; the rank given in FAIL_RANK exits 3 after a moment. */
function command(dir: string): string[] {
  return [
    'sh',
    '-c',
    `echo $$ > "${dir}/pid-$NODE_RANK.tmp"; mv "${dir}/pid-$NODE_RANK.tmp" "${dir}/pid-$NODE_RANK"; ` +
      `if [ "$NODE_RANK" = "$FAIL_RANK" ]; then sleep 2; exit 3; fi; exec sleep 120`,
  ];
}

/** Starts a gang of two one-GPU replicas of `command(dir)` (rank `failRank` exits 3), and waits for both pids. */
async function startGang(name: string, failRank = 'none', extra: Partial<StepInput> = {}) {
  const dir = tempDir(name);
  const handle = await startStep({
    name,
    command: command(dir),
    env: { FAIL_RANK: failRank },
    resources: { gpu: 1 },
    replicas: 2,
    gracePeriodMs: 2_000,
    ...extra,
  });
  const pids = [await pidOf(dir, 0), await pidOf(dir, 1)] as const;
  return { dir, handle, pids };
}

describe('gang steps end as one', () => {
  it('a failing replica stops the other and the pool frees both copies', async () => {
    const {
      handle,
      pids: [p0, p1],
    } = await startGang('gang-fail', '1');
    const err = await handle.result().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect(alive(p0)).toBe(false);
    expect(alive(p1)).toBe(false);
    await expectAllFree();
  }, 90_000);

  it('a cancelled gang stops both replicas and frees both copies', async () => {
    const {
      handle,
      pids: [p0, p1],
    } = await startGang('gang-cancel');
    await handle.cancel();
    await handle.result().catch(() => undefined);
    expect(alive(p0)).toBe(false);
    expect(alive(p1)).toBe(false);
    await expectAllFree();
  }, 90_000);

  it('one replica killed from outside (SIGKILL) ends the gang: the other stops and both copies are freed', async () => {
    const {
      handle,
      pids: [p0, p1],
    } = await startGang('gang-kill');
    process.kill(p1, 'SIGKILL');
    const err = await handle.result().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect(alive(p0)).toBe(false);
    await expectAllFree();
  }, 90_000);

  it('a preempted gang stops both replicas before its preemptor runs on their GPUs, and queues again', async () => {
    const {
      dir,
      handle: gang,
      pids: [p0, p1],
    } = await startGang('gang-victim', 'none', { priority: -10, preemptible: true });
    const preemptor = await startStep({
      name: 'gang-preemptor',
      command: ['sh', '-c', `for p in ${p0} ${p1}; do kill -0 $p 2>/dev/null && echo OVERLAP $p; done; echo ran`],
      resources: { gpu: 1 },
      priority: 100,
    });
    const result = await preemptor.result();
    expect(result.logTail).toContain('ran');
    expect(result.logTail.join('\n')).not.toContain('OVERLAP');
    // The gang queued again as attempt 2 (it does not fail): it runs again once the GPU is back.
    await eventually(
      () =>
        existsSync(path.join(dir, 'pid-0')) && Number(readFileSync(path.join(dir, 'pid-0'), 'utf8')) !== p0
          ? true
          : undefined,
      60_000,
      'the gang running again',
    );
    await gang.cancel();
    await gang.result().catch(() => undefined);
    await expectAllFree();
  }, 120_000);
});
