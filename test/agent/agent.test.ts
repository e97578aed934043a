/**
 * The node agent on a real Temporal server: limits that fail steps with their own types, GPU
 * sharing, usage in results, metrics that match the pool's status, and draining on stop.
 */
import { existsSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LaunchFailureDetails } from '../../src/activities';
import type { MetricsServer } from '../../src/workers/metrics';
import { createRegistry, serveMetrics } from '../../src/workers/metrics';
import type { StepInput, StepResult } from '../../src/workflows/step-types';
import type { World } from '../helpers/harness';
import { createWorld, eventually, gpus } from '../helpers/harness';
import { tempDir } from '../helpers/temp';

let world: World;
let metrics: MetricsServer;
let nodeId: string;

beforeAll(async () => {
  const registry = createRegistry();
  world = await createWorld('agent', { metrics: registry });
  // One GPU, so that shares of it must meet on index 0.
  ({ nodeId } = await world.addAgent({ gpus: gpus(1, 'H100'), memoryMiB: 8192 }, { metrics: registry, sampleMs: 100 }));
  metrics = await serveMetrics(registry, 0, '127.0.0.1');
});
afterAll(async () => {
  await metrics?.close();
  await world?.close();
});

let counter = 0;
function startStep(input: Omit<StepInput, 'pool'>) {
  return world.client.workflow.start('allotStep', {
    taskQueue: world.taskQueue,
    workflowId: `agent-test-${Date.now()}-${++counter}`,
    args: [{ ...input, pool: world.pool }],
  });
}

async function failureOf(p: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const cause = (err as WorkflowFailedError).cause;
  expect(cause).toBeInstanceOf(ApplicationFailure);
  return cause as ApplicationFailure;
}

async function nodeFree(): Promise<void> {
  await eventually(
    async () => {
      const s = await world.status();
      const node = s.nodes.find((n) => n.id === nodeId);
      return s.leases.length === 0 && node?.memory.usedMiB === 0 && node.cpu.usedMilli === 0 ? true : undefined;
    },
    20_000,
    'the node free again',
  );
}

function scrape(): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get(metrics.url, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}

