import { readFileSync } from 'node:fs';
import path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AccountingRecord } from '../../src/workflows/accounting-types';
import { ACCOUNTING_MEMO } from '../../src/workflows/accounting-types';
import type { StepInput, StepResult } from '../../src/workflows/step-types';
import type { World } from '../helpers/harness';
import { createWorld, eventually } from '../helpers/harness';
import { maxConcurrent, sharedGpus } from '../helpers/intervals';

let world: World;
let nodeId: string;

beforeAll(async () => {
  world = await createWorld('step');
  ({ nodeId } = await world.addAgent());
});
afterAll(async () => world?.close());

let counter = 0;
function startStep(input: Omit<StepInput, 'pool'>) {
  return world.client.workflow.start('allotStep', {
    taskQueue: world.taskQueue,
    workflowId: `step-test-${Date.now()}-${++counter}`,
    args: [{ ...input, pool: world.pool }],
  });
}

async function expectAllFree(): Promise<void> {
  await eventually(
    async () => {
      const s = await world.status();
      return s.leases.length === 0 && s.nodes.every((n) => n.gpus.every((g) => g.used === 0)) ? true : undefined;
    },
    20_000,
    'all GPUs free',
  );
}

describe('allotStep on a real Temporal server', () => {
  it('runs a workload on the granted GPUs with the allot environment and returns its outputs', async () => {
    const handle = await startStep({
      name: 'env',
      command: [
        'sh',
        '-c',
        'echo "{\\"devices\\": \\"$CUDA_VISIBLE_DEVICES\\", \\"attempt\\": \\"$ALLOT_ATTEMPT\\"}" > "$ALLOT_OUTPUT"; echo "$ALLOT_STEP_ID $ALLOT_CHECKPOINT_DIR"',
      ],
      resources: { gpu: 2 },
    });
    const result: StepResult = await handle.result();
    expect(result.exitCode).toBe(0);
    expect(result.nodeId).toBe(nodeId);
    expect(result.gpuIndices).toHaveLength(2);
    expect(result.outputs).toEqual({ devices: result.gpuIndices.join(','), attempt: '1' });
    expect(result.logTail.join('\n')).toContain(handle.workflowId);
    expect(readFileSync(result.logFile, 'utf8')).toContain(
      path.join('checkpoints', handle.workflowId.replace(/[^A-Za-z0-9._-]/g, '_')),
    );
    await expectAllFree();
  });

  it('fails with the exit code of a failing workload and frees its GPUs', async () => {
    const handle = await startStep({
      name: 'exit3',
      command: ['sh', '-c', 'echo boom; exit 3'],
      resources: { gpu: 1 },
    });
    const err = await handle.result().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const cause = (err as WorkflowFailedError).cause;
    expect(cause).toBeInstanceOf(ApplicationFailure);
    expect((cause as ApplicationFailure).type).toBe('NonZeroExit');
    expect(((cause as ApplicationFailure).details?.[0] as StepResult).exitCode).toBe(3);
    expect(((cause as ApplicationFailure).details?.[0] as StepResult).logTail).toContain('boom');
    await expectAllFree();
  });

  it('rejects at once a request larger than any node, naming the resource, the amount and the capacity', async () => {
    const started = Date.now();
    const handle = await startStep({ name: 'too-big', command: ['true'], resources: { gpu: 8 } });
    const err = await handle.result().catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(10_000);
    const cause = (err as WorkflowFailedError).cause as ApplicationFailure;
    expect(cause.type).toBe('Unschedulable');
    expect(cause.message).toMatch(/gpu 8.*largest node has gpu 4/);
    expect((await world.status()).queue).toHaveLength(0);
  });

  it('rejects invalid options before queueing, reporting every problem', async () => {
    const handle = await startStep({ name: 'bad', command: [], resources: { gpu: -1, memory: '8GB' } });
    const err = await handle.result().catch((e: unknown) => e);
    const cause = (err as WorkflowFailedError).cause as ApplicationFailure;
    expect(cause.type).toBe('InvalidInput');
    expect(cause.message).toContain('command');
    expect(cause.message).toContain('resources.gpu');
    expect(cause.message).toContain('resources.memory');
    expect(cause.message).toContain('"8GB"');
  });

  it('on cancellation ends the process group and frees the GPUs', async () => {
    const handle = await startStep({
      name: 'sleeper',
      command: ['sh', '-c', 'trap "" TERM; sleep 60 & wait'],
      resources: { gpu: 1 },
      gracePeriodMs: 1000,
    });
    const pid = await eventually(async () => {
      const d = await handle.describe();
      return d.status.name === 'RUNNING' && (await world.status()).leases.length > 0 ? true : undefined;
    });
    expect(pid).toBe(true);
    await new Promise((r) => setTimeout(r, 1500));
    await handle.cancel();
    await expect(handle.result()).rejects.toThrow();
    await expectAllFree();
  });

  it('never runs more steps than there are GPUs, and never two on one GPU', async () => {
    const steps: StepInput[] = Array.from({ length: 6 }, (_, i) => ({
      name: `par${i}`,
      pool: world.pool,
      command: [
        'sh',
        '-c',
        'echo "$(date +%s%N) $CUDA_VISIBLE_DEVICES" > "$ALLOT_OUTPUT.t"; sleep 1; printf "{\\"start\\": %s, \\"end\\": %s, \\"gpus\\": \\"%s\\"}" $(cut -d" " -f1 "$ALLOT_OUTPUT.t") $(date +%s%N) "$CUDA_VISIBLE_DEVICES" > "$ALLOT_OUTPUT"',
      ],
      resources: { gpu: 2 },
    }));
    const results: StepResult[] = await world.client.workflow.execute('parallelSteps', {
      taskQueue: world.taskQueue,
      workflowId: `par-${Date.now()}`,
      args: [steps],
    });
    const runs = results.map((r) => ({
      start: Number(r.outputs.start),
      end: Number(r.outputs.end),
      gpus: String(r.outputs.gpus).split(','),
    }));
    expect(maxConcurrent(runs)).toBe(2);
    expect(sharedGpus(runs)).toEqual([]);
    await expectAllFree();
  });

  it('holds resources.custom on the node that offers it: two steps asking for its one nvme slot run one after the other', async () => {
    const { nodeId: nvmeNode } = await world.addAgent({ gpus: [], custom: { nvme: 1 } });
    const command = [
      'sh',
      '-c',
      's=$(date +%s%N); sleep 1; e=$(date +%s%N); echo "{\\"nvme\\": \\"$ALLOT_RESOURCE_NVME\\", \\"start\\": $s, \\"end\\": $e}" > "$ALLOT_OUTPUT"',
    ];
    const handles = await Promise.all(
      ['nvme-a', 'nvme-b'].map((name) => startStep({ name, command, resources: { cpu: 1, custom: { nvme: 1 } } })),
    );
    // While they run, the pool's lease holds the slot, and the node shows it taken.
    const held = await eventually(
      async () => {
        const s = await world.status();
        const lease = s.leases.find((l) => l.custom?.nvme);
        return lease ? { lease, node: s.nodes.find((n) => n.id === nvmeNode) } : undefined;
      },
      20_000,
      'a lease holding the nvme slot',
    );
    expect(held.lease).toMatchObject({ nodeId: nvmeNode, custom: { nvme: 1 } });
    expect(held.node?.custom).toEqual({ nvme: { capacity: 1, used: 1 } });

    const results: StepResult[] = await Promise.all(handles.map((h) => h.result()));
    for (const r of results) {
      expect(r.nodeId).toBe(nvmeNode);
      expect(r.outputs.nvme).toBe('1');
    }
    const runs = results.map((r) => ({ start: Number(r.outputs.start), end: Number(r.outputs.end), gpus: [] }));
    expect(maxConcurrent(runs)).toBe(1);
    // The accounting record of each step says what it held.
    for (const h of handles) {
      const memo = (await h.describe()).memo?.[ACCOUNTING_MEMO] as AccountingRecord | undefined;
      expect(memo?.leases.map((l) => l.custom)).toEqual([{ nvme: 1 }]);
    }
    await expectAllFree();
  });
});
