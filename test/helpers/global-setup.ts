/**
 * One real Temporal dev server per test run, with allot's search attributes, and one workflow
 * bundle that every test file's workers share.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { defineSearchAttributeKey } from '@temporalio/common';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import type { TestProject } from 'vitest/node';
import { bundleWorkflows } from '../../src/workers/bundle';
import { describeTemporalCli, findTemporalCli } from '../../src/workers/temporal-cli';
import { SEARCH_ATTRIBUTE_LIST } from '../../src/workflows/search-attributes';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    workflowBundlePath: string;
  }
}

let env: TestWorkflowEnvironment | undefined;
let bundleDir: string | undefined;

export async function setup(project: TestProject): Promise<void> {
  const cli = findTemporalCli();
  process.stderr.write(`[allot tests] ${describeTemporalCli(cli)}\n`);
  env = await TestWorkflowEnvironment.createLocal({
    server: {
      executable: cli.path ? { type: 'existing-path', path: cli.path } : { type: 'cached-download' },
      searchAttributes: SEARCH_ATTRIBUTE_LIST.map((a) => defineSearchAttributeKey(a.name, a.type)),
    },
  });
  const dir = mkdtempSync(path.join(tmpdir(), 'allot-test-'));
  bundleDir = dir;
  const bundle = await bundleWorkflows([
    path.resolve(__dirname, '../../examples/pipeline/workflows.ts'),
    path.resolve(__dirname, 'test-workflows.ts'),
  ]);
  const bundlePath = path.join(dir, 'workflow-bundle.js');
  writeFileSync(bundlePath, bundle.code);
  project.provide('temporalAddress', env.address);
  project.provide('workflowBundlePath', bundlePath);
}

export async function teardown(): Promise<void> {
  await env?.teardown();
  if (bundleDir) rmSync(bundleDir, { recursive: true, force: true });
}
