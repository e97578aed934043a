/**
 * The launch activity with real processes: memory and time limits, usage sampling (with a fake
 * nvidia-smi for the GPU measures), signals, heartbeats, and cgroup limits written to a fake
 * cgroup tree.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterEach, describe, expect, it } from 'vitest';
import type { AgentContext, LaunchFailureDetails } from '../../src/activities';
import { createActivities, LeaseLedger, prepareCgroups } from '../../src/activities';
import { GpuSampler } from '../../src/workers/detect/gpu-sampler';
import type { LaunchInput, LaunchResult } from '../../src/workflows/step-types';
import type { Lease } from '../../src/core';
import { tempDir } from '../helpers/temp';
import { alive } from '../helpers/processes';

const FAKES = path.resolve(__dirname, '../fixtures/nvidia-smi');
const ORIGINAL_PATH = process.env.PATH ?? '';
let seq = 0;

const quiet = {
  log: () => undefined,
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

/** Runs the launch activity in a mock activity environment. */
function run(ctx: AgentContext, launch: LaunchInput): Promise<LaunchResult> {
  return mockEnv().run(createActivities(ctx).launch, launch) as Promise<LaunchResult>;
}

/** An activity environment that keeps the expected failures out of the test output. */
function mockEnv(): MockActivityEnvironment {
  return new MockActivityEnvironment(undefined, { logger: quiet });
}

afterEach(() => {
  process.env.PATH = ORIGINAL_PATH;
});

function context(extra: Partial<AgentContext> = {}): AgentContext {
  return {
    nodeId: 'n1',
    dataDir: tempDir('launch'),
    ledger: new LeaseLedger(),
    heartbeatMs: 100,
    sampleMs: 100,
    ...extra,
  };
}

function input(command: string[], extra: Partial<LaunchInput> = {}): LaunchInput {
  seq += 1;
  return {
    stepId: `launch-test/${seq}`,
    name: `step-${seq}`,
    attempt: 1,
    leaseId: `lease-${seq}`,
    command,
    env: {},
    gpuIndices: [],
    gracePeriodMs: 500,
    ...extra,
  };
}

async function failure(p: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApplicationFailure);
  return err as ApplicationFailure;
}

/** Python that grows its memory by 20 MiB every 50 ms, printing its pid first. */
const MEMORY_HOG = [
  'python3',
  '-c',
  [
    'import os, sys, time',
    'print("pid", os.getpid(), flush=True)',
    'chunks = []',
    'for i in range(150):',
    '    chunks.append(b"\\x01" * (20 << 20))',
    '    time.sleep(0.05)',
    'print("survived", flush=True)',
  ].join('\n'),
];

describe('memory limit (polling: this machine has no cgroup v2 memory controller)', () => {
  it('kills a workload past its limit and fails as MemoryLimitExceeded with the peak and the limit', async () => {
    const ctx = context();
    const launch = input(MEMORY_HOG, { memoryLimitMiB: 200 });
    const err = await failure(run(ctx, launch));
    expect(err.type).toBe('MemoryLimitExceeded');
    expect(err.nonRetryable).toBe(true);
    const details = err.details?.[0] as LaunchFailureDetails;
    expect(details.limitMiB).toBe(200);
    expect(details.peakMiB).toBeGreaterThan(200);
    expect(err.message).toMatch(/used \d+(\.\d+)?(Mi|Gi) of memory \(peak\), over its limit of 200Mi/);
    expect(details.signal).toBe('SIGKILL');
    expect(details.usage?.memoryEnforcement).toBe('polling');
    // The workload is gone, its log says why, and the node's ledger holds nothing.
    const log = readFileSync(details.logFile, 'utf8');
    const pid = Number(/pid (\d+)/.exec(log)?.[1]);
    expect(alive(pid)).toBe(false);
    expect(log).not.toContain('survived');
    expect(log).toContain('allot: step');
    expect(ctx.ledger.list()).toEqual([]);
  });

  it('leaves a workload under its limit alone', async () => {
    const ctx = context();
    const launch = input(['python3', '-c', 'x = b"\\x01" * (50 << 20); print(len(x))'], { memoryLimitMiB: 400 });
    const result = await run(ctx, launch);
    expect(result.exitCode).toBe(0);
    expect(result.usage?.memoryMiB?.peak ?? 0).toBeLessThan(400);
  });
});

