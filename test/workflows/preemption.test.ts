/**
 * Preemption with resume, and reclaim of borrowed quota, with the example trainer as workload.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stepFolderName } from '../../src/activities/launch';
import { poolWorkflowId, setPolicyUpdate, setQuotaUpdate } from '../../src/workflows/messages';
import type { StepInput, StepResult } from '../../src/workflows/step-types';
import type { World } from '../helpers/harness';
import { createWorld, eventually, gpus } from '../helpers/harness';

const ROOT = path.resolve(__dirname, '../..');
const PYTHON = path.join(ROOT, '.venv/bin/python');
const SCRIPTS = path.join(ROOT, 'examples/pipeline');

let world: World;
let data: string;

beforeAll(async () => {
  if (!existsSync(PYTHON)) throw new Error('run `npm run setup` first: the example trainer needs .venv with numpy');
  world = await createWorld('preempt');
  data = path.join(world.dataDir, 'data.npz');
  execFileSync(PYTHON, [path.join(SCRIPTS, 'prepare.py'), '--out', data, '--samples', '500']);
  await world.client.workflow
    .getHandle(poolWorkflowId(world.pool))
    .executeUpdate(setPolicyUpdate, { args: [{ gracePeriodMs: 2_000 }] });
  await world.addAgent({ gpus: gpus(4) });
});
afterAll(async () => world?.close());

let n = 0;
function trainer(name: string, extra: Partial<StepInput>, epochs = 6): StepInput {
  return {
    name,
    pool: world.pool,
    command: [
      PYTHON,
      path.join(SCRIPTS, 'train.py'),
      '--data',
      data,
      '--model',
      path.join(world.dataDir, `${name}.npz`),
      '--epochs',
      String(epochs),
      '--epoch-seconds',
      '1',
    ],
    gracePeriodMs: 2_000,
    ...extra,
  };
}

function start(input: StepInput) {
  return world.client.workflow.start('allotStep', {
    taskQueue: world.taskQueue,
    workflowId: `${input.name}-${Date.now()}-${++n}`,
    args: [input],
  });
}

/** Whether a step's trainer has written its checkpoint, on any node of this world. */
function hasCheckpoint(workflowId: string): boolean {
  return readdirSync(world.dataDir).some((node) =>
    existsSync(path.join(world.dataDir, node, 'checkpoints', stepFolderName(workflowId), 'checkpoint.npz')),
  );
}

async function runningCount(): Promise<number> {
  return (await world.status()).leases.length;
}

describe('preemption', () => {
  it('evicts low-priority preemptible trainers for a high-priority step, which then resume from their checkpoints', async () => {
    const victims = await Promise.all(
      [0, 1, 2, 3].map((i) => start(trainer(`low${i}`, { resources: { gpu: 1 }, priority: -10, preemptible: true }))),
    );
    await eventually(async () => ((await runningCount()) === 4 ? true : undefined), 20_000, 'four trainers running');
    await new Promise((r) => setTimeout(r, 2_500)); // let them checkpoint an epoch or two
    const submitted = Date.now();
    const urgent = await start({
      name: 'urgent',
      pool: world.pool,
      command: ['sh', '-c', 'echo started; sleep 1'],
      resources: { gpu: 2 },
      priority: 100,
    });
    const result: StepResult = await urgent.result();
    const startDelay = result.queuedMs;
    // The acceptance figure is grace + 5 s; the margin here absorbs a loaded CI machine.
    expect(startDelay).toBeLessThan(2_000 + 15_000);
    expect(Date.now() - submitted).toBeLessThan(2_000 + 15_000 + 3_000);
    const results: StepResult[] = await Promise.all(victims.map((v) => v.result()));
    const resumed = results.filter((r) => Number(r.outputs.resumedFrom) > 0);
    expect(resumed.length).toBeGreaterThanOrEqual(2);
    for (const r of results) expect(r.outputs.epochs).toBe(6);
    const histories = await Promise.all(victims.map((v) => v.fetchHistory()));
    const preemptedStates = histories.filter((h) =>
      (h.events ?? []).some((e) =>
        JSON.stringify(e.upsertWorkflowSearchAttributesEventAttributes ?? {}).includes(
          Buffer.from('"preempted"').toString('base64'),
        ),
      ),
    );
    expect(preemptedStates.length).toBe(resumed.length);
  }, 120_000);

  it('reclaims for a team within its quota the GPUs another team borrowed', async () => {
    const pool = world.client.workflow.getHandle(poolWorkflowId(world.pool));
    await pool.executeUpdate(setQuotaUpdate, { args: [{ team: 'a', quota: { gpu: 2 } }] });
    await pool.executeUpdate(setQuotaUpdate, { args: [{ team: 'b', quota: { gpu: 2 } }] });
    const borrowers = await Promise.all(
      [0, 1, 2, 3].map((i) => start(trainer(`a${i}`, { resources: { gpu: 1 }, team: 'a', preemptible: true }, 8))),
    );
    await eventually(
      async () => ((await runningCount()) === 4 ? true : undefined),
      20_000,
      'team a using all four GPUs',
    );
    // Resuming needs a checkpoint: wait until every borrower has written one (the leases exist
    // before the trainers have loaded numpy; a victim killed before that has none). Eight epochs
    // of a second each keep them all running meanwhile.
    await eventually(
      () => (borrowers.every((h) => hasCheckpoint(h.workflowId)) ? true : undefined),
      60_000,
      'every borrower to checkpoint an epoch',
    );
    const b = await start({
      name: 'b-job',
      pool: world.pool,
      team: 'b',
      command: ['sleep', '1'],
      resources: { gpu: 2 },
    });
    const result: StepResult = await b.result();
    expect(result.queuedMs).toBeLessThan(2_000 + 15_000);
    const results: StepResult[] = await Promise.all(borrowers.map((h) => h.result()));
    // Exactly the two it needed: the evicted borrowers wait while b-job holds its quota.
    expect(results.filter((r) => Number(r.outputs.resumedFrom) > 0).length).toBe(2);
    expect((await world.status()).leases).toEqual([]);
  }, 120_000);

  it('rejects a step of a team the pool does not know, once quotas are set', async () => {
    const typo = await start({
      name: 'typo',
      pool: world.pool,
      team: 'visoin',
      command: ['true'],
      resources: { gpu: 1 },
    });
    const err = await typo.result().catch((e: unknown) => e);
    expect(String((err as { cause?: { message?: string } }).cause?.message)).toMatch(
      /team "visoin" is not known.*known teams: a, b/,
    );
  });
});
