/**
 * How long `allot usage` takes over 10,000 finished steps. Writes the records (memos of the same
 * shape real steps keep) on its own dev server, then times the report as the CLI makes it.
 *
 *   npx tsx bench/usage-report.ts [--steps 10000] [--json FILE]
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { defineSearchAttributeKey } from '@temporalio/common';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, Worker, bundleWorkflowCode } from '@temporalio/worker';
import { fetchAccounting } from '../src/cli/accounting';
import { usageReport } from '../src/cli/usage-report';
import { findTemporalCli } from '../src/workers/temporal-cli';
import type { AccountingRecord } from '../src/workflows/accounting-types';
import { ACCOUNTING_MEMO } from '../src/workflows/accounting-types';
import { SEARCH_ATTRIBUTE_LIST } from '../src/workflows/search-attributes';

const argValue = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
};

async function main(): Promise<void> {
  const count = Number(argValue('steps') ?? 10_000);
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const cli = findTemporalCli();
  const env = await TestWorkflowEnvironment.createLocal({
    server: {
      executable: cli.path ? { type: 'existing-path', path: cli.path } : { type: 'cached-download' },
      searchAttributes: SEARCH_ATTRIBUTE_LIST.map((a) => defineSearchAttributeKey(a.name, a.type)),
    },
  });
  try {
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue: 'usage-bench',
      workflowBundle: await bundleWorkflowCode({
        workflowsPath: path.resolve(__dirname, 'fixtures/accounting-steps.ts'),
        logger: {
          trace: () => undefined,
          debug: () => undefined,
          info: () => undefined,
          warn: () => undefined,
          error: () => undefined,
          log: () => undefined,
        },
      }),
    });
    const running = worker.run();
    const teams = ['vision', 'nlp', 'speech', 'rl'];
    const base = Date.now() - 3_600_000;
    let expectedGpuHours = 0;
    let written = 0;
    const writeOne = async (i: number): Promise<void> => {
      const gpu = 1 + (i % 4);
      const start = base + (i % 600) * 1000;
      const end = start + 60_000 + (i % 7) * 10_000;
      expectedGpuHours += (gpu * (end - start)) / 3_600_000;
      const record: AccountingRecord = {
        version: 1,
        pool: 'default',
        team: teams[i % teams.length] ?? 'default',
        pipeline: `pipeline-${i % 50}`,
        step: `step-${i}`,
        leases: [{ leaseId: `default-${i}`, nodeId: `n${i % 20}`, gpu, cpu: 4, memoryMiB: 16_384, start, end }],
      };
      await env.client.workflow.execute('allotStep', {
        taskQueue: 'usage-bench',
        workflowId: `usage-bench-${i}`,
        memo: { [ACCOUNTING_MEMO]: record },
      });
      written++;
    };
    const started = Date.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < count) {
          await writeOne(next++);
          if (written % 500 === 0) process.stderr.write(`\rwrote ${written}/${count} step records`);
        }
      }),
    );
    process.stderr.write(`\rwrote ${written} step records in ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
    // Visibility is eventually consistent: wait until it lists them all.
    for (let tries = 0; tries < 60; tries++) {
      const listed = await env.client.workflow.count('WorkflowType = "allotStep" AND ExecutionStatus = "Completed"');
      if (listed.count >= count) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    const t0 = Date.now();
    const steps = await fetchAccounting(env.client, Date.now());
    const rows = usageReport(steps, { since: base - 1, until: Date.now(), by: 'team', now: Date.now() });
    const seconds = (Date.now() - t0) / 1000;
    const reported = rows.reduce((sum, r) => sum + r.gpuHours, 0);
    const result = {
      steps: steps.length,
      reportSeconds: Number(seconds.toFixed(2)),
      gpuHoursReported: Number(reported.toFixed(3)),
      gpuHoursExpected: Number(expectedGpuHours.toFixed(3)),
      load: (await import('node:os')).loadavg()[0],
    };
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    const out = argValue('json');
    if (out) writeFileSync(out, JSON.stringify(result, null, 2));
    worker.shutdown();
    await running;
  } finally {
    await env.teardown();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
