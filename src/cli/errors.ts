/**
 * Errors the CLI reports to people without a stack trace.
 */
import { ValidationError } from '../core';
import { TemporalCliPathError } from '../workers/temporal-cli';
import { WorkflowModulesError } from '../workers/bundle-error';

/** A mistake in the user's input or environment; printed as `allot: <message>`. */
export class UserError extends Error {
  constructor(
    message: string,
    /** Process exit code. @default 2 */
    readonly exitCode = 2,
  ) {
    super(message);
    this.name = 'UserError';
  }
}

/** Turns a failed connection into a message that says what to do. */
export function connectionHelp(address: string, err: unknown): UserError {
  const why = err instanceof Error ? err.message : String(err);
  return new UserError(
    `cannot reach Temporal at ${address} (${why.split('\n')[0]}).\n` +
      'Start one with `npx allot dev`, or point TEMPORAL_ADDRESS (and TEMPORAL_NAMESPACE) at your server.',
    1,
  );
}

/** The innermost message of an error chain (Temporal wraps validator rejections and activity failures). */
export function rootMessage(err: unknown): string {
  let e: unknown = err;
  while (e instanceof Error && (e as { cause?: unknown }).cause instanceof Error) e = (e as { cause?: unknown }).cause;
  return e instanceof Error ? e.message : String(e);
}

/** Prints an error for a person and returns the exit code. */
export function reportError(err: unknown): number {
  if (err instanceof UserError) {
    process.stderr.write(`allot: ${err.message}\n`);
    return err.exitCode;
  }
  if (err instanceof TemporalCliPathError || err instanceof WorkflowModulesError) {
    process.stderr.write(`allot: ${err.message}\n`);
    return 2;
  }
  if (err instanceof ValidationError) {
    process.stderr.write(`allot: invalid input:\n${indent(err.message)}\n`);
    return 2;
  }
  const codec = codecProblem(err);
  if (codec) {
    process.stderr.write(`allot: ${codec}\n`);
    return 1;
  }
  const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
  process.stderr.write(`allot: unexpected error (please report it):\n${message}\n`);
  return 1;
}

/** A payload this process cannot decrypt, said for people (see docs/security.md), or `undefined`. */
function codecProblem(err: unknown): string | undefined {
  const message = rootMessage(err);
  if (err instanceof Error && (err as { code?: unknown }).code === 'PayloadDecryptionFailed') return err.message;
  if (message.includes('Unknown encoding: binary/encrypted')) {
    return (
      'the payloads are encrypted (binary/encrypted) and this command has no key to read them: ' +
      'set ALLOT_CODEC_KEY to the key the workers and agents use (docs/security.md)'
    );
  }
  return undefined;
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
}
