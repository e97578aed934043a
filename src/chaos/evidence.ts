/**
 * What a chaos run leaves behind and the invariant checks read: the workloads' run records, the
 * agents' ledgers, the control worker's log, and whether a workload still runs.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import type { RunRecord, Violation } from './invariants';
import { parseRunFile } from './invariants';

/** The claims of an agent's ledger file; none when it is missing or unreadable. */
export function readLedger(file: string): { leaseId: string; stepId: string }[] {
  if (!existsSync(file)) return [];
  try {
    const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
    return Array.isArray(parsed) ? (parsed as { leaseId: string; stepId: string }[]) : [];
  } catch {
    return [];
  }
}

/** Every run the workloads recorded under `dir` (one folder per step, one file per run). */
export function readRuns(dir: string): RunRecord[] {
  const runs: RunRecord[] = [];
  for (const step of existsSync(dir) ? readdirSync(dir) : []) {
    for (const file of readdirSync(path.join(dir, step))) {
      const full = path.join(dir, step, file);
      const run = parseRunFile(readFileSync(full, 'utf8'), full);
      if (run) runs.push(run);
    }
  }
  return runs;
}

/** Whether a chaos workload with this pid still runs (and the pid was not reused by another program). */
export function workloadAlive(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('chaos-workload.js');
  } catch {
    return false;
  }
}

/** `violations` without repeats of the same invariant and message, first ones kept. */
export function dedupe(violations: Violation[]): Violation[] {
  const seen = new Set<string>();
  return violations.filter((v) => {
    const key = `${v.invariant}|${v.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** The distinct messages of the workflow tasks the worker failed, as its log shows them. */
export function workflowTaskFailures(logFile: string): string[] {
  if (!existsSync(logFile)) return [];
  const seen = new Set<string>();
  for (const m of readFileSync(logFile, 'utf8').matchAll(
    /Failing workflow task .*?message: "((?:[^"\\]|\\.){0,300})/g,
  )) {
    if (m[1]) seen.add(m[1]);
  }
  return [...seen];
}
