/**
 * Multi-node steps as a user runs them: `allot dev --gpus 0` and two agents with two GPUs each
 * (separate processes and data dirs), and gangs of two replicas of a real distributed program
 * (`examples/multi-node/allreduce.py`, which rendezvous at MASTER_ADDR:MASTER_PORT over TCP and
 * all-reduces a value). A gang runs together, fails together, waits until it fits whole, is
 * rejected at once when it never can, and after a preemption resumes from replica 0's checkpoint.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { latestCheckpoint } from '../../src/activities/checkpoint-sync';
import { openStore } from '../../src/store';
import { checkpointBlobPrefix } from '../../src/store/layout';
import type { Store } from '../../src/store/types';
import type { StepProgress, StepResult } from '../../src/workflows/step-types';
import type { DevRun } from '../helpers/cli';
import { REPO_ROOT, allot, startAllot, startDev, stopAllot } from '../helpers/cli';
import { eventually } from '../helpers/harness';
import { tempDir } from '../helpers/temp';

type Run = Awaited<ReturnType<typeof startAllot>>;

let work: string;
let run: DevRun;
let client: Client;
const agents = new Map<string, Run>();
const ALLREDUCE = path.join(REPO_ROOT, 'examples/multi-node/allreduce.py');

/** What each replica of allreduce.py prints last (and writes to its ALLOT_OUTPUT). */
interface ReplicaReport {
  rank: number;
  worldSize: number;
  sum: number;
  resumedFrom: number;
  node: string;
  gangId: string;
  cudaVisibleDevices: string;
  localWorldSize: number;
}

interface StatusJson {
  nodes: { id: string; address?: string; gpus: { index: number; used: number }[] }[];
  leases: { step: string; nodeId: string; replica?: number; replicas?: number }[];
  queue: { step: string; replicas?: number; reason: string; message: string }[];
}

async function status(): Promise<StatusJson> {
  const r = await allot(['status', '--json'], run.env);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as StatusJson;
}

/** The report of each replica, from its log's last line, by rank. */
function reports(result: StepResult): ReplicaReport[] {
  return (result.replicas ?? []).map((r) => {
    // Its own last line: allot's lines about the checkpoint may follow it.
    const lines = readFileSync(r.logFile as string, 'utf8')
      .trim()
      .split('\n');
    return JSON.parse(lines.filter((l) => l.startsWith('{')).pop() as string) as ReplicaReport;
  });
}

/** Whether a process of allreduce.py with `marker` in its arguments still runs on this machine. */
function running(marker: string): boolean {
  try {
    execFileSync('pgrep', ['-f', `allreduce.py.*${marker}`]);
    return true;
  } catch {
    return false;
  }
}

/** The epoch the store holds in the gang's checkpoint, 0 when none. */
async function storedEpoch(store: Store, stepId: string): Promise<number> {
  const m = (await latestCheckpoint(store, stepId))?.manifest;
  const file = m?.files.find((f) => f.path === 'allreduce.json');
  if (!file) return 0;
  const local = path.join(work, `peek-${Date.now()}.json`);
  await store.getFile(`${checkpointBlobPrefix(stepId)}${file.sha256}`, local);
  return Number((JSON.parse(readFileSync(local, 'utf8')) as { epoch: number }).epoch);
}

beforeAll(async () => {
  work = tempDir('gang');
  run = await startDev(work, ['--gpus', '0', '--cpu', '4', '--memory', '8Gi']);
  client = new Client({ connection: await Connection.connect({ address: run.env.TEMPORAL_ADDRESS as string }) });
  for (const id of ['gpu-a', 'gpu-b']) await startAgent(id);
}, 240_000);

/** Starts (or starts again) the agent of node `id`: two GPUs, its own data dir. */
async function startAgent(id: string): Promise<void> {
  const flags = ['--gpus', '2', '--cpu', '4', '--memory', '8Gi', '--data-dir', path.join(work, id)];
  const agent = await startAllot(
    ['agent', '--node-id', id, ...flags, '--checkpoint-sync', '0.5', '--advertise-address', '127.0.0.1'],
    /registered with pool/,
    run.env,
  );
  agents.set(id, agent);
}

/** The pid of the allreduce.py replica of this rank whose arguments hold `marker`. */
function replicaPid(marker: string, rank: number): number | undefined {
  let pids: number[];
  try {
    pids = execFileSync('pgrep', ['-f', `allreduce.py.*${marker}`])
      .toString()
      .trim()
      .split('\n')
      .map(Number);
  } catch {
    return undefined;
  }
  return pids.find((pid) => {
    try {
      return readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(`RANK=${rank}`);
    } catch {
      return false;
    }
  });
}

afterAll(async () => {
  for (const a of agents.values()) if (a.child.exitCode === null && a.child.signalCode === null) await stopAllot(a);
  await client?.connection.close();
  await stopAllot(run?.dev);
});

