/**
 * The capacity acceptance check as a user runs it: `allot dev --gpus 0 --autoscale a100x2=3`,
 * five queued 2-GPU steps; agents start (never more than 3), every step completes, and the agents
 * stop once idle; `allot status` shows the demand and the WaitingForCapacity reason meanwhile.
 */
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allot, freePort, startAllot, stopAllot } from '../helpers/cli';
import { eventually } from '../helpers/harness';
import { tempDir } from '../helpers/temp';

let dev: { child: ChildProcess; output: () => string };
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  const dir = tempDir('autoscale');
  const [port, uiPort] = [await freePort(), await freePort()];
  env = { TEMPORAL_ADDRESS: `127.0.0.1:${port}` };
  dev = await startAllot(
    [
      'dev',
      '--gpus',
      '0',
      '--autoscale',
      'a100x2=3',
      // Long enough that a status read on a loaded machine sees the demand before the scale-up meets it.
      '--scale-up-after',
      '5',
      '--scale-down-after',
      '5',
      '--data-dir',
      path.join(dir, 'dev'),
      '--port',
      String(port),
      '--ui-port',
      String(uiPort),
    ],
    /allot dev is up/,
  );
});

afterAll(() => stopAllot(dev));

type Status = {
  nodes: { id: string }[];
  queue: { reason: string }[];
  demand: { template?: string; requests: number }[];
};

describe('autoscaling with allot dev', () => {
  it('starts at most three agents for five 2-GPU steps, finishes them all, then stops the idle agents', async () => {
    const submits = Array.from({ length: 5 }, () => allot(['submit', '--gpu', '2', '--', 'sleep', '3'], env, 240_000));
    const waiting = await eventually(
      async () => {
        const r = await allot(['status', '--json'], env);
        const s = JSON.parse(r.stdout) as Status;
        return s.queue.some((q) => q.reason === 'WaitingForCapacity') && s.demand.some((d) => d.template === 'a100x2')
          ? s
          : undefined;
      },
      30_000,
      'demand with WaitingForCapacity',
    );
    expect(waiting.demand[0]?.requests).toBeGreaterThan(0);
    let most = 0;
    const watch = setInterval(() => {
      void allot(['status', '--json'], env).then((r) => {
        try {
          const s = JSON.parse(r.stdout) as Status;
          most = Math.max(most, s.nodes.filter((n) => n.id.startsWith('a100x2-')).length);
        } catch {
          // A status read that races with shutdown is not a finding.
        }
      });
    }, 1_000);
    const results = await Promise.all(submits);
    clearInterval(watch);
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    expect(most).toBeGreaterThan(0);
    expect(most).toBeLessThanOrEqual(3);
    expect(dev.output()).toMatch(/\[autoscale\] started agent a100x2-/);
    await eventually(
      async () => {
        const s = JSON.parse((await allot(['status', '--json'], env)).stdout) as Status;
        return s.nodes.every((n) => !n.id.startsWith('a100x2-')) ? true : undefined;
      },
      90_000,
      'autoscaled agents to stop',
    );
    expect(dev.output()).toMatch(/\[autoscale\] stopped agent a100x2-/);
  }, 300_000);
});
