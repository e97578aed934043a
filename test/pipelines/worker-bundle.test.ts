/**
 * `--workflows ./pipelines`: a folder of the user's pipeline modules, bundled with allot's own
 * workflows, runs on a real worker against the real dev server.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { reportError } from '../../src/cli/errors';
import { startAgent } from '../../src/workers/agent';
import type { Agent } from '../../src/workers/agent';
import { bundleWorkflows, workflowModulePaths } from '../../src/workers/bundle';
import { WorkflowModulesError } from '../../src/workers/bundle-error';
import { ensurePool } from '../../src/workers/pool-client';
import { poolWorkflowId } from '../../src/workflows/messages';
import { tempDir } from '../helpers/temp';

let dir: string;
let client: Client;
let connection: NativeConnection;
let worker: Worker;
let running: Promise<void>;
let agent: Agent;
const suffix = randomUUID().slice(0, 8);
const pool = `bundle-${suffix}`;
const taskQueue = `allot-bundle-${suffix}`;

beforeAll(async () => {
  dir = tempDir('user');
  mkdirSync(path.join(dir, 'pipelines', 'nested'), { recursive: true });
  writeFileSync(
    path.join(dir, 'pipelines', 'greet.ts'),
    `import { step } from 'allot/workflow';
export async function greetPipeline(input: { pool: string; who: string }): Promise<unknown> {
  const r = await step({ name: 'greet', pool: input.pool, command: ['sh', '-c', 'echo "{\\\\"hello\\\\": \\\\"$WHO\\\\"}" > "$ALLOT_OUTPUT"'], env: { WHO: input.who } });
  return r.outputs;
}
`,
  );
  writeFileSync(
    path.join(dir, 'pipelines', 'nested', 'twice.ts'),
    `import { fanOut, step } from 'allot/workflow';
export async function twicePipeline(input: { pool: string }): Promise<number> {
  const rs = await fanOut([1, 2], 1, (i) => step({ name: 'n' + i, pool: input.pool, command: ['true'] }));
  return rs.length;
}
`,
  );
  writeFileSync(path.join(dir, 'pipelines', 'greet.test.ts'), 'throw new Error("tests are not workflow modules");\n');
  const address = inject('temporalAddress');
  client = new Client({ connection: await Connection.connect({ address }) });
  connection = await NativeConnection.connect({ address });
  worker = await Worker.create({
    connection,
    taskQueue,
    workflowBundle: await bundleWorkflows([path.join(dir, 'pipelines')]),
    shutdownGraceTime: '1s',
  });
  running = worker.run();
  await ensurePool(client, pool, taskQueue);
  agent = await startAgent({
    client,
    connection,
    namespace: 'default',
    pool,
    inventory: { id: `bundle-${suffix}`, cpuMilli: 4000, memoryMiB: 8192, gpus: [], labels: {} },
    dataDir: path.join(dir, 'agent'),
    controlTaskQueue: taskQueue,
  });
});

afterAll(async () => {
  if (agent?.worker.getState() === 'RUNNING') agent.worker.shutdown();
  await agent?.done.catch(() => undefined);
  await client?.workflow
    .getHandle(poolWorkflowId(pool))
    .terminate('test over')
    .catch(() => undefined);
  worker?.shutdown();
  await running;
  await connection?.close();
  await client?.connection.close();
});

describe('bundling a folder of pipelines', () => {
  it('finds every module of the folder and its subfolders, but not tests', () => {
    expect(workflowModulePaths(path.join(dir, 'pipelines')).map((p) => path.relative(dir, p))).toEqual([
      path.join('pipelines', 'greet.ts'),
      path.join('pipelines', 'nested', 'twice.ts'),
    ]);
  });

  it('runs pipelines from every module of the folder on one worker', async () => {
    const greeting = await client.workflow.execute('greetPipeline', {
      taskQueue,
      workflowId: `greet-${suffix}`,
      args: [{ pool, who: 'allot' }],
    });
    expect(greeting).toEqual({ hello: 'allot' });
    const count = await client.workflow.execute('twicePipeline', {
      taskQueue,
      workflowId: `twice-${suffix}`,
      args: [{ pool }],
    });
    expect(count).toBe(2);
  });
});

describe('a --workflows path that is wrong', () => {
  const said = (err: unknown): { code: number; text: string } => {
    const lines: string[] = [];
    const write = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
      lines.push(String(chunk));
      return true;
    });
    try {
      return { code: reportError(err), text: lines.join('') };
    } finally {
      write.mockRestore();
    }
  };

  it('names a path that does not exist, without a stack trace', async () => {
    const missing = path.join(dir, 'no-such-pipelines');
    const err: unknown = await bundleWorkflows([missing]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowModulesError);
    const { code, text } = said(err);
    expect(code).toBe(2);
    expect(text).toBe(
      `allot: --workflows ${missing}: no such file or folder; give a module that exports your pipelines, or a folder of them\n`,
    );
  });

  it('says that a module with a syntax error cannot be bundled, without a stack trace', async () => {
    const broken = path.join(dir, 'broken');
    mkdirSync(broken, { recursive: true });
    writeFileSync(path.join(broken, 'index.ts'), 'export async function brokenPipeline( {\n');
    const err: unknown = await bundleWorkflows([broken]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowModulesError);
    const { code, text } = said(err);
    expect(code).toBe(2);
    expect(text).toContain(`allot: cannot bundle the workflows of ${broken}: the errors above say where`);
    expect(text).not.toContain('unexpected error');
    expect(text).not.toMatch(/\n\s+at /);
  });
});
