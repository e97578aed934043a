/**
 * Pipelines as a user runs them: `allot dev --workflows ...`, then `allot run`, `allot cancel`,
 * `allot status` and `allot schedule` as separate processes against it.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allot, freePort, startAllot } from '../helpers/cli';
import { eventually } from '../helpers/harness';
import { maxConcurrent } from '../helpers/intervals';
import { tempDir } from '../helpers/temp';

let dev: { child: ChildProcess; output: () => string };
let env: NodeJS.ProcessEnv;
let client: Client;

interface StatusJson {
  nodes: { gpus: { used: number }[]; cpu: { used: number } }[];
  leases: unknown[];
  queue: unknown[];
}

beforeAll(async () => {
  const work = tempDir('pipelines');
  const [port, uiPort] = [await freePort(), await freePort()];
  env = { TEMPORAL_ADDRESS: `127.0.0.1:${port}` };
  dev = await startAllot(
    [
      'dev',
      ...['--gpus', '4', '--gpu-model', 'A100', '--cpu', '16', '--memory', '64Gi', '--node-id', 'local'],
      ...['--data-dir', path.join(work, 'dev'), '--port', String(port), '--ui-port', String(uiPort)],
      ...['--workflows', 'examples/pipeline/workflows.ts', '--workflows', 'test/pipelines/fixtures/pipelines.ts'],
    ],
    /allot dev is up/,
  );
  client = new Client({ connection: await Connection.connect({ address: `127.0.0.1:${port}` }) });
});

afterAll(async () => {
  await client?.connection.close();
  if (!dev) return;
  const exited = new Promise((r) => dev.child.once('exit', r));
  dev.child.kill('SIGTERM');
  await exited;
});

async function status(): Promise<StatusJson> {
  const r = await allot(['status', '--json'], env);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as StatusJson;
}

/** Waits until the pool holds nothing: no lease, no queued request, every GPU and all CPU free. */
async function expectNothingHeld(): Promise<void> {
  await eventually(
    async () => {
      const s = await status();
      const free =
        s.leases.length === 0 &&
        s.queue.length === 0 &&
        s.nodes.every((n) => n.cpu.used === 0 && n.gpus.every((g) => g.used === 0));
      return free ? true : undefined;
    },
    30_000,
    'the pool to hold nothing',
  );
}

const unique = (name: string): string => `${name}-${Date.now()}-${Math.floor(Math.random() * 1e4)}`;

