/**
 * A short chaos run, as CI runs it: two agents, five kills of agents, the control worker and the
 * Temporal server, then the invariant checks. The full run is `npm run chaos -- --seed 1 --kills 30`.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ChaosReport } from '../../src/chaos/driver';

const ROOT = path.resolve(__dirname, '../..');

function runChaos(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      [path.join(ROOT, 'node_modules/tsx/dist/cli.mjs'), 'src/chaos/main.ts', ...args],
      {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('chaos', () => {
  it('survives five kills with nothing lost, nothing run twice at once, no GPU double-booked, all freed', async () => {
    const { code, stdout, stderr } = await runChaos([
      '--seed',
      '7',
      '--kills',
      '5',
      '--agents',
      '2',
      '--steps',
      '3',
      '--concurrency',
      '2',
      '--gap',
      '2-4',
      '--json',
    ]);
    const report = JSON.parse(stdout) as ChaosReport;
    expect(report.violations, stderr).toEqual([]);
    expect(report.kills).toHaveLength(5);
    expect(report.pipelines.length).toBeGreaterThanOrEqual(2);
    expect(report.pipelines.every((p) => p.status === 'completed')).toBe(true);
    expect(report.stepsCompleted).toBe(report.stepsSubmitted);
    expect(report.runs).toBeGreaterThanOrEqual(report.stepsSubmitted);
    expect(code).toBe(0);
  }, 400_000);
});
