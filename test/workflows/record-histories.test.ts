/**
 * Records workflow histories as replay fixtures. Skipped unless ALLOT_RECORD_HISTORIES=1:
 *
 *   ALLOT_RECORD_HISTORIES=1 npx vitest run test/workflows/record-histories.test.ts
 *
 * Record again only when a workflow change is meant to be incompatible (and then version it).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, inject, it } from 'vitest';
import { findTemporalCli } from '../../src/workers/temporal-cli';
import { poolWorkflowId, setPolicyUpdate } from '../../src/workflows/messages';
import type { StepInput } from '../../src/workflows/step-types';
import type { World } from '../helpers/harness';
import { createWorld, eventually } from '../helpers/harness';

const RECORD = process.env.ALLOT_RECORD_HISTORIES === '1';
const FIXTURES = path.resolve(__dirname, '../fixtures/histories');

let world: World;
beforeAll(async () => {
  if (!RECORD) return;
  world = await createWorld('record');
  await world.addAgent();
});
afterAll(async () => world?.close());

/** Recordings of later workflow versions sit beside older ones under a prefix (e.g. `v2-`). */
const PREFIX = process.env.ALLOT_RECORD_PREFIX ?? '';
const manifestFile = path.join(FIXTURES, 'manifest.json');
const manifest: Record<string, string> = existsSync(manifestFile)
  ? (JSON.parse(readFileSync(manifestFile, 'utf8')) as Record<string, string>)
  : {};

/** Saves a history as the Temporal CLI prints it (`temporal workflow show -o json`). */
async function save(name: string, workflowId: string): Promise<void> {
  name = `${PREFIX}${name}`;
  manifest[`${name}.json`] = workflowId;
  const cli = findTemporalCli().path ?? 'temporal';
  const json = execFileSync(
    cli,
    ['workflow', 'show', '-w', workflowId, '--address', inject('temporalAddress'), '-o', 'json'],
    {
      maxBuffer: 64 * 1024 * 1024,
    },
  );
  writeFileSync(path.join(FIXTURES, `${name}.json`), json);
}

describe.skipIf(!RECORD)('record replay fixtures', () => {
  it('records step, pipeline and pool histories', async () => {
    const start = (id: string, input: Omit<StepInput, 'pool'>) =>
      world.client.workflow.start('allotStep', {
        taskQueue: world.taskQueue,
        workflowId: id,
        args: [{ ...input, pool: world.pool }],
      });
    const ok = await start('rec-step-ok', {
      name: 'ok',
      command: ['sh', '-c', 'echo "{\\"x\\": 1}" > "$ALLOT_OUTPUT"'],
      resources: { gpu: 2 },
    });
    await ok.result();
    await save('step-succeeded', ok.workflowId);
    const failed = await start('rec-step-exit3', {
      name: 'exit3',
      command: ['sh', '-c', 'exit 3'],
      resources: { gpu: 1 },
    });
    await failed.result().catch(() => undefined);
    await save('step-failed', failed.workflowId);
    const rejected = await start('rec-step-rejected', { name: 'big', command: ['true'], resources: { gpu: 64 } });
    await rejected.result().catch(() => undefined);
    await save('step-rejected', rejected.workflowId);
    const cancelled = await start('rec-step-cancelled', {
      name: 'sleep',
      command: ['sleep', '30'],
      resources: { gpu: 1 },
      gracePeriodMs: 500,
    });
    await eventually(async () => ((await world.status()).leases.length > 0 ? true : undefined));
    await cancelled.cancel();
    await cancelled.result().catch(() => undefined);
    await save('step-cancelled', cancelled.workflowId);
    await world.client.workflow.execute('parallelSteps', {
      taskQueue: world.taskQueue,
      workflowId: 'rec-pipeline',
      args: [
        [1, 2, 3].map((i) => ({ name: `p${i}`, pool: world.pool, command: ['sleep', '0.2'], resources: { gpu: 2 } })),
      ],
    });
    await save('pipeline-parallel', 'rec-pipeline');
    await world.client.workflow
      .getHandle(poolWorkflowId(world.pool))
      .executeUpdate(setPolicyUpdate, { args: [{ gracePeriodMs: 1_000 }] });
    const victim = await start('rec-step-preempted', {
      name: 'victim',
      command: ['sleep', '3'],
      resources: { gpu: 4 },
      priority: -5,
      preemptible: true,
      gracePeriodMs: 500,
    });
    await eventually(async () => ((await world.status()).leases.length > 0 ? true : undefined));
    const preemptor = await start('rec-step-preemptor', {
      name: 'urgent',
      command: ['sleep', '0.5'],
      resources: { gpu: 2 },
      priority: 50,
    });
    await preemptor.result();
    await victim.result();
    await save('step-preempted', victim.workflowId);
    await save('step-preemptor', preemptor.workflowId);
    await save('pool', poolWorkflowId(world.pool));
    writeFileSync(path.join(FIXTURES, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  });
});