describe('allot run', () => {
  it('runs the example pipeline, prints each step as it progresses, and exits 0', async () => {
    const id = unique('example');
    const r = await allot(['run', 'trainPipeline', '--input', '{"epochs": 2, "epochSeconds": 0.2}', '--id', id], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`started trainPipeline ${id}`);
    for (const name of ['prepare', 'train', 'evaluate']) {
      expect(r.stderr).toMatch(new RegExp(`${name}: running on local`));
      expect(r.stderr).toMatch(new RegExp(`${name}: succeeded in \\d`));
    }
    expect(r.stderr).toMatch(/train: running on local, GPUs \d/);
    expect(r.stderr).toContain(`trainPipeline ${id}: succeeded`);
    const out = JSON.parse(r.stdout) as { evaluate: { accuracy: number } };
    expect(out.evaluate.accuracy).toBeGreaterThan(0.8);
  });

  it('lists the artifacts the steps exchanged in its result, each with its size and sha256, and in the details', async () => {
    const id = unique('artifacts');
    const r = await allot(['run', 'trainPipeline', '--input', '{"epochs": 1, "epochSeconds": 0.1}', '--id', id], env);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { artifacts: Record<string, { uri: string; size: number; sha256: string }> };
    expect(Object.keys(out.artifacts).sort()).toEqual(['data', 'model']);
    for (const [name, ref] of Object.entries(out.artifacts)) {
      expect(ref.uri).toMatch(new RegExp(`^file:///.*/store/artifacts/${id}/(prepare|train)/1/${name}/`));
      expect(ref.size).toBeGreaterThan(0);
      expect(ref.sha256).toMatch(/^[0-9a-f]{64}$/);
    }
    const meta = await client.workflow.getHandle(id).query<{ currentDetails?: string }>('__temporal_workflow_metadata');
    expect(meta.currentDetails).toContain(`- train.model: \`${out.artifacts.model?.uri}\``);
  });

  it('fails a step whose input does not match its sha256 before its workload starts, naming the input', async () => {
    const id = unique('tampered');
    const marker = path.join(tempDir('tampered'), 'ran');
    const r = await allot(['run', 'tamperedInputPipeline', '--input', JSON.stringify({ marker }), '--id', id], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/use: failed/);
    expect(r.stderr).toContain('input model (file:///');
    expect(r.stderr).toContain(`has changed since it was made: its sha256 is`);
    expect(r.stderr).toContain(`the step was given ${'0'.repeat(64)}`);
    expect(existsSync(marker)).toBe(false);
    await expectNothingHeld();
  });

  it('keeps a table of the steps in the pipeline’s current details, for the Temporal UI', async () => {
    const id = unique('details');
    const r = await allot(['run', 'trainPipeline', '--input', '{"epochs": 1, "epochSeconds": 0.1}', '--id', id], env);
    expect(r.code, r.stderr).toBe(0);
    const meta = await client.workflow.getHandle(id).query<{ currentDetails?: string }>('__temporal_workflow_metadata');
    const details = meta.currentDetails ?? '';
    const rows = details
      .split('\n')
      .filter((l) => l.startsWith('| ') && !l.startsWith('| ---'))
      .map((l) =>
        l
          .split('|')
          .slice(1, -1)
          .map((c) => c.replace(/\u00a0/g, '').trim()),
      );
    expect(details).toContain('3 steps: 3 succeeded');
    expect(rows[0]).toEqual(['step', 'state', 'node', 'GPUs', 'queued', 'ran', 'resources']);
    expect(rows.slice(1).map((r) => r.slice(0, 3))).toEqual([
      ['prepare', 'succeeded', 'local'],
      ['train', 'succeeded', 'local'],
      ['evaluate', 'succeeded', 'local'],
    ]);
    expect(rows[2]?.[3]).toMatch(/^\d$/);
    expect(rows[2]?.[6]).toBe('gpu 1, cpu 1, memory 1Gi');
  });

  it('prints a machine-readable result with --json', async () => {
    const id = unique('json');
    const r = await allot(
      ['run', 'trainPipeline', '--input', '{"epochs": 1, "epochSeconds": 0.1}', '--id', id, '--json'],
      env,
    );
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as {
      workflowId: string;
      status: string;
      steps: { name: string; state: string }[];
    };
    expect(out).toMatchObject({ workflowId: id, status: 'succeeded' });
    expect(out.steps.map((s) => [s.name, s.state])).toEqual([
      ['prepare', 'succeeded'],
      ['train', 'succeeded'],
      ['evaluate', 'succeeded'],
    ]);
  });

  it('exits non-zero on a failing step, naming the step and showing its log tail', async () => {
    const id = unique('failing');
    const r = await allot(['run', 'failingPipeline', '--id', id], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`failingPipeline ${id}: failed at step crunch`);
    expect(r.stderr).toContain('exited with code 3');
    expect(r.stderr).toMatch(/--- last lines of crunch's log/);
    expect(r.stderr).toContain('ValueError: shard 2 has shape (3, 7), expected (3, 8)');
    expect(r.stderr).not.toMatch(/\n\s+at /);
    const json = await allot(['run', 'failingPipeline', '--id', `${id}-json`, '--json'], env);
    expect(JSON.parse(json.stdout)).toMatchObject({ status: 'failed', step: 'crunch', exitCode: 3 });
    await expectNothingHeld();
  });

  it('attaches to a running pipeline with the same --id instead of starting a second one', async () => {
    const id = unique('attach');
    const first = allot(['run', 'slowPipeline', '--input', '{"seconds": 4}', '--id', id], env);
    await eventually(async () =>
      (await client.workflow.getHandle(id).describe()).status.name === 'RUNNING' ? true : undefined,
    );
    const second = await allot(['run', 'slowPipeline', '--input', '{"seconds": 4}', '--id', id], env);
    const firstDone = await first;
    expect(firstDone.code, firstDone.stderr).toBe(0);
    expect(second.code, second.stderr).toBe(0);
    expect(firstDone.stderr).toContain(`started slowPipeline ${id}`);
    expect(second.stderr).toContain(`attached to running slowPipeline ${id}`);
    const runOf = (s: string): string | undefined => /\(run ([0-9a-f-]+)\)/.exec(s)?.[1];
    expect(runOf(second.stderr)).toBe(runOf(firstDone.stderr));
    const runs: string[] = [];
    for await (const wf of client.workflow.list({ query: `WorkflowId = "${id}"` })) runs.push(wf.runId);
    expect(runs).toHaveLength(1);
  });

  it('refuses to attach a different workflow type to a running id', async () => {
    const id = unique('other');
    const first = allot(['run', 'slowPipeline', '--input', '{"seconds": 2}', '--id', id], env);
    await eventually(async () =>
      (await client.workflow.getHandle(id).describe()).status.name === 'RUNNING' ? true : undefined,
    );
    const wrong = await allot(['run', 'trainPipeline', '--id', id], env);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain(`--id ${id} is already running as slowPipeline, not trainPipeline`);
    expect((await first).code).toBe(0);
  });

  it('leaves nothing held in the pool when a pipeline is cancelled', async () => {
    const id = unique('cancel');
    const run = allot(['run', 'slowPipeline', '--input', '{"seconds": 60}', '--id', id], env);
    await eventually(
      async () => ((await status()).leases.length === 2 ? true : undefined),
      30_000,
      'both steps to hold their resources',
    );
    const cancel = await allot(['cancel', id], env);
    expect(cancel.code, cancel.stderr).toBe(0);
    const r = await run;
    expect(r.code).toBe(130);
    expect(r.stderr).toContain(`slowPipeline ${id}: cancelled`);
    await expectNothingHeld();
    for (const step of ['gpu-sleep', 'cpu-sleep']) {
      const d = await client.workflow.getHandle(`${id}/${step}`).describe();
      expect(d.status.name).toBe('CANCELLED');
    }
  });

  it('cancels the steps of a sub-pipeline with its parent, and follows them', async () => {
    const id = unique('parent');
    const run = allot(['run', 'parentPipeline', '--input', '{"seconds": 60}', '--id', id], env);
    await eventually(async () => ((await status()).leases.length === 2 ? true : undefined), 30_000, 'child steps');
    expect((await allot(['cancel', id], env)).code).toBe(0);
    const r = await run;
    expect(r.code).toBe(130);
    expect(r.stderr).toMatch(/child\/gpu-sleep: running on local, GPUs \d,\d/);
    await expectNothingHeld();
  });

  it('stops at once, exit 2, when no worker has the pipeline type, and terminates the run it started', async () => {
    const id = unique('typo');
    const started = Date.now();
    const r = await allot(['run', 'trainPipelin', '--id', id], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no worker on task queue allot has a pipeline named trainPipelin');
    expect(Date.now() - started).toBeLessThan(20_000);
    expect((await client.workflow.getHandle(id).describe()).status.name).toBe('TERMINATED');
  });

  it('says why when the pipeline code fails on the worker, and keeps waiting for a fix', async () => {
    const id = unique('buggy');
    const run = await startAllot(['run', 'buggyPipeline', '--id', id], /cannot run the pipeline's code/, env, 60_000);
    try {
      await eventually(() => (/until a fixed worker is deployed/.test(run.output()) ? true : undefined));
      expect(run.output()).toMatch(/the worker cannot run the pipeline's code \(attempt \d+\): Cannot read properties/);
      expect(run.child.exitCode).toBeNull();
    } finally {
      run.child.kill('SIGTERM');
      await client.workflow.getHandle(id).terminate('test over');
    }
  });

  it('rejects invalid step options before queueing, naming each field, its value and the allowed form', async () => {
    const id = unique('invalid');
    const bad = { name: 'bad', command: [], resources: { gpu: -1, memory: '8GB' }, priority: 5000, replicas: 0 };
    const r = await allot(['run', 'oneStepPipeline', '--input', JSON.stringify(bad), '--id', id], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      'command: must be a non-empty array of strings (argv, e.g. ["python", "train.py"]), got [] (array)',
    );
    expect(r.stderr).toMatch(/resources\.gpu: must be .*got -1 \(number\)/);
    expect(r.stderr).toMatch(/resources\.memory: must be .*"8Gi".*got "8GB" \(string\)/);
    expect(r.stderr).toContain('priority: must be an integer from -1000 to 1000, got 5000 (number)');
    expect(r.stderr).toContain('replicas: must be a whole number of copies from 1 to 1024, got 0 (number)');
    const steps: string[] = [];
    for await (const wf of client.workflow.list({ query: `RootWorkflowId = "${id}" AND WorkflowType = "allotStep"` }))
      steps.push(wf.workflowId);
    expect(steps).toEqual([]);
    expect((await status()).queue).toEqual([]);
  });

  it('caps a fan-out at its concurrency', async () => {
    const r = await allot(
      ['run', 'fanOutPipeline', '--input', '{"n": 5, "concurrency": 2}', '--id', unique('fanout'), '--json'],
      env,
    );
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { result: { outputs: { start: number; end: number } }[] };
    expect(out.result).toHaveLength(5);
    const runs = out.result.map((s) => ({ start: s.outputs.start, end: s.outputs.end, gpus: [] }));
    expect(maxConcurrent(runs)).toBe(2);
  });

  it('stops a fan-out at its first failure: running items are cancelled and free what they held', async () => {
    const id = unique('fanout-fail');
    const r = await allot(['run', 'fanOutFailurePipeline', '--id', id], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`fanOutFailurePipeline ${id}: failed at step fails`);
    expect(r.stderr).toContain('out of memory');
    await expectNothingHeld();
    for (const step of ['sleeps-a', 'sleeps-b']) {
      expect((await client.workflow.getHandle(`${id}/${step}`).describe()).status.name).toBe('CANCELLED');
    }
    await expect(client.workflow.getHandle(`${id}/never-starts`).describe()).rejects.toThrow();
  });

  it('retries a failing step by its retry policy, with the same checkpoint directory', async () => {
    const ok = await allot(['run', 'retryPipeline', '--id', unique('retry'), '--json'], env);
    expect(ok.code, ok.stderr).toBe(0);
    const outputs = (JSON.parse(ok.stdout) as { result: { outputs: { tries: number; attempt: number } } }).result
      .outputs;
    expect(outputs).toEqual({ tries: 3, attempt: 3 });
    const fatal = await allot(['run', 'retryPipeline', '--input', '{"failWith": 2}', '--id', unique('fatal')], env);
    expect(fatal.code).toBe(1);
    expect(fatal.stderr).toContain('failed at step flaky');
    expect(fatal.stderr).toContain('try 1');
    expect(fatal.stderr).not.toContain('try 2');
  });
});

describe('allot schedule', () => {
  it('creates, lists, triggers and deletes a schedule of a pipeline', async () => {
    const name = unique('nightly');
    const created = await allot(
      [
        'schedule',
        'create',
        name,
        '--cron',
        '0 2 * * *',
        'trainPipeline',
        '--input',
        '{"epochs": 1, "epochSeconds": 0.1}',
      ],
      env,
    );
    expect(created.code, created.stderr).toBe(0);
    expect(created.stderr).toMatch(
      new RegExp(`schedule ${name}: trainPipeline at "0 2 \\* \\* \\*" \\(UTC\\); next run \\d{4}-\\d\\d-\\d\\dT02:00`),
    );
    const list = await allot(['schedule', 'list', '--json'], env);
    expect(JSON.parse(list.stdout)).toContainEqual(
      expect.objectContaining({ scheduleId: name, workflowType: 'trainPipeline', cron: ['0 2 * * *'], paused: false }),
    );
    expect((await allot(['schedule', 'trigger', name], env)).code).toBe(0);
    const started = await eventually(async () => {
      for await (const wf of client.workflow.list({ query: `TemporalScheduledById = "${name}"` })) return wf.workflowId;
      return undefined;
    });
    await client.workflow.getHandle(started).result();
    expect((await allot(['schedule', 'delete', name], env)).code).toBe(0);
    const gone = await allot(['schedule', 'delete', name], env);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain(`no schedule named ${name}`);
  });

  it('rejects a malformed cron expression with the allowed form', async () => {
    const r = await allot(['schedule', 'create', 'bad-cron', '--cron', 'every night', 'trainPipeline'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--cron must be a cron expression of five fields');
    expect(r.stderr).toContain('"every night"');
  });
});