describe('time limit', () => {
  it('stops a workload at its time limit and fails as TimeLimitExceeded', async () => {
    const ctx = context();
    const started = Date.now();
    const err = await failure(run(ctx, input(['sleep', '30'], { timeLimitMs: 300, gracePeriodMs: 200 })));
    expect(err.type).toBe('TimeLimitExceeded');
    expect(err.message).toContain('time limit of 300ms');
    expect((err.details?.[0] as LaunchFailureDetails).signal).toBe('SIGTERM');
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('sends SIGKILL after the grace period to a workload that ignores SIGTERM', async () => {
    const ctx = context();
    const err = await failure(
      run(
        ctx,
        input(['sh', '-c', 'trap "" TERM; sleep 30 & wait; sleep 30'], { timeLimitMs: 200, gracePeriodMs: 300 }),
      ),
    );
    expect(err.type).toBe('TimeLimitExceeded');
    expect((err.details?.[0] as LaunchFailureDetails).signal).toBe('SIGKILL');
  });
});

describe('usage', () => {
  it('samples CPU and memory: mean and peak in the result, beside what was requested', async () => {
    const ctx = context();
    const requested = { cpu: 1, memoryMiB: 512, gpu: 0 };
    const busy = [
      'python3',
      '-c',
      'import time\nx = b"\\x01" * (80 << 20)\nt = time.time()\nwhile time.time() - t < 1.5: pass',
    ];
    const result = await run(ctx, input(busy, { requested }));
    const usage = result.usage;
    expect(usage?.samples).toBeGreaterThanOrEqual(5);
    // A busy loop: well above an idle process even on a loaded machine (tests run in parallel).
    expect(usage?.cpuCores?.peak).toBeGreaterThan(0.3);
    expect(usage?.cpuCores?.mean).toBeGreaterThan(0.1);
    expect(usage?.memoryMiB?.peak).toBeGreaterThan(80);
    expect(usage?.memoryMiB?.peak).toBeLessThan(300);
    expect(usage?.requested).toEqual(requested);
    expect(usage?.gpuUtilPercent).toBeUndefined();
  });

  it('sees an idle workload as using next to no CPU', async () => {
    const result = await run(context(), input(['sleep', '1']));
    expect(result.usage?.cpuCores?.mean).toBeLessThan(0.05);
    expect(result.usage?.memoryMiB?.peak).toBeLessThan(20);
  });

  it('samples GPU utilization and GPU memory from nvidia-smi (a fake 1×H100)', async () => {
    process.env.PATH = [path.join(FAKES, 'h100x1'), ORIGINAL_PATH].join(path.delimiter);
    const ctx = context({ gpu: new GpuSampler(200) });
    const result = await run(
      ctx,
      input(['sleep', '3'], { gpuIndices: [0], env: { FAKE_GPU_MEMORY_MIB: '2048', FAKE_GPU_UTIL: '80' } }),
    );
    expect(result.usage?.gpuMemoryMiB?.peak).toBe(2048);
    expect(result.usage?.gpuUtilPercent?.peak).toBe(80);
  });

  it('heartbeats the log file, its last lines and the usage so far', async () => {
    const ctx = context();
    const env = mockEnv();
    const beats: Record<string, unknown>[] = [];
    env.on('heartbeat', (d: Record<string, unknown>) => beats.push(d));
    await env.run(createActivities(ctx).launch, input(['sh', '-c', 'echo hello; sleep 0.6']));
    const last = beats[beats.length - 1] as { logFile: string; logTail: string[]; usage: { samples: number } };
    expect(last.logFile).toMatch(/attempt-1\.log$/);
    expect(last.logTail).toEqual(['hello']);
    expect(last.usage.samples).toBeGreaterThan(0);
  });
});

describe('exit', () => {
  it('reports a death by signal by the signal name', async () => {
    const result = await run(context(), input(['sh', '-c', 'kill -SEGV $$']));
    expect(result.exitCode).toBeNull();
    expect(result.signal).toBe('SIGSEGV');
  });

  it('turns JSON written to $ALLOT_OUTPUT into outputs', async () => {
    const result = await run(context(), input(['sh', '-c', 'echo \'{"loss": 0.25}\' > "$ALLOT_OUTPUT"']));
    expect(result.outputs).toEqual({ loss: 0.25 });
  });

  it('hands a running step back when the agent stops, after SIGTERM', async () => {
    const handback = new AbortController();
    const ctx = context({ handback: handback.signal });
    setTimeout(() => handback.abort(), 300);
    const err = await failure(run(ctx, input(['sleep', '30'])));
    expect(err.type).toBe('NodeDraining');
    expect(ctx.ledger.list()).toEqual([]);
  });
});

describe('cgroup v2 limits (a fake cgroup tree)', () => {
  function fakeTree(): { root: string; selfFile: string; own: string } {
    const root = tempDir('cgroup');
    const own = path.join(root, 'system.slice', 'allot.service');
    mkdirSync(own, { recursive: true });
    writeFileSync(path.join(root, 'cgroup.controllers'), 'cpuset cpu io memory pids\n');
    writeFileSync(path.join(own, 'cgroup.controllers'), 'cpu memory pids\n');
    writeFileSync(path.join(own, 'cgroup.subtree_control'), '\n');
    writeFileSync(path.join(own, 'cgroup.procs'), '1234\n');
    const selfFile = path.join(root, 'self-cgroup');
    writeFileSync(selfFile, '0::/system.slice/allot.service\n');
    return { root, selfFile, own };
  }

  it('moves the agent into a leaf and delegates the memory and cpu controllers', () => {
    const { root, selfFile, own } = fakeTree();
    const support = prepareCgroups({ root, selfFile, pid: 4321 });
    expect(support).toEqual({ available: true, parent: { dir: own, cpu: true } });
    expect(readFileSync(path.join(own, 'allot-agent', 'cgroup.procs'), 'utf8')).toBe('4321');
    expect(readFileSync(path.join(own, 'cgroup.subtree_control'), 'utf8')).toBe('+memory +cpu');
  });

  it('says why when the machine has no cgroup v2 hierarchy (as here: cgroup v1)', () => {
    const support = prepareCgroups({ root: tempDir('nocg') });
    expect(support.available).toBe(false);
    expect(support.available ? '' : support.why).toMatch(/no cgroup v2 hierarchy/);
  });

  it('puts the workload in a cgroup of its own with memory.max and cpu.max, and reads OOM kills as MemoryLimitExceeded', async () => {
    const { root, selfFile, own } = fakeTree();
    const ctx = context({ cgroups: prepareCgroups({ root, selfFile, pid: 4321 }) });
    const launch = input([], { memoryLimitMiB: 256, cpuLimitMilli: 1500 });
    const dir = path.join(own, `allot-${launch.leaseId}`);
    // The kernel would kill the group at memory.max and count it in memory.events: play both parts.
    launch.command = ['sh', '-c', `echo "oom_kill 1" > ${dir}/memory.events; kill -KILL $$`];
    const err = await failure(run(ctx, launch));
    expect(err.type).toBe('MemoryLimitExceeded');
    expect(err.message).toContain('memory limit of 256Mi');
    expect(readFileSync(path.join(dir, 'memory.max'), 'utf8')).toBe(String(256 * 1024 * 1024));
    expect(readFileSync(path.join(dir, 'memory.oom.group'), 'utf8')).toBe('1');
    expect(readFileSync(path.join(dir, 'memory.swap.max'), 'utf8')).toBe('0');
    expect(readFileSync(path.join(dir, 'cpu.max'), 'utf8')).toBe('150000 100000');
    expect(Number(readFileSync(path.join(dir, 'cgroup.procs'), 'utf8'))).toBeGreaterThan(1);
    expect(readFileSync(path.join(dir, 'cgroup.kill'), 'utf8')).toBe('1');
    expect((err.details?.[0] as LaunchFailureDetails).usage?.memoryEnforcement).toBe('cgroup');
    expect(existsSync(dir)).toBe(true);
  });
});

describe('fencing: a launch runs only on exactly the lease its own pool holds', () => {
  const marker = (): string => path.join(tempDir('fence'), 'ran');
  const lease = (over: Partial<Lease> = {}): Lease => ({
    leaseId: 'lease-f',
    requestId: 'req-f',
    owner: { kind: 'workflow', workflowId: 'fence/step' },
    nodeId: 'n1',
    cpuMilli: 1000,
    memoryMiB: 1024,
    gpus: [{ index: 0, milli: 1000, memoryMiB: 0 }],
    priority: 0,
    team: 'default',
    label: 'step',
    submittedAt: 0,
    grantedAt: 0,
    ...over,
  });
  const launchOf = (file: string, over: Partial<LaunchInput> = {}): LaunchInput => ({
    ...input(['sh', '-c', `touch ${file}`]),
    stepId: 'fence/step',
    leaseId: 'lease-f',
    requestId: 'req-f',
    pool: 'real',
    gpuIndices: [0],
    requested: { gpu: 1, cpu: 1, memoryMiB: 1024 },
    ...over,
  });
  const refused = async (held: Lease | null, over: Partial<LaunchInput>, why: RegExp): Promise<void> => {
    const file = marker();
    const err = await failure(
      run(context({ pool: 'real', lookupLease: () => Promise.resolve(held) }), launchOf(file, over)),
    );
    expect(err.type).toBe('StaleLease');
    expect(err.message).toMatch(why);
    expect(existsSync(file)).toBe(false);
  };

  it('runs when the lease matches', async () => {
    const file = marker();
    const r = await run(context({ pool: 'real', lookupLease: () => Promise.resolve(lease()) }), launchOf(file));
    expect(r.exitCode).toBe(0);
    expect(existsSync(file)).toBe(true);
  });

  it('refuses a launch that names another pool, whatever that pool says', async () => {
    await refused(lease(), { pool: 'x' }, /the launch names pool "x", and this agent serves pool real/);
  });

  it('refuses a lease its pool holds for another node', async () => {
    await refused(lease({ nodeId: 'n2' }), {}, /the pool holds it for node n2/);
  });

  it('refuses a launch on other GPUs than the lease holds', async () => {
    await refused(lease(), { gpuIndices: [1] }, /the pool granted GPUs 0, and the launch asks for 1/);
    await refused(
      lease({ gpus: [{ index: 0, milli: 500, memoryMiB: 0 }] }),
      {},
      /the pool granted GPUs 0 \(0\.5 of it\)/,
    );
  });

  it('refuses more CPU or memory than the lease holds', async () => {
    await refused(
      lease(),
      { requested: { gpu: 1, cpu: 4, memoryMiB: 1024 } },
      /granted 1000m CPU, and the launch asks for 4000m/,
    );
  });

  it('refuses a lease its pool does not hold, or a pool that does not answer', async () => {
    await refused(null, {}, /the pool holds no such lease/);
    const file = marker();
    const err = await failure(
      run(
        context({ pool: 'real', fencingWaitMs: 300, lookupLease: () => Promise.reject(new Error('unavailable')) }),
        launchOf(file),
      ),
    );
    expect(err.type).toBe('FencingUnavailable');
    expect(existsSync(file)).toBe(false);
  });
});
