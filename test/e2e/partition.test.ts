/**
 * A network partition between one agent and the Temporal server, end to end: a TCP proxy the test
 * controls sits between the agent (a process of its own) and the server, and is cut while the
 * agent's step runs. The agent must stop the workload before the pool declares its node lost; the
 * step must run to completion on another node; at no moment may two copies run (from the
 * workloads' own records); and when the proxy heals, the agent registers again and nothing it held
 * is granted twice.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { PartitionProxy } from '../../src/chaos/proxy';
import { poolWorkflowId, setHealthPolicyUpdate } from '../../src/workflows/messages';
import type { StepResult } from '../../src/workflows/step-types';
import { startAllot } from '../helpers/cli';
import type { World } from '../helpers/harness';
import { createWorld, eventually, gpus } from '../helpers/harness';

const NODE_LOST_MS = 30_000;

let world: World;
let proxy: PartitionProxy;
let agentProcess: Awaited<ReturnType<typeof startAllot>> | undefined;

beforeAll(async () => {
  world = await createWorld('partition');
  await world.client.workflow.getHandle(poolWorkflowId(world.pool)).executeUpdate(setHealthPolicyUpdate, {
    args: [{ nodeNotReadyAfterMs: 10_000, nodeLostAfterMs: NODE_LOST_MS }],
  });
  const [host, port] = inject('temporalAddress').split(':');
  proxy = new PartitionProxy({ host: host ?? '127.0.0.1', port: Number(port) });
  await proxy.start();
});

afterAll(async () => {
  agentProcess?.child.kill('SIGKILL');
  await proxy?.close();
  await world?.close();
});

interface Mark {
  kind: string;
  attempt: number;
  node: string;
  at: number;
}

function readMarks(file: string): Mark[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const [kind, attempt, node, at] = l.split(' ');
      return { kind: kind ?? '', attempt: Number(attempt), node: node ?? '', at: Number(at) };
    });
}

describe('a partition between an agent and Temporal', () => {
  it('stops the workload before the node is lost, runs the step elsewhere, never two at once, and re-registers', async () => {
    const nodeA = `${world.pool}-cut`;
    agentProcess = await startAllot(
      [
        'agent',
        ...['--pool', world.pool, '--node-id', nodeA, '--gpus', '1', '--cpu', '4', '--memory', '8Gi'],
        ...['--data-dir', path.join(world.dataDir, 'agents')],
      ],
      /registered with pool/,
      { TEMPORAL_ADDRESS: proxy.address },
    );
    const marks = path.join(world.dataDir, 'marks.txt');
    // The workload records its start, a tick every 200 ms while it runs, and its end (20 s of work).
    const script =
      `echo "start $ALLOT_ATTEMPT $ALLOT_NODE_ID $(date +%s%3N)" >> ${marks}; i=0; ` +
      `while [ $i -lt 100 ]; do echo "tick $ALLOT_ATTEMPT $ALLOT_NODE_ID $(date +%s%3N)" >> ${marks}; sleep 0.2; i=$((i+1)); done; ` +
      `echo "end $ALLOT_ATTEMPT $ALLOT_NODE_ID $(date +%s%3N)" >> ${marks}`;
    const handle = await world.client.workflow.start('allotStep', {
      taskQueue: world.taskQueue,
      workflowId: `partitioned-${Date.now()}`,
      args: [{ name: 'partitioned', pool: world.pool, command: ['sh', '-c', script], resources: { gpu: 1 } }],
    });
    await eventually(
      () => (readMarks(marks).some((m) => m.kind === 'tick') ? true : undefined),
      60_000,
      'the step to run',
    );
    const cutAt = Date.now();
    proxy.partition();
    const { nodeId: nodeB } = await world.addAgent({ gpus: gpus(1) });

    const result: StepResult = await handle.result();
    expect(result.nodeId).toBe(nodeB);
    const all = readMarks(marks);
    const first = all.filter((m) => m.attempt === 1);
    const second = all.filter((m) => m.attempt === 2);
    expect(first.every((m) => m.node === nodeA)).toBe(true);
    expect(first.some((m) => m.kind === 'end')).toBe(false);
    const firstLast = Math.max(...first.map((m) => m.at));
    // The agent fences itself by two thirds of the node-lost time after its last contact; the
    // pool declares the node lost no sooner than the node-lost time after the last heartbeat it
    // took (at most a heartbeat interval, 3.3 s here, before the cut).
    expect(firstLast).toBeLessThan(cutAt + NODE_LOST_MS - NODE_LOST_MS / 9);
    // Never two copies at once: the second starts after the first's last sign of life.
    const secondStart = Math.min(...second.filter((m) => m.kind === 'start').map((m) => m.at));
    expect(second.every((m) => m.node === nodeB)).toBe(true);
    expect(secondStart).toBeGreaterThan(firstLast);
    expect(second.some((m) => m.kind === 'end')).toBe(true);

    proxy.heal();
    await eventually(
      () => (/registered node \S+ with pool \S+ again/.test(agentProcess?.output() ?? '') ? true : undefined),
      60_000,
      'the cut-off agent to register again',
    );
    expect(agentProcess.output()).toMatch(/cannot reach Temporal for \d+ s: stopping workloads/);
    const status = await eventually(async () => {
      const s = await world.status();
      return s.nodes.find((n) => n.id === nodeA)?.status === 'Ready' ? s : undefined;
    }, 30_000);
    // Nothing the agent held is held twice: no lease left, and its ledger holds nothing.
    expect(status.leases).toEqual([]);
    const ledger = path.join(world.dataDir, 'agents', nodeA, 'ledger.json');
    const claims = existsSync(ledger) ? (JSON.parse(readFileSync(ledger, 'utf8')) as { claims?: unknown[] }) : {};
    expect(claims.claims ?? []).toEqual([]);
  }, 240_000);
});
