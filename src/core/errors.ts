/**
 * Errors raised by the core. Each has a literal `code` (also used as the Temporal failure `type`)
 * and a message in the form: what went wrong, why, and what to do.
 */

/** Base class of every allot error: `code`, a literal per class, names the kind of problem. */
export abstract class AllotError extends Error {
  abstract readonly code: string;
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
  readonly code = 'InvalidInput';
  constructor(readonly issues: Issue[]) {
    super(formatIssues(issues));
    this.name = 'ValidationError';
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