describe('multi-node steps', () => {
  it('runs a gang of two on two nodes: the replicas rendezvous, all-reduce, and hold disjoint GPUs', async () => {
    const r = await allot(
      ['submit', '--json', '--name', 'allreduce', '--replicas', '2', '--gpu', '2', '--', 'python3', ALLREDUCE],
      run.env,
    );
    expect(r.code, r.stderr).toBe(0);
    const { result } = JSON.parse(r.stdout) as { result: StepResult };
    const got = reports(result);
    expect(got.map((x) => x.rank)).toEqual([0, 1]);
    expect(got.map((x) => x.worldSize)).toEqual([2, 2]);
    // Each replica adds rank + 1: both saw the sum of all.
    expect(got.map((x) => x.sum)).toEqual([3, 3]);
    expect(got[0]?.gangId).toBe(got[1]?.gangId);
    expect(got.map((x) => x.localWorldSize)).toEqual([2, 2]);
    // One replica per node, each on its own node's GPUs.
    const nodes = result.replicas?.map((x) => x.nodeId) ?? [];
    expect(new Set(nodes).size).toBe(2);
    expect(got.map((x) => x.node)).toEqual(nodes);
    for (const [i, x] of got.entries()) expect(x.cudaVisibleDevices).toBe(result.replicas?.[i]?.gpuIndices.join(','));
    // The step's own result is replica 0's.
    expect(result.nodeId).toBe(nodes[0]);
    expect(result.outputs).toMatchObject({ rank: 0, sum: 3 });
    const s = await status();
    expect(s.nodes.find((n) => n.id === 'gpu-a')?.address).toBe('127.0.0.1');
    // The Temporal UI finds the step by every node it ran on; its accounting counts every replica.
    const described = await client.workflow.getHandle(result.stepId).describe();
    expect(described.searchAttributes.AllotNode).toEqual([nodes.join(',')]);
    expect(described.searchAttributes.AllotGpus).toEqual([nodes.map((n) => `${n}:0,1`).join(' ')]);
    const accounting = described.memo?.allotAccounting as { leases: { nodeId: string; gpu: number }[] };
    expect(accounting.leases.map((l) => [l.nodeId, l.gpu])).toEqual(nodes.map((n) => [n, 2]));
    // allot logs shows replica 0's log, or another's with --replica.
    const zero = await allot(['logs', result.stepId], run.env);
    expect(zero.stdout).toContain('rank 0 of 2: rendezvous at 127.0.0.1:');
    expect(zero.stderr).toMatch(/replica 0, attempt 1 on node gpu-[ab]: exit 0/);
    const one = await allot(['logs', result.stepId, '--replica', '1'], run.env);
    expect(one.stdout).toContain('rank 1 of 2: epoch 1/1, sum 3');
    expect(one.stdout).not.toContain('rank 0 of 2');
  });

  it('one replica exiting 1 ends both: submit names replica 1, and every GPU is free within 10 s', async () => {
    const marker = `--timeout 301`;
    const r = await allot(
      ['submit', '--name', 'fails', '--replicas', '2', '--gpu', '2', '--', 'python3', ALLREDUCE]
        .concat(['--epochs', '100', '--epoch-seconds', '1', '--fail-rank', '1', '--fail-code', '3'])
        .concat(marker.split(' ')),
      run.env,
    );
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/fails: failed: step fails: replica 1 \(node gpu-[ab]\) exited with code 3/);
    expect(r.stderr).toContain('rank 1: failing on purpose with exit code 3');
    await eventually(async () => {
      const s = await status();
      const used = s.nodes.flatMap((n) => n.gpus).filter((g) => g.used > 0);
      return used.length === 0 && s.leases.length === 0 ? true : undefined;
    }, 10_000);
    expect(running('--timeout 301')).toBe(false);
  });

  it('runs the example multi-node pipeline', async () => {
    const r = await allot(['run', 'multiNodePipeline', '--input', '{"replicas": 2, "epochs": 2}', '--json'], run.env);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { result: { sum: number; replicas: { nodeId: string }[] } };
    expect(out.result.sum).toBe(3);
    expect(new Set(out.result.replicas.map((x) => x.nodeId)).size).toBe(2);
  });

  it('rejects at once a gang bigger than the cluster, naming the replicas and the largest fit', async () => {
    const r = await allot(['submit', '--name', 'huge', '--replicas', '3', '--gpu', '2', '--', 'true'], run.env);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('asks for 3 replicas on separate nodes, but at most 2 nodes can hold one');
  });

  it('waits while only one node is free, shown as one line, and starts when the second frees', async () => {
    const filler = await allot(['submit', '--gpu', '2', '--name', 'filler', '--no-wait', '--', 'sleep', '20'], run.env);
    expect(filler.code, filler.stderr).toBe(0);
    await eventually(async () => ((await status()).leases.some((l) => l.step === 'filler') ? true : undefined), 30_000);
    const gang = allot(
      ['submit', '--json', '--name', 'waits', '--replicas', '2', '--gpu', '2', '--', 'python3', ALLREDUCE],
      run.env,
    );
    const queued = await eventually(async () => (await status()).queue.find((q) => q.step === 'waits'), 30_000);
    expect(queued).toMatchObject({ replicas: 2, reason: 'Resources' });
    expect(queued.message).toContain('on separate nodes');
    const text = await allot(['status'], run.env);
    expect(text.stdout).toMatch(/waits \(2 replicas\)/);
    // No part of the gang is granted while it waits.
    expect((await status()).leases.filter((l) => l.step === 'waits')).toEqual([]);
    const r = await gang;
    expect(r.code, r.stderr).toBe(0);
    const { result } = JSON.parse(r.stdout) as { result: StepResult };
    expect(result.queuedMs).toBeGreaterThan(1000);
    expect(reports(result).map((x) => x.sum)).toEqual([3, 3]);
  });

  it('a replica whose node dies (agent and workload killed) makes the gang queue again, not fail, though its peer then fails', async () => {
    const store = openStore(`file://${path.join(work, 'dev', 'store')}`);
    const marker = '--timeout 302';
    const submitted = await allot(
      [
        'submit',
        '--json',
        '--no-wait',
        '--name',
        'survives',
        '--replicas',
        '2',
        '--gpu',
        '2',
        '--grace-period',
        '3',
      ].concat(['--', 'python3', ALLREDUCE, '--epochs', '10', '--epoch-seconds', '1', ...marker.split(' ')]),
      run.env,
    );
    expect(submitted.code, submitted.stderr).toBe(0);
    const { workflowId } = JSON.parse(submitted.stdout) as { workflowId: string };
    await eventually(async () => ((await storedEpoch(store, workflowId)) >= 2 ? true : undefined), 60_000);
    const progress = await client.workflow.getHandle(workflowId).query<StepProgress>('progress');
    const lostNode = progress.replicas?.[1]?.nodeId as string;
    const pid = replicaPid('--timeout 302', 1);
    expect(pid, 'replica 1 runs').toBeDefined();
    // The node dies: its agent and its workload with it. Replica 0 fails at once (its peer is gone).
    agents.get(lostNode)?.child.kill('SIGKILL');
    process.kill(pid as number, 'SIGKILL');
    await eventually(async () => {
      const p = await client.workflow.getHandle(workflowId).query<StepProgress>('progress');
      return p.state === 'queued' || p.state === 'running' ? undefined : p.state;
    }, 5_000).catch(() => undefined);
    // The agent comes back (the machine rebooted): the pool learns that replica 1 died with it.
    await startAgent(lostNode);
    const result = (await client.workflow.getHandle(workflowId).result()) as StepResult;
    expect(result.outputs).toMatchObject({ rank: 0, sum: 3 });
    for (const x of reports(result)) expect(x.resumedFrom).toBeGreaterThanOrEqual(2);
    const logs = await allot(['logs', workflowId, '--attempt', '2'], run.env);
    expect(logs.stderr).toContain('replica 0, attempt 2');
  }, 180_000);

  it('a higher-priority step preempting one replica stops both; the gang queues again and resumes from replica 0s checkpoint', async () => {
    const store = openStore(`file://${path.join(work, 'dev', 'store')}`);
    const submitted = await allot(
      ['submit', '--json', '--no-wait', '--name', 'resumes', '--preemptible', '--replicas', '2', '--gpu', '2'].concat([
        '--grace-period',
        '5',
        '--',
        'python3',
        ALLREDUCE,
        '--epochs',
        '12',
        '--epoch-seconds',
        '1',
      ]),
      run.env,
    );
    expect(submitted.code, submitted.stderr).toBe(0);
    const { workflowId } = JSON.parse(submitted.stdout) as { workflowId: string };
    const before = await eventually(async () => {
      const epoch = await storedEpoch(store, workflowId);
      return epoch >= 3 ? epoch : undefined;
    }, 60_000);
    const running1 = await client.workflow.getHandle(workflowId).query<StepProgress>('progress');
    expect(running1.replicas?.map((x) => x.nodeId).sort()).toEqual(['gpu-a', 'gpu-b']);
    const preemptor = await allot(
      ['submit', '--priority', '100', '--gpu', '2', '--name', 'urgent', '--', 'sleep', '2'],
      run.env,
    );
    expect(preemptor.code, preemptor.stderr).toBe(0);
    const result = (await client.workflow.getHandle(workflowId).result()) as StepResult;
    const got = reports(result);
    expect(got.map((x) => x.sum)).toEqual([3, 3]);
    // Every replica started again from replica 0's stored epoch, not from scratch.
    for (const x of got) expect(x.resumedFrom).toBeGreaterThanOrEqual(before);
    expect(result.outputs).toMatchObject({ rank: 0 });
    const log = readFileSync(result.replicas?.[1]?.logFile as string, 'utf8');
    expect(log).toContain('restored checkpoint from');
    expect(log).toContain(`rank 1: resuming from checkpoint at epoch`);
  });
});
