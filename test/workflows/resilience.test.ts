/**
 * Crashes the pool must survive without leaks: a terminated step, and an agent killed with -9.
 */
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { poolWorkflowId, setHealthPolicyUpdate } from '../../src/workflows/messages';
import type { StepResult } from '../../src/workflows/step-types';
import { startAllot } from '../helpers/cli';
import type { World } from '../helpers/harness';
import { createWorld, eventually, gpus } from '../helpers/harness';

let world: World;

beforeAll(async () => {
  world = await createWorld('resilience');
  await world.client.workflow.getHandle(poolWorkflowId(world.pool)).executeUpdate(setHealthPolicyUpdate, {
    // A short node-lost time: a step whose agent vanished runs again only once the node is lost.
    args: [{ leaseTtlMs: 3_000, nodeNotReadyAfterMs: 3_000, nodeLostAfterMs: 30_000 }],
  });
});
afterAll(async () => world?.close());

describe('no leaks under crashes', () => {
  it('frees the GPUs of a terminated step within the lease TTL', async () => {
    await world.addAgent({ gpus: gpus(2) });
    const handle = await world.client.workflow.start('allotStep', {
      taskQueue: world.taskQueue,
      workflowId: `terminated-${Date.now()}`,
      args: [{ name: 'doomed', pool: world.pool, command: ['sleep', '60'], resources: { gpu: 2 } }],
    });
    await eventually(async () => ((await world.status()).leases.length === 1 ? true : undefined));
    await handle.terminate('testing lease expiry');
    const terminatedAt = Date.now();
    await eventually(
      async () => ((await world.status()).leases.length === 0 ? true : undefined),
      15_000,
      'lease to expire',
    );
    expect(Date.now() - terminatedAt).toBeLessThan(3_000 + 4_000);
    for (const a of world.agents) a.worker.shutdown();
    await Promise.allSettled(world.agents.map((a) => a.done));
    world.agents.length = 0;
  });

  // The step cannot tell a dead agent from one cut off: it runs again once the node is lost, by
  // when a cut-off agent has stopped the workload itself.
  it('runs a step again elsewhere after its agent is killed with -9, never on two nodes at once', async () => {
    const nodeA = `${world.pool}-proc`;
    const agentProcess = await startAllot(
      [
        'agent',
        '--pool',
        world.pool,
        '--node-id',
        nodeA,
        '--gpus',
        '1',
        '--cpu',
        '4',
        '--memory',
        '8Gi',
        '--data-dir',
        path.join(world.dataDir, 'agents'),
      ],
      /registered with pool/,
      { TEMPORAL_ADDRESS: inject('temporalAddress') },
    );
    const marks = path.join(world.dataDir, 'marks.txt');
    const handle = await world.client.workflow.start('allotStep', {
      taskQueue: world.taskQueue,
      workflowId: `survivor-${Date.now()}`,
      args: [
        {
          name: 'survivor',
          pool: world.pool,
          command: [
            'sh',
            '-c',
            `echo "start $ALLOT_ATTEMPT $ALLOT_NODE_ID $(date +%s%N)" >> ${marks}; sleep 4; echo "end $ALLOT_ATTEMPT $ALLOT_NODE_ID $(date +%s%N)" >> ${marks}`,
          ],
          resources: { gpu: 1 },
        },
      ],
    });
    await eventually(
      () => (existsSync(marks) && readFileSync(marks, 'utf8').includes('start 1') ? true : undefined),
      20_000,
      'first attempt to start',
    );
    agentProcess.child.kill('SIGKILL');
    const { nodeId: nodeB } = await world.addAgent({ gpus: gpus(1) });
    const result: StepResult = await handle.result();
    expect(result.nodeId).toBe(nodeB);
    const lines = readFileSync(marks, 'utf8').trim().split('\n');
    expect(lines.filter((l) => l.startsWith('end 1'))).toEqual([]);
    expect(lines.some((l) => l.startsWith(`start 2 ${nodeB}`))).toBe(true);
    const status = await world.status();
    expect(status.nodes.find((n) => n.id === nodeA)?.status).toBe('NotReady');
    expect(status.leases).toEqual([]);
  }, 120_000);

  it('runs a step again when its agent stops without draining (allot dev stopped mid-step)', async () => {
    // Only the agents of this test: the ones earlier tests started could take the step.
    for (const a of world.agents) if (a.worker.getState() === 'RUNNING') a.worker.shutdown();
    await Promise.allSettled(world.agents.map((a) => a.done));
    world.agents.length = 0;
    const { agent, nodeId: first } = await world.addAgent({ gpus: gpus(1) });
    // The stopped agents' nodes stay Ready until their heartbeats are missed (3 s here): a step
    // placed before that could go to one of them and wait there for a launch no one takes.
    await eventually(
      async () =>
        (await world.status()).nodes.every((n) => n.id === first || n.status !== 'Ready') ? true : undefined,
      20_000,
      'the stopped agents to be NotReady',
    );
    const handle = await world.client.workflow.start('allotStep', {
      taskQueue: world.taskQueue,
      workflowId: `stopped-${Date.now()}`,
      args: [
        { name: 'stopped', pool: world.pool, command: ['sleep', '12'], resources: { gpu: 1 }, gracePeriodMs: 500 },
      ],
    });
    await eventually(
      async () => ((await world.status()).leases.some((l) => l.nodeId === first) ? true : undefined),
      60_000,
      'step running',
    );
    agent.worker.shutdown();
    await agent.done.catch(() => undefined);
    const { nodeId: second } = await world.addAgent({ gpus: gpus(1) });
    const result = (await handle.result()) as StepResult;
    expect(result.nodeId).toBe(second);
  }, 240_000);
});
