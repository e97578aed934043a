/**
 * The acceptance checks of the first slice, as a new user runs them: `allot dev`, then `allot
 * submit`, `allot status` and `allot run` as separate processes.
 */
import { readFileSync, writeFileSync, chmodSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DevRun } from '../helpers/cli';
import { allot, startDev, stopAllot } from '../helpers/cli';
import { maxConcurrent, sharedGpus } from '../helpers/intervals';
import { tempDir } from '../helpers/temp';

let dev: DevRun['dev'];
let env: NodeJS.ProcessEnv;
let work: string;

beforeAll(async () => {
  work = tempDir('cli');
  ({ dev, env } = await startDev(work, ['--gpus', '4', '--gpu-model', 'A100', '--cpu', '16', '--memory', '64Gi']));
});

afterAll(() => stopAllot(dev));

describe('allot dev, submit, status and run', () => {
  it('runs six 2-GPU submits with never more than two at once and no shared GPU, then shows all GPUs free', async () => {
    const record = path.join(work, 'record.sh');
    const log = path.join(work, 'runs.txt');
    writeFileSync(
      record,
      `#!/bin/sh\ns=$(date +%s%N); sleep 3; e=$(date +%s%N); echo "$s $e $CUDA_VISIBLE_DEVICES" >> ${log}\n`,
    );
    chmodSync(record, 0o755);
    const results = await Promise.all(
      Array.from({ length: 6 }, () => allot(['submit', '--gpu', '2', '--', record], env)),
    );
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    const runs = readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .map((l) => {
        const [s, e, gpus] = l.split(' ');
        return { start: Number(s), end: Number(e), gpus: (gpus ?? '').split(',') };
      });
    expect(runs).toHaveLength(6);
    for (const a of runs) expect(a.gpus).toHaveLength(2);
    expect(maxConcurrent(runs)).toBe(2);
    expect(sharedGpus(runs)).toEqual([]);
    const status = await allot(['status', '--json'], env);
    expect(status.code).toBe(0);
    const s = JSON.parse(status.stdout) as {
      nodes: { id: string; gpus: { index: number; used: number }[] }[];
      queue: unknown[];
    };
    expect(s.nodes[0]?.gpus.map((g) => g.used)).toEqual([0, 0, 0, 0]);
    expect(s.queue).toEqual([]);
  });

  it('exits with the workload exit code and frees its GPUs', async () => {
    const r = await allot(['submit', '--gpu', '1', '--json', '--', 'sh', '-c', 'echo about to fail; exit 3'], env);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('about to fail');
    expect(JSON.parse(r.stdout)).toMatchObject({ status: 'failed', exitCode: 3 });
    const s = JSON.parse((await allot(['status', '--json'], env)).stdout) as { nodes: { gpus: { used: number }[] }[] };
    expect(s.nodes[0]?.gpus.every((g) => g.used === 0)).toBe(true);
  });

  it('fails at once when more GPUs are asked than any node has, naming resource, amount and capacity', async () => {
    const started = Date.now();
    const r = await allot(['submit', '--gpu', '8', '--', 'true'], env);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/asked for gpu 8, but the largest node has gpu 4/);
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  it('reports bad flags with the flag, the value and the allowed form, without a stack trace', async () => {
    const r = await allot(['submit', '--gpu', '-1', '--memory', '8GB', '--', 'true'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--memory');
    expect(r.stderr).toContain('"8GB"');
    expect(r.stderr).toContain('--gpu');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('runs the example pipeline to completion through allot run, its steps findable by AllotPool', async () => {
    const r = await allot(
      ['run', 'trainPipeline', '--input', '{"epochs": 2, "epochSeconds": 0.2}', '--id', `example-${Date.now()}`],
      env,
    );
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { train: { epochs: number }; evaluate: { accuracy: number } };
    expect(out.train.epochs).toBe(2);
    expect(out.evaluate.accuracy).toBeGreaterThan(0.8);
  });

  it('gives a readable error when Temporal cannot be reached', async () => {
    const r = await allot(['status'], { TEMPORAL_ADDRESS: '127.0.0.1:1' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('cannot reach Temporal at 127.0.0.1:1');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
