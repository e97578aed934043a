/**
 * The error of a `--workflows` path, and the check that a path exists, in a module of their own so
 * that the CLI can use them without loading the bundler.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';

/** The user's workflow modules cannot be found or bundled; the message says which and why. */
export class WorkflowModulesError extends Error {
  readonly code = 'WorkflowModulesError';
  constructor(
    /** The `--workflows` paths. */
    readonly paths: readonly string[],
    message: string,
  ) {
    super(message);
    this.name = 'WorkflowModulesError';
  }
}

/** `target` made absolute; throws when there is nothing there. */
export function existingWorkflowPath(target: string): string {
  const abs = path.resolve(target);
  if (!existsSync(abs)) {
    throw new WorkflowModulesError(
      [target],
      `--workflows ${target}: no such file or folder; give a module that exports your pipelines, or a folder of them`,
    );
  }
  return abs;
}
