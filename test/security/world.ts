/**
 * A small world for the security tests, on the test run's real Temporal server: a control worker
 * and one agent built by allot's own `startControlWorker` and `startAgent`, with the payload codec
 * of a key when one is given, and a client that uses the same key.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { inject } from 'vitest';
import type { PoolStatus } from '../../src/core';
import type { Agent } from '../../src/workers/agent';
import { startAgent } from '../../src/workers/agent';
import { clientDataConverter, workerDataConverter } from '../../src/workers/codec';
import { startControlWorker } from '../../src/workers/control';
import { findTemporalCli } from '../../src/workers/temporal-cli';
import { poolWorkflowId, statusQuery } from '../../src/workflows/messages';
import { tempDir } from '../helpers/temp';

/** A control worker, one agent and a client. */
export interface SecureWorld {
  client: Client;
  pool: string;
  taskQueue: string;
  nodeId: string;
  dataDir: string;
  agent: Agent;
  status(): Promise<PoolStatus>;
  close(): Promise<void>;
}

/** Starts a world; `key` turns payload encryption on for its workers and its client. */
export async function createSecureWorld(
  name: string,
  options: { key?: string; gpus?: number } = {},
): Promise<SecureWorld> {
  const env = options.key ? { ALLOT_CODEC_KEY: options.key } : {};
  const address = inject('temporalAddress');
  const client = new Client({
    connection: await Connection.connect({ address }),
    dataConverter: clientDataConverter(env),
  });
  const connection = await NativeConnection.connect({ address });
  const suffix = randomUUID().slice(0, 8);
  const pool = `${name}-${suffix}`;
  const taskQueue = `allot-${name}-${suffix}`;
  const nodeId = `${name}-${suffix}-n1`;
  const dataDir = tempDir(name);
  const control = await startControlWorker({
    client,
    connection,
    namespace: 'default',
    pools: [pool],
    taskQueue,
    bundle: { code: readFileSync(inject('workflowBundlePath'), 'utf8'), sourceMap: '' },
    dataConverter: workerDataConverter(env),
  });
  const agent = await startAgent({
    client,
    connection,
    namespace: 'default',
    pool,
    inventory: {
      id: nodeId,
      cpuMilli: 8000,
      memoryMiB: 16_384,
      gpus: Array.from({ length: options.gpus ?? 2 }, (_, index) => ({ index, model: 'A100', memoryMiB: 81_920 })),
      labels: {},
    },
    dataDir: path.join(dataDir, nodeId),
    controlTaskQueue: taskQueue,
    dataConverter: workerDataConverter(env),
  });
  return {
    client,
    pool,
    taskQueue,
    nodeId,
    dataDir,
    agent,
    status: () => client.workflow.getHandle(poolWorkflowId(pool)).query(statusQuery),
    async close() {
      if (agent.worker.getState() === 'RUNNING') agent.worker.shutdown();
      await agent.done.catch(() => undefined);
      await client.workflow
        .getHandle(poolWorkflowId(pool))
        .terminate('test over')
        .catch(() => undefined);
      control.worker.shutdown();
      await control.done;
      await connection.close();
      await client.connection.close();
    },
  };
}

/** Runs the plain Temporal CLI against the test server; resolves with its exit code and output. */
export function temporalCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const cli = findTemporalCli().path;
  if (!cli) throw new Error('no Temporal CLI: run `npm run setup`');
  return new Promise((resolve) => {
    const child = spawn(cli, [...args, '--address', inject('temporalAddress')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
