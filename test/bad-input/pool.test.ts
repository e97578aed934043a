/**
 * The bad-input table, part 2: malformed Updates and signals sent straight to a running pool with
 * the plain `temporal` CLI (bypassing allot's client), and malformed options given straight to the
 * step workflow. Validators reject the Updates with a clear message; the worker logs and drops the
 * signals; and afterwards the pool still answers, holds the same state, and grants a valid request.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import type { LogEntry } from '@temporalio/worker';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startControlWorker } from '../../src/workers/control';
import { findTemporalCli } from '../../src/workers/temporal-cli';
import {
  acquireUpdate,
  nodeHeartbeatSignal,
  policyQuery,
  poolWorkflowId,
  quotasQuery,
  registerUpdate,
  releaseUpdate,
  setQuotaUpdate,
  statusQuery,
} from '../../src/workflows/messages';
import { POOL_ROWS, STEP_ROWS } from './rows';

const logs: string[] = [];
const record = (entry: LogEntry): void => {
  logs.push(`${entry.message} ${JSON.stringify(entry.meta ?? {})}`);
};
Runtime.install({ logger: new DefaultLogger('WARN', record) });
// The payload guard of the worker writes to stderr; keep those lines too.
const writeErr = process.stderr.write.bind(process.stderr);
process.stderr.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
  logs.push(String(chunk));
  return writeErr(chunk, ...rest);
}) as typeof process.stderr.write;

const suffix = randomUUID().slice(0, 8);
const pool = `bad-input-${suffix}`;
const taskQueue = `allot-bad-input-${suffix}`;
const address = inject('temporalAddress');
const temporal = findTemporalCli().path;
let client: Client;
let connection: NativeConnection;
let control: Awaited<ReturnType<typeof startControlWorker>>;

/** What must not change however bad the messages are. */
async function snapshot(): Promise<unknown> {
  const handle = client.workflow.getHandle(poolWorkflowId(pool));
  const status = await handle.query(statusQuery);
  return {
    nodes: status.nodes.map((n) => ({ id: n.id, cpu: n.cpu, memory: n.memory, gpus: n.gpus, labels: n.labels })),
    leases: status.leases.map((l) => l.leaseId),
    queue: status.queue,
    quotas: await handle.query(quotasQuery),
    policy: await handle.query(policyQuery),
  };
}

/** Runs the plain Temporal CLI against the test server. */
function runTemporal(args: string[]): Promise<{ code: number | null; output: string }> {
  if (!temporal) throw new Error('no Temporal CLI: run `npm run setup`');
  return new Promise((resolve) => {
    const child = spawn(temporal, [...args, '--address', address], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('close', (code) => resolve({ code, output }));
  });
}

let before: unknown;

beforeAll(async () => {
  client = new Client({ connection: await Connection.connect({ address }) });
  connection = await NativeConnection.connect({ address });
  control = await startControlWorker({
    client,
    connection,
    namespace: 'default',
    pools: [pool],
    taskQueue,
    bundle: { code: readFileSync(inject('workflowBundlePath'), 'utf8'), sourceMap: '' },
  });
  const handle = client.workflow.getHandle(poolWorkflowId(pool));
  await handle.executeUpdate(registerUpdate, {
    args: [
      {
        id: 'good-node',
        cpuMilli: 8000,
        memoryMiB: 16384,
        gpus: [0, 1].map((index) => ({ index, model: 'A100', memoryMiB: 81920 })),
        labels: { zone: 'a' },
      },
      {},
    ],
  });
  await handle.executeUpdate(setQuotaUpdate, { args: [{ team: 'vision', quota: { gpu: 1 } }] });
  before = await snapshot();
});

afterAll(async () => {
  await client?.workflow
    .getHandle(poolWorkflowId(pool))
    .terminate('test over')
    .catch(() => undefined);
  control?.worker.shutdown();
  await control?.done;
  await connection?.close();
  await client?.connection.close();
});

describe('malformed Updates and signals sent to a running pool with the temporal CLI', () => {
  it.each(POOL_ROWS.map((r) => [`${r.kind} ${r.name}`, r] as const))('%s', async (_, row) => {
    const seen = logs.length;
    const workflow = ['--workflow-id', poolWorkflowId(pool), '--name', row.message, ...row.args];
    if (row.kind === 'query') {
      const { code, output } = await runTemporal(['workflow', 'query', ...workflow]);
      expect(code, output).not.toBe(0);
      expect(output).toMatch(row.expect ?? /./);
    } else if (row.kind === 'update') {
      const { code, output } = await runTemporal(['workflow', 'update', 'execute', ...workflow]);
      expect(code, output).not.toBe(0);
      expect(output).toMatch(row.expect ?? /./);
    } else if (row.raw) {
      await client.workflowService.signalWorkflowExecution({
        namespace: 'default',
        workflowExecution: { workflowId: poolWorkflowId(pool) },
        signalName: row.message,
        identity: 'bad-input-test',
        input: {
          payloads: [{ metadata: { encoding: Buffer.from(row.raw.encoding) }, data: Buffer.from(row.raw.data) }],
        },
      });
    } else {
      const { code, output } = await runTemporal(['workflow', 'signal', ...workflow]);
      expect(code, output).toBe(0);
    }
    if (row.kind === 'signal') {
      // The pool has handled the signal once it answers a query after it.
      await client.workflow.getHandle(poolWorkflowId(pool)).query(statusQuery);
      if (row.expect) {
        const expected = row.expect;
        await waitFor(() => logs.slice(seen).some((l) => expected.test(l)), `a log line like ${String(expected)}`);
      }
    }
    expect(await snapshot()).toEqual(before);
  });

  it('still answers and grants a valid request after all of them', async () => {
    const handle = client.workflow.getHandle(poolWorkflowId(pool));
    await handle.signal(nodeHeartbeatSignal, { nodeId: 'good-node' });
    // Within team vision's quota (a team without one may not use more than the cohort's 1 GPU).
    const outcome = await handle.executeUpdate(acquireUpdate, {
      args: [
        {
          requestId: `valid-${suffix}`,
          owner: { kind: 'client', name: 'bad-input-test' },
          team: 'vision',
          resources: { cpuMilli: 1000, memoryMiB: 1024, gpuMilli: 1000, gpuMemoryMiB: 0, gpuModels: [], labels: {} },
        },
      ],
    });
    expect(outcome.status).toBe('granted');
    expect(outcome.status === 'granted' && outcome.lease.gpus.map((g) => g.index)).toEqual([0]);
    expect(await handle.executeUpdate(releaseUpdate, { args: [`valid-${suffix}`] })).toEqual({ released: true });
    expect(await snapshot()).toEqual(before);
  });
});

describe('malformed options given straight to the step workflow', () => {
  it.each(STEP_ROWS.map((r) => [r.name, r] as const))('%s', async (_, row) => {
    const handle = await client.workflow.start('allotStep', {
      taskQueue,
      workflowId: `bad-step-${suffix}-${randomUUID().slice(0, 6)}`,
      args: [{ name: 'bad', command: ['true'], pool, ...row.options }],
    });
    const error = await handle.result().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WorkflowFailedError);
    const cause = (error as WorkflowFailedError).cause as { type?: string; message: string };
    expect(cause.type).toBe('InvalidInput');
    expect(cause.message).toMatch(row.expect);
    expect(await snapshot()).toEqual(before);
  });
});

async function waitFor(check: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; logs:\n${logs.slice(-10).join('\n')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
