/**
 * Soak: N acquire/release cycles through one pool, then the largest number of history events in
 * any of the pool's runs (continue-as-new keeps each run bounded).
 *
 *   npx tsx bench/pool-cycles.ts [--cycles 20000] [--concurrency 8] [--json FILE]
 */
import { writeFileSync } from 'node:fs';
import { defineSearchAttributeKey } from '@temporalio/common';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { parseResources } from '../src/core';
import { bundleWorkflows } from '../src/workers/bundle';
import { noMetricsSinks } from '../src/workers/metrics';
import { ensurePool, registerNode } from '../src/workers/pool-client';
import { findTemporalCli } from '../src/workers/temporal-cli';
import {
  acquireUpdate,
  nodeHeartbeatSignal,
  poolWorkflowId,
  releaseUpdate,
  requestQuery,
} from '../src/workflows/messages';
import { SEARCH_ATTRIBUTE_LIST } from '../src/workflows/search-attributes';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isSafeInteger(v) || v <= 0) throw new Error(`--${name} must be a positive whole number`);
  return v;
}

async function main(): Promise<void> {
  const cycles = arg('cycles', 20_000);
  const concurrency = arg('concurrency', 8);
  const jsonAt = process.argv.indexOf('--json');
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const stage = (what: string): void => void process.stderr.write(`[soak] ${what}\n`);
  const cli = findTemporalCli();
  stage('starting the dev server');
  const env = await TestWorkflowEnvironment.createLocal({
    server: {
      executable: cli.path ? { type: 'existing-path', path: cli.path } : { type: 'cached-download' },
      searchAttributes: SEARCH_ATTRIBUTE_LIST.map((a) => defineSearchAttributeKey(a.name, a.type)),
    },
  });
  try {
    const taskQueue = 'allot-soak';
    stage('bundling workflows');
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: await bundleWorkflows(),
      sinks: noMetricsSinks(),
    });
    const running = worker.run();
    const pool = 'soak';
    stage('starting the pool and registering a node');
    await ensurePool(env.client, pool, taskQueue);
    await registerNode(
      env.client,
      pool,
      {
        id: 'soak-node',
        cpuMilli: 64_000,
        memoryMiB: 262_144,
        gpus: Array.from({ length: 8 }, (_, index) => ({ index, model: 'A100', memoryMiB: 81_920 })),
        labels: {},
      },
      taskQueue,
    );
    const handle = env.client.workflow.getHandle(poolWorkflowId(pool));
    // Heartbeat like an agent, or the pool rightly stops granting on a silent node.
    const heartbeat = setInterval(
      () => void handle.signal(nodeHeartbeatSignal, { nodeId: 'soak-node' }).catch(() => undefined),
      5_000,
    );
    const resources = parseResources({ gpu: 1, cpu: 1, memory: '1Gi' }).request;
    if (!resources) throw new Error('bad request');
    let next = 0;
    let done = 0;
    const started = Date.now();
    const progress = setInterval(() => {
      const rate = done / ((Date.now() - started) / 1000);
      process.stderr.write(`\r${done}/${cycles} cycles, ${rate.toFixed(0)}/s   `);
    }, 1000);
    const loop = async (): Promise<void> => {
      while (next < cycles) {
        const id = `c${next++}`;
        let outcome = await handle.executeUpdate(acquireUpdate, {
          args: [{ requestId: id, owner: { kind: 'client', name: 'soak' }, resources }],
        });
        while (outcome.status === 'queued') {
          await new Promise((r) => setTimeout(r, 5));
          outcome = (await handle.query(requestQuery, id)) ?? outcome;
        }
        if (outcome.status !== 'granted') throw new Error(`cycle ${id}: ${JSON.stringify(outcome)}`);
        await handle.executeUpdate(releaseUpdate, { args: [id] });
        done++;
      }
    };
    await Promise.all(Array.from({ length: concurrency }, loop));
    clearInterval(progress);
    clearInterval(heartbeat);
    const seconds = (Date.now() - started) / 1000;
    const runs: { runId: string; historyLength: number }[] = [];
    for await (const wf of env.client.workflow.list({ query: `WorkflowId = "${poolWorkflowId(pool)}"` })) {
      const described = await env.client.workflow.getHandle(wf.workflowId, wf.runId).describe();
      runs.push({ runId: wf.runId, historyLength: described.historyLength });
    }
    const maxEvents = Math.max(...runs.map((r) => r.historyLength));
    const result = {
      cycles,
      concurrency,
      seconds: Number(seconds.toFixed(1)),
      cyclesPerSecond: Number((cycles / seconds).toFixed(1)),
      poolRuns: runs.length,
      maxEventsPerRun: maxEvents,
    };
    process.stderr.write('\n');
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    if (jsonAt >= 0 && process.argv[jsonAt + 1])
      writeFileSync(process.argv[jsonAt + 1] ?? '', JSON.stringify(result, null, 2));
    worker.shutdown();
    await running;
    if (maxEvents > 10_000) {
      process.stderr.write(`FAIL: a pool run has ${maxEvents} events (limit 10,000)\n`);
      process.exitCode = 1;
    }
  } finally {
    await env.teardown();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
