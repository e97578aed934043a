/**
 * Records workflow histories as replay fixtures. Skipped unless ALLOT_RECORD_HISTORIES=1:
 *
 *   ALLOT_RECORD_HISTORIES=1 npx vitest run test/workflows/record-histories.test.ts
 *
 * Each fixture is named after the behaviour it pins. A fixture that pins the old branch of a live
 * patch (src/workflows/versions.ts) is never overwritten: it is what keeps that branch honest.
 * Machine paths (the agents' data folder, this checkout) are replaced by neutral ones.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, inject, it } from 'vitest';
import { findTemporalCli } from '../../src/workers/temporal-cli';
import {
  drainUpdate,
  poolWorkflowId,
  releaseSignal,
  setLimitUpdate,
  setPolicyUpdate,
  setQuotaUpdate,
} from '../../src/workflows/messages';
import { LIVE_PATCHES } from '../../src/workflows/versions';
import type { StepInput } from '../../src/workflows/step-types';
import type { World } from '../helpers/harness';
import { createWorld, eventually, gpus } from '../helpers/harness';

const RECORD = process.env.ALLOT_RECORD_HISTORIES === '1';
const FIXTURES = path.resolve(__dirname, '../fixtures/histories');

let world: World;
beforeAll(async () => {
  if (!RECORD) return;
  world = await createWorld('record');
  await world.addAgent();
});
afterAll(async () => world?.close());

const manifestFile = path.join(FIXTURES, 'manifest.json');
const manifest: Record<string, string> = existsSync(manifestFile)
  ? (JSON.parse(readFileSync(manifestFile, 'utf8')) as Record<string, string>)
  : {};

/** Where recorded paths of this machine go: the agents' data folder, and this checkout (and its modules). */
function neutralPaths(): [RegExp, string][] {
  const repo = path.resolve(__dirname, '../..');
  const modulesRoot = path.dirname(realpathSync(path.join(repo, 'node_modules')));
  const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return [
    [new RegExp(`${escape(world.dataDir)}/[^/"\\\\]+`, 'g'), '/var/lib/allot/agent'],
    [new RegExp(escape(repo), 'g'), '/opt/allot'],
    [new RegExp(escape(modulesRoot), 'g'), '/opt/allot'],
  ];
}

/** Replaces machine paths in a history: in plain strings (stack traces) and in JSON payloads. */
function scrub(value: unknown, rules: [RegExp, string][]): unknown {
  const clean = (text: string): string => rules.reduce((t, [from, to]) => t.replace(from, to), text);
  if (typeof value === 'string') return clean(value);
  if (Array.isArray(value)) return value.map((v) => scrub(v, rules));
  if (typeof value !== 'object' || value === null) return value;
  const payload = value as { metadata?: { encoding?: string }; data?: string };
  const encoding = payload.metadata?.encoding && Buffer.from(payload.metadata.encoding, 'base64').toString('utf8');
  if (encoding === 'json/plain' && typeof payload.data === 'string') {
    const data = clean(Buffer.from(payload.data, 'base64').toString('utf8'));
    return { ...payload, data: Buffer.from(data, 'utf8').toString('base64') };
  }
  return Object.fromEntries(Object.entries(value).map(([key, v]) => [key, scrub(v, rules)]));
}

