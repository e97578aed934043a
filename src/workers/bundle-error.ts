/**
 * The error of a `--workflows` path, in a module of its own so that the CLI can recognise it
 * without loading the bundler.
 */

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
