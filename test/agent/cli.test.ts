/**
 * The acceptance checks of the node agent as a new user runs them: `allot dev` with a metrics
 * port, then `allot submit`, `allot status`, `allot logs`, `curl /metrics`, and an `allot agent`
 * stopped with SIGTERM, each a process of its own.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn, spawnSync } from 'node:child_process';
import http from 'node:http';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALLOT_BIN, allot, freePort, startAllot, stopAllot } from '../helpers/cli';
import { eventually } from '../helpers/harness';
import { tempDir } from '../helpers/temp';
import { findTemporalCli } from '../../src/workers/temporal-cli';

let dev: { child: ChildProcess; output: () => string };
let env: NodeJS.ProcessEnv;
let work: string;
let metricsUrl: string;

beforeAll(async () => {
  work = tempDir('agent-cli');
  const [port, uiPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
  env = { TEMPORAL_ADDRESS: `127.0.0.1:${port}` };
  metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
  dev = await startAllot(
    [
      'dev',
      ...['--gpus', '1', '--gpu-model', 'H100', '--gpu-memory', '80Gi', '--cpu', '8', '--memory', '8Gi'],
      ...['--data-dir', path.join(work, 'dev'), '--node-id', 'local'],
      ...['--port', String(port), '--ui-port', String(uiPort), '--metrics-port', String(metricsPort)],
    ],
    /allot dev is up/,
  );
});

afterAll(() => stopAllot(dev));

function curl(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}

function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const body = line.slice(name.length + 1, line.lastIndexOf('}'));
    const got = Object.fromEntries([...body.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

interface StatusJson {
  nodes: {
    id: string;
    status: string;
    memoryMiB: { used: number };
    gpus: { index: number; used: number; holders: { label: string }[] }[];
  }[];
  leases: { step: string; owner: { workflowId: string }; usage?: { usage?: { memoryMiB?: { peak: number } } } }[];
  queue: { step: string; reason: string }[];
}

async function status(): Promise<StatusJson> {
  const r = await allot(['status', '--json'], env);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as StatusJson;
}

describe('the node agent, from the command line', () => {
  it('kills a step past its memory limit and reports MemoryLimitExceeded with peak and limit; the memory is free again', async () => {
    const hog =
      'import time\nx = []\nfor i in range(100):\n    x.append(b"\\x01" * (20 << 20)); print("allocated", (i + 1) * 20, flush=True); time.sleep(0.05)';
    const r = await allot(['submit', '--name', 'hog', '--memory', '200Mi', '--', 'python3', '-c', hog], env);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/used \d+(\.\d+)?(Mi|Gi) of memory \(peak\), over its limit of 200Mi/);
    const s = await status();
    expect(s.nodes[0]?.memoryMiB.used).toBe(0);
    expect(s.leases).toEqual([]);

    // Its log, with the reason at the end, and its usage beside its request.
    const id = /submitted (\S+)/.exec(r.stdout + r.stderr)?.[1] ?? '';
    const logs = await allot(['logs', id], env);
    expect(logs.code, logs.stderr).toBe(0);
    expect(logs.stdout).toContain('allocated 20');
    expect(logs.stdout).toMatch(/allot: step hog used .* over its limit of 200Mi/);
    expect(logs.stderr).toMatch(/failed; attempt 1 on node local: MemoryLimitExceeded/);
    expect(logs.stderr).toMatch(/usage: .*memory \d+(\.\d+)?Mi peak, .* of 200Mi asked/);
  });

  it('runs two gpu: 0.5 steps on GPU 0 at once while a third waits, and the metrics match allot status', async () => {
    // The halves run until the test opens the gate: however slow the machine, both still run
    // while it looks.
    const gate = path.join(work, 'halves-gate');
    const script =
      'echo "GPU $CUDA_VISIBLE_DEVICES share $ALLOT_GPU_FRACTION mps $CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"; ' +
      `while [ ! -e ${gate} ]; do sleep 0.2; done`;
    const ids: string[] = [];
    for (const name of ['half-a', 'half-b', 'half-c']) {
      const r = await allot(
        ['submit', '--no-wait', '--name', name, '--gpu', '0.5', '--memory', '64Mi', '--', 'sh', '-c', script],
        env,
      );
      expect(r.code, r.stderr).toBe(0);
      ids.push(/submitted (\S+)/.exec(r.stdout + r.stderr)?.[1] ?? '');
    }
    const s = await eventually(
      async () => {
        const st = await status();
        return st.nodes[0]?.gpus[0]?.used === 1 && st.queue.length === 1 && st.leases.length === 2 ? st : undefined;
      },
      15_000,
      'two halves on GPU 0 and one queued',
    );
    expect(s.nodes[0]?.gpus[0]?.holders.map((h) => h.label).sort()).toEqual(['half-a', 'half-b']);
    expect(s.queue[0]?.step).toBe('half-c');
    expect(s.queue[0]?.reason).toBe('Resources');

    // allot status shows what the running halves use, beside what they asked for.
    const human = await allot(['status'], env);
    expect(human.stdout).toMatch(/RUNNING\s+NODE\s+GPUS\s+CPU NOW\/ASKED\s+MEMORY NOW\/ASKED/);
    expect(human.stdout).toMatch(/half-a\s+local\s+0\(0\.5\)\s+\S+\/1\s+\S+\/64Mi/);

    const text = await eventually(
      async () => {
        const t = await curl(metricsUrl);
        return sample(t, 'allot_node_steps_running', { node: 'local' }) === 2 ? t : undefined;
      },
      10_000,
      'both halves running on the agent',
    );
    expect(sample(text, 'allot_pool_gpus', { pool: 'default', node: 'local', model: 'H100' })).toBe(1);
    expect(sample(text, 'allot_pool_gpus_allocated', { pool: 'default', node: 'local', model: 'H100' })).toBe(
      s.nodes[0]?.gpus[0]?.used,
    );
    expect(sample(text, 'allot_node_gpus_allocated', { node: 'local', model: 'H100' })).toBe(1);
    expect(sample(text, 'allot_pool_queue_length', { pool: 'default', team: 'default' })).toBe(s.queue.length);
    expect(sample(text, 'allot_pool_running_steps', { pool: 'default', team: 'default' })).toBe(s.leases.length);
    expect(sample(text, 'allot_step_outcomes_total', { pool: 'default', team: 'default', outcome: 'failed' })).toBe(1);
    expect(sample(text, 'allot_node_launches_total', { node: 'local', outcome: 'memory_limit' })).toBe(1);
    expect(text).toMatch(/allot_step_wait_seconds_bucket\{le="[^"]+",pool="default",team="default"\}/);
    expect(text).toMatch(/allot_step_preemptions_total\{pool="default",team="default"\} 0/);

    // The third follows: allot logs --follow prints it from its start to its end.
    writeFileSync(gate, '');
    const followed = await allot(['logs', '--follow', ids[2] ?? ''], env, 30_000);
    expect(followed.code, followed.stderr).toBe(0);
    expect(followed.stdout).toBe('GPU 0 share 0.5 mps 50\n');
    expect(followed.stderr).toMatch(/completed; attempt 1 on node local: exit 0/);
  });

  it('follows a running step as it writes, and stops when it ends', async () => {
    const r = await allot(
      [
        'submit',
        '--no-wait',
        '--name',
        'ticker',
        '--memory',
        '64Mi',
        '--',
        'sh',
        '-c',
        'for i in 1 2 3 4 5 6 7 8; do echo "tick $i $(date +%s%N)"; sleep 1; done',
      ],
      env,
    );
    const id = /submitted (\S+)/.exec(r.stdout + r.stderr)?.[1] ?? '';
    // Following starts at once, while the step is queued or starting, and waits for it.
    const seen: { line: string; at: number }[] = [];
    const follow = spawn(process.execPath, [ALLOT_BIN, 'logs', '--follow', id], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    follow.stdout.on('data', (d: Buffer) =>
      d
        .toString()
        .split('\n')
        .filter((l) => l.startsWith('tick'))
        .forEach((line) => seen.push({ line, at: Date.now() })),
    );
    const code = await new Promise<number | null>((resolve) => follow.once('exit', resolve));
    expect(code).toBe(0);
    expect(seen.map((s) => s.line.split(' ').slice(0, 2).join(' '))).toEqual(
      Array.from({ length: 8 }, (_, i) => `tick ${i + 1}`),
    );
    // Lines arrive as they are written, not all at the end.
    expect((seen[7]?.at ?? 0) - (seen[0]?.at ?? 0)).toBeGreaterThan(2000);
  });

  it('drains an agent on SIGTERM and hands back what runs past the deadline; back, it runs the step again', async () => {
    const agentArgs = [
      'agent',
      ...['--node-id', 'spare', '--gpus', '1', '--gpu-model', 'T4', '--cpu', '2', '--memory', '1Gi'],
      ...['--data-dir', path.join(work, 'agents'), '--drain-timeout', '1'],
    ];
    const first = await startAllot(agentArgs, /polling allot-node-spare/, env);
    const r = await allot(
      [
        'submit',
        '--no-wait',
        '--name',
        'on-t4',
        '--gpu',
        '1',
        '--gpu-model',
        'T4',
        '--memory',
        '64Mi',
        '--grace-period',
        '1',
        '--',
        'sh',
        '-c',
        'echo "attempt $ALLOT_ATTEMPT"; if [ "$ALLOT_ATTEMPT" = 1 ]; then sleep 60; fi',
      ],
      env,
    );
    const id = /submitted (\S+)/.exec(r.stdout + r.stderr)?.[1] ?? '';
    await eventually(async () => ((await status()).leases.some((l) => l.step === 'on-t4') ? true : undefined), 10_000);
    const stopped = new Promise<number | null>((resolve) => first.child.once('exit', resolve));
    first.child.kill('SIGTERM');
    expect(await stopped).toBe(0);
    expect(first.output()).toMatch(/handing back 1 step/);
    const s = await status();
    expect(s.nodes.find((n) => n.id === 'spare')?.status).toBe('Draining');
    expect(s.queue.map((q) => q.step)).toContain('on-t4');

    const second = await startAllot(agentArgs, /polling allot-node-spare/, env);
    expect(second.output()).toMatch(/schedulable again/);
    const logs = await allot(['logs', '--follow', id], env, 30_000);
    expect(logs.stdout).toContain('attempt 2');
    expect(logs.stderr).toMatch(/completed; attempt 2 of 2 on node spare: exit 0/);
    const exited = new Promise((resolve) => second.child.once('exit', resolve));
    second.child.kill('SIGTERM');
    await exited;
  });

  it('an agent that ran no step, stopped and started again, leaves its node schedulable', async () => {
    const agentArgs = [
      'agent',
      ...['--node-id', 'idle', '--gpus', '1', '--cpu', '1', '--memory', '1Gi'],
      ...['--data-dir', path.join(work, 'idle-agent'), '--advertise-address', 'idle.example.internal'],
    ];
    try {
      const first = await startAllot(agentArgs, /polling allot-node-idle/, env);
      expect(first.output()).toContain('advertised address: idle.example.internal');
      await eventually(async () => ((await status()).nodes.some((n) => n.id === 'idle') ? true : undefined), 10_000);
      const stopped = new Promise<number | null>((resolve) => first.child.once('exit', resolve));
      first.child.kill('SIGTERM');
      expect(await stopped).toBe(0);
      expect(first.output()).not.toMatch(/could not drain/);
      expect((await status()).nodes.find((n) => n.id === 'idle')?.status).toBe('Draining');
      const second = await startAllot(agentArgs, /polling allot-node-idle/, env);
      expect(second.output()).toMatch(/schedulable again/);
      expect((await status()).nodes.find((n) => n.id === 'idle')?.status).toBe('Ready');
      const exited = new Promise((resolve) => second.child.once('exit', resolve));
      second.child.kill('SIGTERM');
      await exited;
    } finally {
      // Whatever became of it, the node gets no work from the tests after this one.
      await allot(['drain', 'idle'], env);
    }
  });

  // A terminated step cannot release; its launch's next heartbeat tells the agent that the
  // workflow is gone, and the agent stops the workload and gives the lease back.
  it('frees the GPUs of a step terminated with `temporal workflow terminate` within 10 s, with the default lease TTL', async () => {
    const r = await allot(['submit', '--no-wait', '--name', 'doomed', '--gpu', '1', '--', 'sleep', '120'], env);
    expect(r.code, r.stderr).toBe(0);
    const id = /submitted (\S+)/.exec(r.stdout + r.stderr)?.[1] ?? '';
    expect(id).not.toBe('');
    await eventually(async () => ((await status()).leases.some((l) => l.step === 'doomed') ? true : undefined), 30_000);
    const cli = findTemporalCli();
    const terminated = spawnSync(
      cli.path ?? 'temporal',
      ['workflow', 'terminate', '--address', String(env.TEMPORAL_ADDRESS), '--workflow-id', id, '--reason', 'test'],
      { encoding: 'utf8' },
    );
    expect(terminated.status, terminated.stderr).toBe(0);
    const at = Date.now();
    await eventually(
      async () => ((await status()).leases.some((l) => l.step === 'doomed') ? undefined : true),
      10_000,
      'the GPU of the terminated step to be free',
    );
    const s = await status();
    expect(s.nodes[0]?.gpus.every((g) => g.used === 0)).toBe(true);
    expect(Date.now() - at).toBeLessThan(10_000);
  });
});