/** Saves a history (of its latest run, or of `runId`) as the Temporal CLI prints it (`temporal workflow show -o json`). */
async function save(name: string, workflowId: string, runId?: string): Promise<void> {
  const file = `${name}.json`;
  if (LIVE_PATCHES.some((p) => p.fixture === file)) {
    console.warn(`not recording ${file}: it pins the old branch of a live patch (see src/workflows/versions.ts)`);
    return;
  }
  manifest[file] = workflowId;
  const cli = findTemporalCli().path ?? 'temporal';
  const args = ['workflow', 'show', '-w', workflowId, ...(runId ? ['-r', runId] : [])];
  const json = execFileSync(cli, [...args, '--address', inject('temporalAddress'), '-o', 'json'], {
    maxBuffer: 64 * 1024 * 1024,
  });
  const rules = neutralPaths().map(([from, to]) => [new RegExp(from, 'g'), to] as [RegExp, string]);
  writeFileSync(
    path.join(FIXTURES, file),
    JSON.stringify(scrub(JSON.parse(json.toString('utf8')), rules), null, 2) + '\n',
  );
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
    await save('step-failed-exit-code', failed.workflowId);
    const rejected = await start('rec-step-rejected', { name: 'big', command: ['true'], resources: { gpu: 64 } });
    await rejected.result().catch(() => undefined);
    await save('step-rejected-unschedulable', rejected.workflowId);
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
    await save('step-preempted-requeued', victim.workflowId);
    await save('step-preemptor', preemptor.workflowId);

    // A fresh control worker replays the pool, and carries its state into a new run.
    const pool = world.client.workflow.getHandle(poolWorkflowId(world.pool));
    const firstRun = (await pool.describe()).runId;
    await world.restartControl();
    await pool.signal(releaseSignal, { requestId: 'nothing-held' });
    await eventually(async () => ((await pool.describe()).runId !== firstRun ? true : undefined), 30_000);
    await save('pool-grants-preempts-and-compacts', pool.workflowId, firstRun);
    writeFileSync(path.join(FIXTURES, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  });

  it('records gang steps: one that succeeds, and one whose replica fails', async () => {
    const gangs = await createWorld('recgang');
    try {
      await gangs.addAgent({ gpus: gpus(1) });
      await gangs.addAgent({ gpus: gpus(1) });
      const start = (id: string, command: string[]) =>
        gangs.client.workflow.start('allotStep', {
          taskQueue: gangs.taskQueue,
          workflowId: id,
          args: [{ name: id, pool: gangs.pool, command, resources: { gpu: 1 }, replicas: 2, gracePeriodMs: 500 }],
        });
      const ok = await start('rec-gang-ok', ['sh', '-c', 'echo "{\\"rank\\": $RANK}" > "$ALLOT_OUTPUT"']);
      await ok.result();
      await save('step-gang-succeeded', ok.workflowId);
      const failed = await start('rec-gang-replica-fails', [
        'sh',
        '-c',
        'if [ "$NODE_RANK" = 1 ]; then sleep 1; exit 3; fi; exec sleep 60',
      ]);
      await failed.result().catch(() => undefined);
      await save('step-gang-replica-fails', failed.workflowId);
      writeFileSync(path.join(FIXTURES, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
    } finally {
      await gangs.close();
    }
  });

  it('records a fair-share pool granting several GPUs to steps at once', async () => {
    // Team a's four steps hold every GPU; the node is drained while they end, with three steps of
    // team a queued before three of team b, and undrained: one cycle grants four GPUs. Recorded on
    // the release before progressive filling (a5, a6, a7, b1), it pins that branch of the patch:
    // strict-replay.test.ts checks that every grant goes to the same step on replay.
    const fair = await createWorld('fairsteps');
    try {
      const { nodeId } = await fair.addAgent();
      const pool = fair.client.workflow.getHandle(poolWorkflowId(fair.pool));
      await pool.executeUpdate(setPolicyUpdate, { args: [{ fairShare: true }] });
      const step = (id: string, team: string, seconds: number) =>
        fair.client.workflow.start('allotStep', {
          taskQueue: fair.taskQueue,
          workflowId: `rec-fair-${id}`,
          args: [{ name: id, pool: fair.pool, team, command: ['sleep', String(seconds)], resources: { gpu: 1 } }],
        });
      const queued = (n: number) => async () => ((await fair.status()).queue.length === n ? true : undefined);
      const steps = [];
      for (const id of ['a1', 'a2', 'a3', 'a4']) steps.push(await step(id, 'a', 2));
      await eventually(async () => ((await fair.status()).leases.length === 4 ? true : undefined), 30_000);
      await pool.executeUpdate(drainUpdate, { args: [{ nodeId, drain: true }] });
      for (const id of ['a5', 'a6', 'a7']) steps.push(await step(id, 'a', 0.2));
      await eventually(queued(3), 30_000);
      for (const id of ['b1', 'b2', 'b3']) steps.push(await step(id, 'b', 0.2));
      await eventually(queued(6), 30_000);
      await eventually(async () => ((await fair.status()).leases.length === 0 ? true : undefined), 60_000);
      await pool.executeUpdate(drainUpdate, { args: [{ nodeId, drain: false }] });
      for (const s of steps) await s.result();
      await save('pool-fair-share-before-progressive', pool.workflowId);
      writeFileSync(path.join(FIXTURES, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
    } finally {
      await fair.close();
    }
  });

  it('records a pool with named limits, custom resources and team weights under fair share', async () => {
    // A limit of one unit and a node with two licenses: steps wait for each (LimitExhausted,
    // Resources short of lic), and fair share orders teams of unequal weight.
    const rules = await createWorld('rules');
    try {
      await rules.addAgent({ custom: { lic: 2 } });
      const pool = rules.client.workflow.getHandle(poolWorkflowId(rules.pool));
      await pool.executeUpdate(setPolicyUpdate, { args: [{ fairShare: true }] });
      await pool.executeUpdate(setQuotaUpdate, { args: [{ team: 'b', weight: 2 }] });
      await pool.executeUpdate(setLimitUpdate, { args: [{ name: 'fs', max: 1 }] });
      const step = (id: string, input: Partial<StepInput>) =>
        rules.client.workflow.start('allotStep', {
          taskQueue: rules.taskQueue,
          workflowId: `rec-rules-${id}`,
          args: [{ name: id, pool: rules.pool, command: ['sleep', '1'], ...input }],
        });
      const steps = [
        await step('fs1', { team: 'a', limits: { fs: 1 }, resources: { gpu: 1 } }),
        await step('fs2', { team: 'b', limits: { fs: 1 }, resources: { gpu: 1 } }),
        await step('lic2', { team: 'a', resources: { gpu: 1, custom: { lic: 2 } } }),
        await step('lic1', { team: 'b', resources: { gpu: 1, custom: { lic: 1 } } }),
      ];
      for (const s of steps) await s.result();
      await save('pool-limits-custom-weights', pool.workflowId);
      writeFileSync(path.join(FIXTURES, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
    } finally {
      await rules.close();
    }
  });
});
