/**
 * Custom resources end to end, as a user runs them: `allot dev --resource lic=2`, then three
 * `allot submit --resource lic=1` at once. The node's two licenses bound how many run together,
 * whatever its free GPUs; the third waits with a reason that names `lic`.
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
  work = tempDir('custom');
  ({ dev, env } = await startDev(work, [
    '--gpus',
    '4',
    '--resource',
    'lic=2',
    // Enough CPU and memory that only the licenses are short.
    ...['--cpu', '16', '--memory', '64Gi'],
  ]));
});

afterAll(() => stopAllot(dev));

interface QueueRow {
  step: string;
  reason: string;
  message: string;
  custom?: Record<string, number>;
}

describe('allot dev --resource lic=2 and allot submit --resource lic=1', () => {
  it('names the licenses in the start-up line', () => {
    expect(dev.output()).toMatch(/agent local: 4 GPUs .*lic 2/);
  });

  it('runs three 1-license submits at most two at a time; the third waits naming lic; all exit 0', async () => {
    const record = path.join(work, 'record.sh');
    const log = path.join(work, 'runs.txt');
    const gate = path.join(work, 'seen');
    // Each workload sleeps 3 s, as in the acceptance, and then holds on until the test has seen the
    // waiting one in `allot queue` and `allot status` (a loaded machine may be slow to look).
    writeFileSync(
      record,
      `#!/bin/sh\ns=$(date +%s%N); sleep 3\nwhile [ ! -f ${gate} ]; do sleep 0.1; done\n` +
        `e=$(date +%s%N); echo "$s $e $ALLOT_RESOURCE_LIC" >> ${log}\n`,
    );
    chmodSync(record, 0o755);
    const submits = Promise.all(
      Array.from({ length: 3 }, () => allot(['submit', '--gpu', '1', '--resource', 'lic=1', '--', record], env)),
    );

    let queued: QueueRow | undefined;
    let queueText = '';
    let statusText = '';
    const deadline = Date.now() + 60_000;
    while ((!queued || !queueText || !statusText) && Date.now() < deadline) {
      const [json, table, status] = await Promise.all([
        allot(['queue', '--json'], env),
        allot(['queue'], env),
        allot(['status'], env),
      ]);
      queued ??= (JSON.parse(json.stdout) as QueueRow[]).find((r) => /\blic\b/.test(r.message));
      if (/short: lic/.test(table.stdout)) queueText ||= table.stdout;
      if (/Resources: .*short: lic/.test(status.stdout)) statusText ||= status.stdout;
    }
    writeFileSync(gate, '');
    const results = await submits;
    for (const r of results) expect(r.code, r.stderr).toBe(0);

    expect(queued, 'no queued step named lic while two held the licenses').toMatchObject({
      reason: 'Resources',
      custom: { lic: 1 },
    });
    expect(queued?.message).toMatch(/short: lic \(at most 0 of 1 free\)/);
    expect(queueText).toMatch(/CUSTOM +REASON/);
    expect(statusText.split('\n').find((l) => l.startsWith('local'))).toContain('lic 0/2 free');
    // The submit that waited said why, too.
    expect(results.map((r) => r.stderr).join('\n')).toMatch(/queued \(Resources: .*short: lic/);

    const runs = readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .map((l) => {
        const [s, e, lic] = l.split(' ');
        return { start: Number(s) / 1e6, end: Number(e) / 1e6, gpus: [], lic };
      });
    expect(runs).toHaveLength(3);
    expect(runs.map((r) => r.lic)).toEqual(['1', '1', '1']);
    // Measured from the workloads' own clocks: two overlap, and the third starts only after one ended.
    expect(maxConcurrent(runs)).toBe(2);
    const [third, ...firstTwo] = [...runs].sort((a, b) => b.start - a.start);
    expect(Math.min(...firstTwo.map((r) => r.end))).toBeLessThanOrEqual(third?.start ?? 0);
    const t0 = Math.min(...runs.map((r) => r.start));
    const at = (t: number): number => Math.round(t - t0);
    process.stderr.write(
      `[custom resources] runs, ms from the first start: ${runs.map((r) => `${at(r.start)}..${at(r.end)}`).join(', ')}; ` +
        `at most ${maxConcurrent(runs)} at once\n`,
    );

    const after = JSON.parse((await allot(['status', '--json'], env)).stdout) as {
      nodes: { custom?: Record<string, { capacity: number; used: number; free: number }> }[];
    };
    expect(after.nodes[0]?.custom).toEqual({ lic: { capacity: 2, used: 0, free: 2 } });
  });

  it('accounts license-hours to the steps that held them', async () => {
    let rows: { customHours?: Record<string, number> }[] = [];
    for (let i = 0; i < 20 && !rows.some((r) => r.customHours?.lic); i++) {
      rows = JSON.parse((await allot(['usage', '--by', 'team', '--json'], env)).stdout) as typeof rows;
      if (!rows.some((r) => r.customHours?.lic)) await new Promise((r) => setTimeout(r, 500));
    }
    // Three leases of one license, each held for 3 s and more: at least 9 license-seconds.
    const hours = rows.reduce((s, r) => s + (r.customHours?.lic ?? 0), 0);
    expect(hours * 3600).toBeGreaterThan(9);
    expect(hours * 3600).toBeLessThan(300);
  });

  it('refuses a bad --resource with the flag, the value and the allowed form, exit 2', async () => {
    const r = await allot(['submit', '--resource', 'lic=0.5', '--resource', 'LIC=1', '--', 'true'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--resource');
    expect(r.stderr).toContain('"0.5"');
    expect(r.stderr).toContain('"LIC"');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
