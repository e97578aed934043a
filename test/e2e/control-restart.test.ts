/**
 * kill -9 of the control worker while requests arrive: the pool that a fresh worker picks up (and
 * carries into a new run) keeps every acquire and release sent meanwhile.
 */
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseResources } from '../../src/core';
import type { AcquireInput } from '../../src/core';
import { acquireSignal, poolWorkflowId, releaseSignal, statusQuery } from '../../src/workflows/messages';
import { eventually } from '../helpers/harness';
import type { Proc } from '../helpers/processes';
import { startDevServerOnFreePort, startWorkerProcess } from '../helpers/processes';
import { tempDir } from '../helpers/temp';

const PIPELINES = path.resolve(__dirname, '../helpers/test-workflows.ts');

let address: string;
let server: Proc;
let worker: Proc;
let client: Client;

beforeAll(async () => {
  const dir = tempDir('restart');
  let port: number;
  ({ server, port } = await startDevServerOnFreePort(path.join(dir, 'temporal.db')));
  address = `127.0.0.1:${port}`;
  worker = await startWorkerProcess(address, [PIPELINES]);
  client = new Client({ connection: await Connection.connect({ address }) });
}, 180_000);

afterAll(async () => {
  await client?.connection.close();
  for (const p of [worker, server]) await p?.stop().catch(() => undefined);
});

function request(id: string): AcquireInput {
  const { request: resources } = parseResources({ gpu: 1 });
  if (!resources) throw new Error('bad test request');
  return { requestId: id, owner: { kind: 'client', name: 'restart-test' }, resources, priority: 0, label: id };
}

describe('a control worker killed while requests arrive', () => {
  it('loses none of them when the fresh worker carries the pool into a new run', async () => {
    const pool = client.workflow.getHandle(poolWorkflowId('default'));
    const queued = async (): Promise<string[]> => (await pool.query(statusQuery)).queue.map((q) => q.requestId);
    await eventually(() => pool.query(statusQuery), 60_000, 'the pool to answer');
    // No node is registered, so requests stay queued (NoNodes).
    for (const id of ['a', 'b', 'c']) await pool.signal(acquireSignal, request(id));
    await eventually(async () => ((await queued()).length === 3 ? true : undefined), 20_000, 'three queued');
    const firstRun = (await pool.describe()).runId;

    // Queries keep coming, as from `allot status` or a dashboard: a fresh worker answers them
    // by replaying the pool before its first task.
    let querying = true;
    const queries = (async () => {
      while (querying) {
        await pool.query(statusQuery).catch(() => undefined);
        await new Promise((r) => setTimeout(r, 300));
      }
    })();
    await worker.kill9();
    // With the worker gone, these wait in the history while the pool's workflow task times out.
    await pool.signal(releaseSignal, { requestId: 'a' });
    await pool.signal(acquireSignal, request('d'));
    await new Promise((r) => setTimeout(r, 7_000));
    await pool.signal(releaseSignal, { requestId: 'b' });
    await pool.signal(acquireSignal, request('e'));
    worker = await startWorkerProcess(address, [PIPELINES]);

    await eventually(
      async () => ((await pool.describe()).runId !== firstRun ? true : undefined),
      60_000,
      'the pool to continue as new',
    );
    querying = false;
    await queries;
    expect(await eventually(queued, 20_000, 'the new run to answer')).toEqual(['c', 'd', 'e']);
  }, 180_000);
});
