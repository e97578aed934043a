/**
 * Bundles allot's workflows, plus a user's pipeline modules, into one workflow bundle.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import type { WorkflowBundleWithSourceMap } from '@temporalio/worker';

const RUNNING_FROM_SOURCE = __filename.endsWith('.ts');
const OWN_ROOT = path.resolve(__dirname, '..');

/** Absolute path (without extension) of a module of allot's own source or build. */
function own(module: string): string {
  return path.join(OWN_ROOT, module);
}

/**
 * Builds the bundle. `extraWorkflows` are paths of modules whose exported functions become workflow
 * types; inside them, `allot/workflow` resolves to this copy of allot.
 */
export async function bundleWorkflows(extraWorkflows: readonly string[] = []): Promise<WorkflowBundleWithSourceMap> {
  const dir = mkdtempSync(path.join(tmpdir(), 'allot-bundle-'));
  const entry = path.join(dir, 'workflows.js');
  const lines = [own('workflows/index'), ...extraWorkflows.map((p) => path.resolve(p))].map(
    (p) => `export * from ${JSON.stringify(p)};`,
  );
  writeFileSync(entry, lines.join('\n') + '\n');
  return bundleWorkflowCode({
    workflowsPath: entry,
    logger: quietLogger,
    webpackConfigHook: (config) => {
      config.resolve ??= {};
      const alias = (config.resolve.alias ?? {}) as Record<string, string>;
      alias['allot/workflow$'] = own('workflow');
      config.resolve.alias = alias;
      // The entry lives in a temporary folder: resolve packages from allot's own node_modules too.
      config.resolve.modules = [
        ...(config.resolve.modules ?? ['node_modules']),
        path.join(OWN_ROOT, '..', 'node_modules'),
      ];
      if (RUNNING_FROM_SOURCE) config.resolve.extensions = ['.ts', '.js', ...(config.resolve.extensions ?? [])];
      return config;
    },
  });
}

const noop = (): void => undefined;
const quietLogger = {
  trace: noop,
  debug: noop,
  info: noop,
  warn: noop,
  error: (m: string) => process.stderr.write(`${m}\n`),
  log: noop,
};
