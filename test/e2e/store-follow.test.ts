/**
 * Checkpoints and files that follow a step to any machine, as a user runs it: `allot dev --gpus 0`
 * and two agents with data dirs of their own (one GPU each), the example pipeline exchanging its
 * data and model only as artifacts, and its preemptible training moved to the other agent — by
 * kill -9 of its agent (with the folder store and with a real S3 server), and by preemption.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store';
import { latestCheckpoint } from '../../src/activities/checkpoint-sync';
import { checkpointBlobPrefix } from '../../src/store/layout';
import type { Store } from '../../src/store/types';
import type { StepProgress, StepResult } from '../../src/workflows/step-types';
import type { TrainPipelineResult } from '../../examples/pipeline/workflows';
import type { DevRun } from '../helpers/cli';
import { REPO_ROOT, allot, startAllot, startDev, stopAllot } from '../helpers/cli';
import { eventually } from '../helpers/harness';
import { s3SkipReason, startS3Server } from '../helpers/s3-server';
import type { S3Server } from '../helpers/s3-server';
import { tempDir } from '../helpers/temp';

type Run = Awaited<ReturnType<typeof startAllot>>;

let work: string;
let run: DevRun;
let client: Client;
let s3: S3Server | undefined;
const agents = new Map<string, Run>();
const PYTHON = path.join(REPO_ROOT, '.venv/bin/python');

/** Starts (or starts again) the agent of node `id`, one GPU, its own data dir; `store` its own store. */
async function startGpuAgent(id: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<void> {
  const agent = await startAllot(
    ['agent', '--node-id', id, '--gpus', '1', '--gpu-model', 'A100', '--cpu', '4', '--memory', '8Gi'].concat([
      '--data-dir',
      path.join(work, id),
      '--checkpoint-sync',
      '0.5',
      ...extra,
    ]),
    /registered with pool/,
    { ...run.env, ...env },
  );
  agents.set(id, agent);
}

/** Stops the agent of node `id` unless it is gone already (killed). */
async function stopGpuAgent(id: string): Promise<void> {
  const agent = agents.get(id);
  if (agent && agent.child.exitCode === null && agent.child.signalCode === null) await stopAllot(agent);
}

beforeAll(async () => {
  work = tempDir('store-follow');
  run = await startDev(work, ['--gpus', '0', '--cpu', '4', '--memory', '8Gi']);
  client = new Client({ connection: await Connection.connect({ address: run.env.TEMPORAL_ADDRESS as string }) });
  const policy = await allot(['policy', '--node-not-ready-after', '5', '--node-lost-after', '30'], run.env);
  expect(policy.code, policy.stderr).toBe(0);
  await startGpuAgent('gpu-a');
  await startGpuAgent('gpu-b');
}, 240_000);

// Each test starts with both GPU agents up: a killed one is started again, whatever the test came to.
afterEach(async () => {
  for (const id of ['gpu-a', 'gpu-b']) {
    const agent = agents.get(id);
    if (!agent || agent.child.exitCode !== null || agent.child.signalCode !== null) await startGpuAgent(id);
  }
});

afterAll(async () => {
  for (const id of agents.keys()) await stopGpuAgent(id);
  await client?.connection.close();
  await stopAllot(run?.dev);
  await s3?.stop();
});

/** The epoch of the checkpoint the store holds for a step, 0 when none. */
async function storedEpoch(store: Store, stepId: string): Promise<number> {
  const m = (await latestCheckpoint(store, stepId))?.manifest;
  const file = m?.files.find((f) => f.path === 'checkpoint.npz');
  if (!file) return 0;
  const local = path.join(work, `peek-${Date.now()}.npz`);
  await store.getFile(`${checkpointBlobPrefix(stepId)}${file.sha256}`, local);
  const out = execFileSync(PYTHON, ['-c', `import numpy; print(int(numpy.load("${local}")["epoch"]))`]);
  return Number(out.toString().trim());
}

/** Where a step runs now (its progress), once it runs. */
async function runningOn(stepId: string): Promise<string> {
  return eventually(async () => {
    const p = await client.workflow.getHandle(stepId).query<StepProgress>('progress');
    return p.state === 'running' && p.nodeId ? p.nodeId : undefined;
  }, 90_000);
}

function startPipeline(id: string, input: Record<string, unknown>) {
  return client.workflow.start('trainPipeline', { taskQueue: 'allot', workflowId: id, args: [input] });
}

/** Starts the example pipeline; resolves once its training runs and the store holds epoch `epochs` or later. */
async function trainingStored(store: Store, id: string, epochs: number) {
  const pipeline = await startPipeline(id, { epochs: 10, epochSeconds: 1 });
  const node = await runningOn(`${id}/train`);
  const before = await eventually(async () => {
    const epoch = await storedEpoch(store, `${id}/train`);
    return epoch >= epochs ? epoch : undefined;
  }, 60_000);
  return { pipeline, node, before };
}

/** The pipeline's result, once it has finished; its training ended on another node, resumed from at least `before`. */
async function finishedElsewhere(
  run: Awaited<ReturnType<typeof trainingStored>>,
  id: string,
): Promise<TrainPipelineResult> {
  const result = (await run.pipeline.result()) as TrainPipelineResult;
  const train = (await client.workflow.getHandle(`${id}/train`).result()) as StepResult;
  expect(train.nodeId).not.toBe(run.node);
  expect(Number(result.train.resumedFrom)).toBeGreaterThanOrEqual(run.before);
  expect(Number(result.train.epochs)).toBe(10);
  expect(readFileSync(train.logFile, 'utf8')).toContain('restored checkpoint from');
  return result;
}

function sha256(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

describe('checkpoints and artifacts follow a step to any machine', () => {
  it('kill -9 of the training agent: the step resumes on the other agent from the stored epoch; files move only as artifacts', async () => {
    const store = openStore(`file://${path.join(work, 'dev', 'store')}`);
    const id = `follow-kill-${Date.now()}`;
    const training = await trainingStored(store, id, 3);
    const victim = agents.get(training.node);
    expect(victim, `train runs on ${training.node}`).toBeDefined();
    victim?.child.kill('SIGKILL');
    // Where the checkpoint lives: in allot status (the store, and each running step's checkpoint,
    // which the pool holds until it learns that the node is gone) and in the step's log.
    const status = await allot(['status', '--json'], run.env);
    const json = JSON.parse(status.stdout) as { store: string; leases: { step: string; checkpoint?: string }[] };
    expect(json.store).toBe(store.url);
    expect(json.leases.find((l) => l.step === 'train')?.checkpoint).toBe(`${store.url}/checkpoints/${id}/train/`);
    expect((await allot(['status'], run.env)).stdout).toContain(`store: ${store.url} (checkpoints and artifacts)`);
    const logs = await allot(['logs', `${id}/train`], run.env);
    expect(logs.stdout + logs.stderr).toContain(`checkpoint saved to ${store.url}/checkpoints/${id}/train/`);

    const result = await finishedElsewhere(training, id);
    // The steps exchanged files only through the store: each artifact names its size and sha256.
    expect(Object.keys(result.artifacts).sort()).toEqual(['data', 'model']);
    for (const ref of Object.values(result.artifacts)) {
      expect(ref.uri).toMatch(/^file:\/\/\/.*\/artifacts\//);
      const local = path.join(work, `check-${Date.now()}`);
      const key = store.keyOf(ref.uri) as string;
      const got = await store.getFile(key, local);
      expect(got.size).toBe(ref.size);
      expect(sha256(local)).toBe(ref.sha256);
    }
    expect(typeof result.evaluate.accuracy).toBe('number');
    // The checkpoint is removed after success (the default retention).
    expect(await latestCheckpoint(store, `${id}/train`)).toBeUndefined();
  });

  it('the same with an S3 store: kill -9, and the other agent resumes from what S3 holds', async (ctx) => {
    const skip = s3SkipReason();
    if (skip) return ctx.skip(skip);
    s3 = await startS3Server();
    const url = `s3://${s3.bucket}/allot`;
    // Only the GPU agents hold S3 credentials: the CPU steps run there too while the local node drains.
    const drain = await allot(['drain', 'local'], run.env);
    expect(drain.code, drain.stderr).toBe(0);
    try {
      for (const id of ['gpu-a', 'gpu-b']) {
        await stopGpuAgent(id);
        await startGpuAgent(id, ['--store', url], s3.env);
      }
      const store = openStore(url, { ...process.env, ...s3.env });
      const id = `follow-s3-${Date.now()}`;
      const training = await trainingStored(store, id, 3);
      agents.get(training.node)?.child.kill('SIGKILL');
      const result = await finishedElsewhere(training, id);
      expect(result.artifacts.model?.uri).toMatch(new RegExp(`^s3://${s3.bucket}/allot/artifacts/`));
    } finally {
      for (const id of ['gpu-a', 'gpu-b']) {
        await stopGpuAgent(id);
        await startGpuAgent(id);
      }
      await allot(['drain', 'local', '--undo'], run.env);
    }
  });

  it('preempted by a higher-priority step, training resumes on the other agent from the stored epoch', async () => {
    const store = openStore(`file://${path.join(work, 'dev', 'store')}`);
    // A step that is not preemptible holds one GPU for a while: training gets the other.
    const filler = await allot(['submit', '--gpu', '1', '--name', 'filler', '--no-wait', '--', 'sleep', '25'], run.env);
    expect(filler.code, filler.stderr).toBe(0);
    const id = `follow-preempt-${Date.now()}`;
    const training = await trainingStored(store, id, 2);
    // A more urgent step takes training's GPU: training queues again and gets the filler's when it ends.
    const urgent = await allot(
      ['submit', '--gpu', '1', '--priority', '100', '--name', 'urgent', '--no-wait', '--', 'sleep', '60'],
      run.env,
    );
    expect(urgent.code, urgent.stderr).toBe(0);
    await finishedElsewhere(training, id);
  });
});
