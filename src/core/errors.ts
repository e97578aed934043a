/**
 * Errors raised by the core. Each has a literal `code` (also used as the Temporal failure `type`)
 * and a message in the form: what went wrong, why, and what to do.
 */

/** Base class of every allot error; `code` names the kind of problem. */
export class AllotError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'AllotError';
  }
}

/** One problem found while validating input: where it is, what kind, and a readable message. */
export interface Issue {
  /** Machine-readable kind, e.g. `invalid_quantity`. */
  code: string;
  /** Path to the offending field, e.g. `['resources', 'memory']`. */
  path: (string | number)[];
  /** What is wrong, with the value and the allowed form. */
  message: string;
}

/** Input failed validation; `issues` lists every problem at once. */
export class ValidationError extends AllotError {
  constructor(readonly issues: Issue[]) {
    super('InvalidInput', formatIssues(issues));
    this.name = 'ValidationError';
  }
}

/** A request that no registered node could ever satisfy. */
export class UnschedulableError extends AllotError {
  constructor(message: string) {
    super('Unschedulable', message);
    this.name = 'UnschedulableError';
  }
}

/** Renders issues one per line, each prefixed with its dotted path. */
export function formatIssues(issues: readonly Issue[]): string {
  return issues.map((i) => (i.path.length > 0 ? `${i.path.join('.')}: ${i.message}` : i.message)).join('\n');
}

/** Describes a value with its type for error messages: `"8GB" (string)`. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return `${JSON.stringify(value)} (string)`;
  if (value === null) return 'null';
  if (Array.isArray(value)) return `${JSON.stringify(value)} (array)`;
  if (typeof value === 'object') return `${JSON.stringify(value)} (object)`;
  return `${String(value)} (${typeof value})`;
}
