/**
 * Named limits as a user meets them: `allot limit set|list|remove` and `allot submit --limit`
 * against a real `allot dev`, each command a separate process.
 */
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DevRun } from '../helpers/cli';
import { allot, startDev, stopAllot } from '../helpers/cli';
import { maxConcurrent } from '../helpers/intervals';
import { tempDir } from '../helpers/temp';

let dev: DevRun['dev'];
let env: NodeJS.ProcessEnv;
let work: string;

beforeAll(async () => {
  work = tempDir('cli-limits');
  ({ dev, env } = await startDev(work, ['--gpus', '4', '--cpu', '8', '--memory', '16Gi']));
});

afterAll(() => stopAllot(dev));

describe('allot limit and submit --limit', () => {
  it('runs two submits of a limit with max 1 one after the other, and status shows fs 1/1 meanwhile', async () => {
    const set = await allot(['limit', 'set', 'fs', '--max', '1'], env);
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toMatch(/fs\s+0\/1\s+0/);

    const record = path.join(work, 'record.sh');
    const log = path.join(work, 'runs.txt');
    // Each holds the limit for 5 s: time enough to see it held with separate `allot` processes on a busy machine.
    writeFileSync(record, `#!/bin/sh\ns=$(date +%s%N); sleep 5; e=$(date +%s%N); echo "$s $e" >> ${log}\n`);
    chmodSync(record, 0o755);
    const submits = [0, 1].map(() => allot(['submit', '--limit', 'fs=1', '--', record], env));

    // While one runs, status shows the limit taken and the other waiting for it.
    let seen = '';
    let queueSeen = '';
    for (let i = 0; i < 30 && !(seen && queueSeen); i++) {
      const [status, queue] = await Promise.all([allot(['status'], env), allot(['queue'], env)]);
      if (!seen && /limits: fs 1\/1 \(1 waiting\)/.test(status.stdout)) seen = status.stdout;
      if (!queueSeen && /LimitExhausted: fs 1 of 1 in use/.test(queue.stdout)) queueSeen = queue.stdout;
    }
    expect(seen).toMatch(/limits: fs 1\/1 \(1 waiting\)/);
    expect(seen).toMatch(/LimitExhausted: fs 1 of 1 in use/);
    expect(queueSeen).toMatch(/LimitExhausted: fs 1 of 1 in use/);

    const results = await Promise.all(submits);
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    const runs = readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .map((l) => {
        const [s, e] = l.split(' ');
        return { start: Number(s), end: Number(e), gpus: [] };
      });
    expect(runs).toHaveLength(2);
    expect(maxConcurrent(runs)).toBe(1);

    const list = await allot(['limit', 'list', '--json'], env);
    expect(JSON.parse(list.stdout)).toEqual({ limits: [{ name: 'fs', max: 1, inUse: 0, holders: [], waiting: 0 }] });
  });

  it('refuses a submit naming a limit that does not exist, with exit 2, naming it and the limits there are', async () => {
    const r = await allot(['submit', '--limit', 'feature-store=1', '--', 'true'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('limit "feature-store" does not exist in pool default; limits: fs');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('refuses to remove a limit while a step holds it, then removes it once the step ended', async () => {
    const step = allot(['submit', '--limit', 'fs=1', '--', 'sleep', '8'], env);
    let refused: { code: number | null; stderr: string } = { code: 0, stderr: '' };
    for (let i = 0; i < 40; i++) {
      const s = JSON.parse((await allot(['status', '--json'], env)).stdout) as { limits?: { inUse: number }[] };
      if (s.limits?.[0]?.inUse === 1) {
        refused = await allot(['limit', 'remove', 'fs'], env);
        break;
      }
    }
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/limit fs is in use: 1 step holds 1 of its units/);
    expect((await step).code).toBe(0);
    const removed = await allot(['limit', 'remove', 'fs'], env);
    expect(removed.code, removed.stderr).toBe(0);
    expect(removed.stdout).toContain('no limits set');
  });
});
