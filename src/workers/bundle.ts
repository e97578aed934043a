/**
 * Bundles allot's workflows, plus a user's pipeline modules, into one workflow bundle.
 */
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import type { WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { WorkflowModulesError, existingWorkflowPath } from './bundle-error';

const RUNNING_FROM_SOURCE = __filename.endsWith('.ts');
const OWN_ROOT = path.resolve(__dirname, '..');
/** The node_modules folder that holds allot's dependencies: allot's own in its repository, the project's once installed. */
const DEPENDENCIES = path.resolve(require.resolve('@temporalio/workflow/package.json'), '..', '..', '..');

/** Absolute path (without extension) of a module of allot's own source or build. */
function own(module: string): string {
  return path.join(OWN_ROOT, module);
}

/** Files that are never workflow modules: declarations, tests, and anything under node_modules or a dot folder. */
const NOT_A_MODULE = /(\.d\.ts|\.(test|spec)\.[jt]s)$/;

/**
 * The workflow modules a `--workflows` path names: a file is itself; a folder is every `.ts` and
 * `.js` file in it and its subfolders (not tests, declarations, `node_modules` or dot folders),
 * in a stable order.
 */
export function workflowModulePaths(target: string): string[] {
  const abs = existingWorkflowPath(target);
  if (!statSync(abs).isDirectory()) return [abs];
  const found: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (entry.name.startsWith('.') || entry.name === 'node_modules') continue;
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (/\.[jt]s$/.test(entry.name) && !NOT_A_MODULE.test(entry.name)) found.push(full);
    }
  };
  walk(abs);
  return found;
}

/**
 * Builds the bundle. `extraWorkflows` are paths of modules, or folders of modules, whose exported
 * functions become workflow types; inside them, `allot/workflow` resolves to this copy of allot.
 * Two modules exporting the same name make that name ambiguous: give each workflow its own name.
 */
export async function bundleWorkflows(extraWorkflows: readonly string[] = []): Promise<WorkflowBundleWithSourceMap> {
  const dir = mkdtempSync(path.join(tmpdir(), 'allot-bundle-'));
  const entry = path.join(dir, 'workflows.js');
  const lines = [own('workflows/index'), ...extraWorkflows.flatMap(workflowModulePaths)].map(
    (p) => `export * from ${JSON.stringify(p)};`,
  );
  writeFileSync(entry, lines.join('\n') + '\n');
  try {
    return await bundleWorkflowCode({
      workflowsPath: entry,
      logger: quietLogger,
      webpackConfigHook: (config) => {
        config.resolve ??= {};
        const alias = (config.resolve.alias ?? {}) as Record<string, string>;
        alias['allot/workflow$'] = own('workflow');
        config.resolve.alias = alias;
        // The entry lives in a temporary folder: resolve packages from allot's own node_modules too,
        // and from the one that holds its dependencies (the user's, where npm hoisted them).
        config.resolve.modules = [
          ...(config.resolve.modules ?? ['node_modules']),
          ...new Set([path.join(OWN_ROOT, '..', 'node_modules'), DEPENDENCIES]),
        ];
        if (RUNNING_FROM_SOURCE) config.resolve.extensions = ['.ts', '.js', ...(config.resolve.extensions ?? [])];
        return config;
      },
    });
  } catch (err) {
    if (!/Webpack finished with errors/.test((err as Error).message)) throw err;
    const where = extraWorkflows.length > 0 ? extraWorkflows.join(', ') : 'allot';
    throw new WorkflowModulesError(
      extraWorkflows,
      `cannot bundle the workflows of ${where}: the errors above say where (a syntax error, or an import ` +
        'that does not resolve, such as a Node module, which workflow code cannot use); fix them and start again',
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
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
