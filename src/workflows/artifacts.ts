/**
 * A step's artifacts as its options declare them: the names of its `outputs` and `inputs`, the
 * variables that tell the workload where they are, and the checks `step()` makes of them. Pure,
 * so that the workflow and the agent read them alike.
 */
import type { Issue } from '../core';
import { describeValue } from '../core';
import type { StepInput } from './step-types';

/** Artifact names: a letter, then letters, digits, `_` or `-`; at most 64 characters. */
const ARTIFACT_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;

/** Most outputs, and most inputs, of one step. */
export const MAX_ARTIFACTS = 64;

/** Store URIs an input may name. */
const ARTIFACT_URI = /^(s3:\/\/[^/@\s]+\/\S+|file:\/\/\/\S+)$/;

const SHA256 = /^[0-9a-f]{64}$/;

/** `trainData`, `train-data` and `train_data` → `TRAIN_DATA`. */
export function upperSnake(name: string): string {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/-/g, '_')
    .toUpperCase();
}

/** The variable that names an output's path: `ALLOT_OUTPUT_<NAME>`. */
export function outputEnvName(name: string): string {
  return `ALLOT_OUTPUT_${upperSnake(name)}`;
}

/** The variable that names an input's path: `ALLOT_INPUT_<NAME>`. */
export function inputEnvName(name: string): string {
  return `ALLOT_INPUT_${upperSnake(name)}`;
}

/** A relative path that stays inside its folder, or undefined. */
function insidePath(p: string): boolean {
  if (p === '' || p.startsWith('/') || p.includes('\0') || p.includes('\\')) return false;
  const parts = p.split('/').filter((x) => x !== '' && x !== '.');
  return parts.length > 0 && !parts.includes('..');
}

/** Checks `outputs`, `inputs`, `checkpointRetention` and `keepWorkDir`; every problem at once. */
export function validateArtifacts(s: Partial<StepInput>): Issue[] {
  const issues: Issue[] = [];
  issues.push(
    ...validateNames(s.outputs, 'outputs', (name, value, path) => {
      if (typeof value !== 'string' || !insidePath(value)) {
        return {
          code: 'invalid_output',
          path,
          message: `must be a path relative to the step's work dir that stays inside it (e.g. "out/model.npz"), got ${describeValue(value)}`,
        };
      }
      return undefined;
    }),
  );
  issues.push(...validateNames(s.inputs, 'inputs', (_name, value, path) => artifactRefIssue(value, path)));
  if (s.checkpointRetention !== undefined && s.checkpointRetention !== 'remove' && s.checkpointRetention !== 'keep') {
    issues.push({
      code: 'invalid_retention',
      path: ['checkpointRetention'],
      message: `must be "remove" (the checkpoint is removed from the store after the step succeeds) or "keep", got ${describeValue(s.checkpointRetention)}`,
    });
  }
  if (s.keepWorkDir !== undefined && typeof s.keepWorkDir !== 'boolean') {
    issues.push({
      code: 'invalid_type',
      path: ['keepWorkDir'],
      message: `must be true or false, got ${describeValue(s.keepWorkDir)}`,
    });
  }
  return issues;
}

/** Checks the names of an `outputs` or `inputs` object and each value with `check`. */
function validateNames(
  value: unknown,
  field: 'outputs' | 'inputs',
  check: (name: string, value: unknown, path: string[]) => Issue | undefined,
): Issue[] {
  if (value === undefined) return [];
  const example = field === 'outputs' ? `{ model: "out/model.npz" }` : `{ model: train.artifacts.model }`;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return [
      {
        code: 'invalid_type',
        path: [field],
        message: `must be an object like ${example}, got ${describeValue(value)}`,
      },
    ];
  }
  const entries = Object.entries(value as Record<string, unknown>);
  const issues: Issue[] = [];
  if (entries.length > MAX_ARTIFACTS) {
    issues.push({
      code: 'too_many',
      path: [field],
      message: `may name at most ${MAX_ARTIFACTS} artifacts, got ${entries.length}; put files in a folder and name the folder`,
    });
  }
  const byVariable = new Map<string, string>();
  for (const [name, v] of entries) {
    const path = [field, name];
    if (!ARTIFACT_NAME.test(name)) {
      issues.push({
        code: 'invalid_artifact_name',
        path,
        message: `is not an artifact name: a letter, then letters, digits, "_" or "-", at most 64 characters (e.g. "model")`,
      });
      continue;
    }
    const variable = field === 'outputs' ? outputEnvName(name) : inputEnvName(name);
    const clash = byVariable.get(variable);
    if (clash !== undefined) {
      issues.push({
        code: 'artifact_name_clash',
        path,
        message: `names the same variable ${variable} as ${JSON.stringify(clash)}; rename one of them`,
      });
    }
    byVariable.set(variable, name);
    const issue = check(name, v, path);
    if (issue) issues.push(issue);
  }
  return issues;
}

/** The problem with an artifact reference given as an input, if any. */
function artifactRefIssue(value: unknown, path: string[]): Issue | undefined {
  const expected = "an artifact from an earlier step's result ({ uri, size, sha256 }, e.g. train.artifacts.model)";
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { code: 'invalid_input', path, message: `must be ${expected}, got ${describeValue(value)}` };
  }
  const r = value as Record<string, unknown>;
  if (typeof r.uri !== 'string' || !ARTIFACT_URI.test(r.uri)) {
    return {
      code: 'invalid_input',
      path: [...path, 'uri'],
      message: `must be an s3://bucket/key or file:///path URI of ${expected}, got ${describeValue(r.uri)}`,
    };
  }
  // The sha256 is what the agent checks the download against: a reference without one is refused.
  if (typeof r.sha256 !== 'string' || !SHA256.test(r.sha256)) {
    return {
      code: 'invalid_input',
      path: [...path, 'sha256'],
      message: `must be 64 lowercase hex digits (the artifact's sha256, as its step's result gives it), got ${describeValue(r.sha256)}`,
    };
  }
  if (typeof r.size !== 'number' || !Number.isInteger(r.size) || r.size < 0) {
    return {
      code: 'invalid_input',
      path: [...path, 'size'],
      message: `must be a whole number of bytes, got ${describeValue(r.size)}`,
    };
  }
  if (r.kind !== undefined && r.kind !== 'directory') {
    return {
      code: 'invalid_input',
      path: [...path, 'kind'],
      message: `must be "directory" or absent (a file), got ${describeValue(r.kind)}`,
    };
  }
  return undefined;
}
