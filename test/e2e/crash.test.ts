/**
 * kill -9 of the control worker, and separately of the Temporal server (database on disk), in the
 * middle of a pipeline: after a restart every pipeline finishes, no step is lost, and none ran
 * twice at the same time.
 */
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StepInput } from '../../src/workflows/step-types';
import type { Proc } from '../helpers/processes';
import { startAgentProcess, startDevServer, startDevServerOnFreePort, startWorkerProcess } from '../helpers/processes';
import { tempDir } from '../helpers/temp';

const PIPELINES = path.resolve(__dirname, '../helpers/test-workflows.ts');

let dir: string;
let port: number;
let address: string;
let server: Proc;
let worker: Proc;
let agent: Proc;

beforeAll(async () => {
  dir = tempDir('crash');
  ({ server, port } = await startDevServerOnFreePort(path.join(dir, 'temporal.db')));
  address = `127.0.0.1:${port}`;
  worker = await startWorkerProcess(address, [PIPELINES]);
  agent = await startAgentProcess(address, 'crash-node', path.join(dir, 'agent'));
}, 180_000);

afterAll(async () => {
  for (const p of [agent, worker, server]) await p?.stop().catch(() => undefined);
});

/** Steps that log start and end with their attempt, so overlapping runs of one step show. */
function steps(tag: string, count: number, seconds: number): StepInput[] {
  const log = path.join(dir, `${tag}.log`);
  return Array.from({ length: count }, (_, i) => ({
    name: `${tag}-${i}`,
    command: [
      'sh',
      '-c',
      `echo "start $ALLOT_STEP_NAME $(date +%s%N)" >> ${log}; sleep ${seconds}; echo "end $ALLOT_STEP_NAME $(date +%s%N)" >> ${log}`,
    ],
    resources: { gpu: 1 },
  }));
}

/** Per step: its runs as [start, end] pairs; checks that no two of one step overlap. */
function runsOf(tag: string): Map<string, [number, number | undefined][]> {
  const file = path.join(dir, `${tag}.log`);
  const runs = new Map<string, [number, number | undefined][]>();
  if (!existsSync(file)) return runs;
  for (const line of readFileSync(file, 'utf8').trim().split('\n')) {
    const [what, name = '', at] = line.split(' ');
    const list = runs.get(name) ?? [];
    if (what === 'start') list.push([Number(at), undefined]);
    else {
      const open = list.find((r) => r[1] === undefined);
      if (open) open[1] = Number(at);
    }
    runs.set(name, list);
  }
  return runs;
}

async function client(): Promise<Client> {
  return new Client({ connection: await Connection.connect({ address }) });
}

function expectNoOverlap(tag: string, count: number): void {
  const runs = runsOf(tag);
  expect(runs.size).toBe(count);
  for (const [, list] of runs) {
    const sorted = [...list].sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < sorted.length; i++) {
      const prev = sorted[i - 1];
      const cur = sorted[i];
      if (prev && cur) expect(prev[1] ?? Infinity).toBeLessThanOrEqual(cur[0]);
    }
    expect(list.some((r) => r[1] !== undefined)).toBe(true);
  }
}

describe('crashes of the control plane', () => {
  it('finishes a pipeline after kill -9 of the control worker', async () => {
    const c = await client();
    const handle = await c.workflow.start('parallelSteps', {
      taskQueue: 'allot',
      workflowId: `crash-worker-${Date.now()}`,
      args: [steps('w', 6, 2)],
    });
    await new Promise((r) => setTimeout(r, 3_000));
    await worker.kill9();
    await new Promise((r) => setTimeout(r, 2_000));
    worker = await startWorkerProcess(address, [PIPELINES]);
    const results = (await handle.result()) as { exitCode: number }[];
    expect(results.map((r) => r.exitCode)).toEqual([0, 0, 0, 0, 0, 0]);
    expectNoOverlap('w', 6);
    await c.connection.close();
  }, 180_000);

  it('finishes a pipeline after kill -9 of the Temporal server, restarted on its database', async () => {
    let c = await client();
    const workflowId = `crash-server-${Date.now()}`;
    await c.workflow.start('parallelSteps', { taskQueue: 'allot', workflowId, args: [steps('s', 6, 2)] });
    await c.connection.close();
    await new Promise((r) => setTimeout(r, 3_000));
    await server.kill9();
    await new Promise((r) => setTimeout(r, 2_000));
    server = await startDevServer(path.join(dir, 'temporal.db'), port);
    c = await client();
    const results = (await c.workflow.getHandle(workflowId).result()) as { exitCode: number }[];
    expect(results.map((r) => r.exitCode)).toEqual([0, 0, 0, 0, 0, 0]);
    expectNoOverlap('s', 6);
    await c.connection.close();
  }, 240_000);
});