/** The value of one sample line, e.g. `allot_pool_gpus_allocated{pool="p",node="n",model="H100"}`. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const body = line.slice(name.length + 1, line.lastIndexOf('}'));
    const got = Object.fromEntries([...body.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

describe('limits', () => {
  it('fails a step past its memory limit as MemoryLimitExceeded with peak and limit, and frees the node', async () => {
    const handle = await startStep({
      name: 'hog',
      command: [
        'python3',
        '-c',
        'import time\nx = []\nfor i in range(100):\n    x.append(b"\\x01" * (20 << 20))\n    time.sleep(0.05)',
      ],
      resources: { memory: '150Mi' },
    });
    const cause = await failureOf(handle.result());
    expect(cause.type).toBe('MemoryLimitExceeded');
    // Polled, the agent sees the workload past its limit; under a cgroup, the kernel stops it at the limit.
    expect(cause.message).toMatch(
      /used \d+(\.\d+)?(Mi|Gi) of memory \(peak\), over its limit of 150Mi|reached its memory limit of 150Mi \(peak \d+/,
    );
    const details = cause.details?.[0] as LaunchFailureDetails;
    expect(details.peakMiB).toBeGreaterThanOrEqual(150);
    expect(details.limitMiB).toBe(150);
    await nodeFree();
    expect(world.agents[0]?.ledger.list()).toEqual([]);
  });

  it('lets a step set a memory limit above its request', async () => {
    const handle = await startStep({
      name: 'roomy',
      command: ['python3', '-c', 'x = b"\\x01" * (120 << 20); print(len(x))'],
      resources: { memory: '64Mi' },
      memoryLimit: '400Mi',
    });
    const result: StepResult = await handle.result();
    expect(result.exitCode).toBe(0);
    expect(result.usage?.requested).toMatchObject({ memoryMiB: 64, memoryLimitMiB: 400 });
  });

  it('fails a step past its time limit as TimeLimitExceeded', async () => {
    const handle = await startStep({ name: 'slow', command: ['sleep', '30'], timeLimitMs: 500, gracePeriodMs: 200 });
    const cause = await failureOf(handle.result());
    expect(cause.type).toBe('TimeLimitExceeded');
    expect(cause.message).toContain('time limit of 500ms');
    await nodeFree();
  });

  it('rejects a memory limit below the request, naming the field, the value and the request', async () => {
    const handle = await startStep({
      name: 'bad-limit',
      command: ['true'],
      resources: { memory: '1Gi' },
      memoryLimit: '512Mi',
    });
    const cause = await failureOf(handle.result());
    expect(cause.type).toBe('InvalidInput');
    expect(cause.message).toMatch(/memoryLimit.*at least.*resources\.memory = 1Gi.*"512Mi"/);
  });
});

describe('usage', () => {
  it('puts mean and peak CPU and memory in the step result beside what was requested', async () => {
    const handle = await startStep({
      name: 'busy',
      command: [
        'python3',
        '-c',
        'import time\nx = b"\\x01" * (60 << 20)\nt = time.time()\nwhile time.time() - t < 1: pass',
      ],
      resources: { cpu: 2, memory: '256Mi' },
    });
    const result: StepResult = await handle.result();
    // The workload keeps one core busy; on a loaded CI machine it may get well under one.
    expect(result.usage?.cpuCores?.peak).toBeGreaterThan(0.2);
    expect(result.usage?.memoryMiB?.peak).toBeGreaterThan(60);
    expect(result.usage?.requested).toEqual({ cpu: 2, memoryMiB: 256, gpu: 0, memoryLimitMiB: 256, cpuLimit: 2 });
  });
});

describe('GPU sharing', () => {
  it('runs two gpu: 0.5 steps on the same GPU index at the same time while a third waits', async () => {
    // Each runs until the test opens the gate (and two seconds at least): however slow the machine,
    // the first two still run while it looks.
    const gate = path.join(tempDir('halves'), 'gate');
    const script =
      'start=$(date +%s%N); echo "share $ALLOT_GPU_FRACTION mps $CUDA_MPS_ACTIVE_THREAD_PERCENTAGE on $CUDA_VISIBLE_DEVICES"; ' +
      `sleep 2; while [ ! -e ${gate} ]; do sleep 0.1; done; ` +
      'echo "{\\"gpu\\": \\"$CUDA_VISIBLE_DEVICES\\", \\"fraction\\": \\"$ALLOT_GPU_FRACTION\\", ' +
      '\\"mps\\": \\"$CUDA_MPS_ACTIVE_THREAD_PERCENTAGE\\", \\"start\\": $start, \\"end\\": $(date +%s%N)}" > "$ALLOT_OUTPUT"';
    const handles = [];
    for (const name of ['half-a', 'half-b', 'half-c']) {
      handles.push(await startStep({ name, command: ['sh', '-c', script], resources: { gpu: 0.5, memory: '64Mi' } }));
      await new Promise((r) => setTimeout(r, 150));
    }
    // While two run, the pool shows both on GPU 0 and the third queued.
    const during = await eventually(
      async () => {
        const s = await world.status();
        const gpu0 = s.nodes.find((n) => n.id === nodeId)?.gpus[0];
        return gpu0?.used === 1 && s.queue.length === 1 ? s : undefined;
      },
      10_000,
      'two shares running, one queued',
    );
    expect(
      during.nodes
        .find((n) => n.id === nodeId)
        ?.gpus[0]?.holders.map((h) => h.label)
        .sort(),
    ).toEqual(['half-a', 'half-b']);
    expect(during.queue[0]?.label).toBe('half-c');
    // The agent's metrics say the same as the pool's status, once both launches have started.
    const text = await eventually(
      async () => {
        const t = await scrape();
        return sample(t, 'allot_node_steps_running', { node: nodeId }) === 2 ? t : undefined;
      },
      10_000,
      'both shares running on the agent',
    );
    expect(sample(text, 'allot_node_gpus_allocated', { node: nodeId, model: 'H100' })).toBe(1);
    expect(sample(text, 'allot_pool_gpus_allocated', { pool: world.pool, node: nodeId, model: 'H100' })).toBe(1);
    expect(sample(text, 'allot_pool_gpus', { pool: world.pool, node: nodeId, model: 'H100' })).toBe(1);
    expect(sample(text, 'allot_pool_queue_length', { pool: world.pool, team: 'default' })).toBe(1);
    expect(sample(text, 'allot_pool_running_steps', { pool: world.pool, team: 'default' })).toBe(2);

    writeFileSync(gate, '');
    const results: StepResult[] = await Promise.all(handles.map((h) => h.result()));
    const [a, b, c] = results.map(
      (r) => r.outputs as { gpu: string; fraction: string; mps: string; start: number; end: number },
    );
    for (const o of [a, b, c]) expect(o).toMatchObject({ gpu: '0', fraction: '0.5', mps: '50' });
    // a and b overlapped; c started only after one of them had ended.
    expect(Math.max(a!.start, b!.start)).toBeLessThan(Math.min(a!.end, b!.end));
    expect(c!.start).toBeGreaterThanOrEqual(Math.min(a!.end, b!.end));
    expect(results[2]?.queuedMs).toBeGreaterThan(1000);
    await nodeFree();
  });
});

describe('metrics', () => {
  it('counts outcomes, waits and launches, and shows an idle pool as the status does', async () => {
    await nodeFree();
    const text = await scrape();
    const s = await world.status();
    expect(sample(text, 'allot_pool_up', { pool: world.pool })).toBe(1);
    expect(sample(text, 'allot_pool_gpus_allocated', { pool: world.pool, node: nodeId, model: 'H100' })).toBe(0);
    expect(sample(text, 'allot_node_gpus_allocated', { node: nodeId, model: 'H100' })).toBe(0);
    expect(sample(text, 'allot_pool_memory_bytes', { pool: world.pool, node: nodeId })).toBe(
      (s.nodes[0]?.memory.capacityMiB ?? 0) * 1024 * 1024,
    );
    expect(sample(text, 'allot_pool_queue_length', { pool: world.pool, team: 'default' })).toBeUndefined();
    // So far: 5 steps succeeded (roomy, busy, 3 halves), 2 failed on the agent (hog, slow), 1 never queued.
    expect(sample(text, 'allot_step_outcomes_total', { pool: world.pool, outcome: 'succeeded' })).toBe(5);
    expect(sample(text, 'allot_step_outcomes_total', { pool: world.pool, outcome: 'failed' })).toBe(2);
    expect(sample(text, 'allot_node_launches_total', { node: nodeId, outcome: 'memory_limit' })).toBe(1);
    expect(sample(text, 'allot_node_launches_total', { node: nodeId, outcome: 'time_limit' })).toBe(1);
    expect(sample(text, 'allot_step_wait_seconds_count', { pool: world.pool, team: 'default' })).toBe(7);
    expect(text).toContain('allot_step_wait_seconds_bucket{le="1",pool=');
  });
});

describe('drain on stop', () => {
  it('lets a running step finish within the deadline, then stops; a second agent takes the next step', async () => {
    const { agent, nodeId: drained } = await world.addAgent({ gpus: gpus(1, 'L4'), memoryMiB: 4096 });
    const handle = await startStep({
      name: 'finishes',
      command: ['sh', '-c', 'sleep 1; echo done'],
      resources: { gpuModel: 'L4', gpu: 1 },
    });
    await eventually(() => (agent.running.size === 1 ? true : undefined), 10_000, 'the step running');
    await agent.drainAndStop(10_000);
    const result: StepResult = await handle.result();
    expect(result.nodeId).toBe(drained);
    expect(result.logTail).toContain('done');
    const s = await world.status();
    expect(s.nodes.find((n) => n.id === drained)?.status).toBe('Draining');
  });

  it('hands a step that runs past the deadline back, and it completes on another node', async () => {
    const { agent, nodeId: first } = await world.addAgent({ gpus: gpus(1, 'T4'), memoryMiB: 4096 });
    const handle = await startStep({
      name: 'handed-back',
      command: ['sh', '-c', 'if [ "$ALLOT_ATTEMPT" = 1 ]; then sleep 30; fi; echo "ran on $ALLOT_NODE_ID"'],
      resources: { gpuModel: 'T4', gpu: 1 },
      gracePeriodMs: 300,
    });
    await eventually(() => (agent.running.size === 1 ? true : undefined), 10_000, 'the step running');
    const { nodeId: second } = await world.addAgent({ gpus: gpus(1, 'T4'), memoryMiB: 4096 });
    await agent.drainAndStop(300);
    const result: StepResult = await handle.result();
    expect(result.nodeId).toBe(second);
    expect(result.nodeId).not.toBe(first);
    expect(result.logTail).toContain(`ran on ${second}`);
  });
});

describe('the work dir of an attempt', () => {
  const where = `printf '{"cwd": "%s", "work": "%s"}' "$(pwd)" "$ALLOT_WORK_DIR" > "$ALLOT_OUTPUT"`;

  it('is the workload’s working directory unless the step sets one, and is removed after the attempt', async () => {
    const result: StepResult = await (await startStep({ name: 'work-dir', command: ['sh', '-c', where] })).result();
    const { cwd, work } = result.outputs as { cwd: string; work: string };
    expect(cwd).toBe(work);
    expect(path.basename(work)).toBe('attempt-1');
    expect(existsSync(work)).toBe(false);
  });

  it('stays with keepWorkDir, and a step with its own cwd runs there', async () => {
    const own = tempDir('own-cwd');
    const result: StepResult = await (
      await startStep({ name: 'kept', command: ['sh', '-c', where], cwd: own, keepWorkDir: true })
    ).result();
    const { cwd, work } = result.outputs as { cwd: string; work: string };
    expect(cwd).toBe(own);
    expect(existsSync(work)).toBe(true);
  });

  it('a step that declares outputs on an agent without a store fails before it starts, saying so', async () => {
    const handle = await startStep({ name: 'no-store', command: ['true'], outputs: { model: 'model.bin' } });
    const err = await handle.result().then(
      () => undefined,
      (e: unknown) => e,
    );
    let root: unknown = err;
    while (root instanceof Error && root.cause instanceof Error) root = root.cause;
    expect(root).toBeInstanceOf(ApplicationFailure);
    expect((root as ApplicationFailure).type).toBe('OutputMissing');
    expect((root as Error).message).toContain(`declares outputs, but node ${nodeId} has no store to put them in`);
    expect((root as Error).message).toContain('--store (or ALLOT_STORE)');
  });
});
