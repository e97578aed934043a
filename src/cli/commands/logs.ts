/**
 * `allot logs <step> [--follow]`: the log of a step's attempt, finished or running. The log file
 * is read where it lies when this machine can see it (the agent's data directory); otherwise the
 * last lines the agent reported to Temporal are shown, with where the whole file is.
 */
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import type { WorkflowHandle } from '@temporalio/client';
import type { Command } from 'commander';
import { cliClient } from '../context';
import { UserError } from '../errors';
import type { AttemptReport } from '../launches';
import type { Exit } from '../options';
import { stepAttempts, stepHandle } from '../launches';
import { MAX_REPLICAS } from '../../core';
import { parseInteger } from '../parse';
import { describeUsage } from '../usage';

/** Adds `logs` to the program. */
export function registerLogs(program: Command, exit: Exit): void {
  program
    .command('logs')
    .description("print a step's log, finished or running; --follow keeps printing until it ends")
    .argument('<step>', 'the step workflow id, e.g. <pipeline id>/<step name>')
    .option('-f, --follow', 'keep printing while the step runs, through its next attempts')
    .option('--attempt <n>', 'attempt to show (default: the latest)')
    .option('--replica <rank>', 'of a multi-node step, the replica whose log to show (default: 0)')
    .action(async (step: string, o: LogsOptions) => exit(await logs(step, o)));
}

/** Options of `allot logs`. */
export interface LogsOptions {
  /** Keep printing while the step runs, through its next attempts, until it ends. */
  follow?: boolean;
  /** Attempt to show. @default the latest */
  attempt?: string;
  /** A gang's replica to show. @default 0 */
  replica?: string;
}

function err(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** Runs `allot logs`; returns the exit code. */
export async function logs(stepId: string, o: LogsOptions): Promise<number> {
  const wanted = parseInteger(o.attempt, '--attempt', 1, 1_000_000);
  const replica = parseInteger(o.replica, '--replica', 0, MAX_REPLICAS - 1) ?? 0;
  const { client, close } = await cliClient();
  try {
    const handle = await stepHandle(client, stepId);
    const attempts = async (): Promise<AttemptReport[]> =>
      (await stepAttempts(handle)).filter((a) => (a.rank ?? 0) === replica);
    return o.follow ? await follow(handle, wanted, attempts) : await once(handle, wanted, attempts);
  } finally {
    await close();
  }
}

function pick(attempts: AttemptReport[], wanted: number | undefined): AttemptReport | undefined {
  if (wanted === undefined) return attempts[attempts.length - 1];
  const found = attempts.find((a) => a.attempt === wanted);
  if (!found) {
    throw new UserError(
      `--attempt must be one of the step's attempts (${attempts.map((a) => a.attempt).join(', ') || 'none yet'}), got ${JSON.stringify(String(wanted))}`,
    );
  }
  return found;
}

async function state(handle: WorkflowHandle): Promise<{ closed: boolean; status: string }> {
  const d = await handle.describe();
  return { closed: d.status.name !== 'RUNNING', status: d.status.name.toLowerCase() };
}

/** The step's attempts of the replica shown (a single step's all). */
type Attempts = () => Promise<AttemptReport[]>;

async function once(handle: WorkflowHandle, wanted: number | undefined, reports: Attempts): Promise<number> {
  const attempts = await reports();
  const a = pick(attempts, wanted);
  if (!a) {
    const { status } = await state(handle);
    err(
      `step ${handle.workflowId} has not started a workload yet (${status}); nothing is logged. ` +
        `\`allot logs --follow ${handle.workflowId}\` waits for it.`,
    );
    return 0;
  }
  if (a.logFile && existsSync(a.logFile)) copyFrom(a.logFile, 0);
  else remoteTail(a, []);
  await footer(handle, a, attempts.length);
  return 0;
}

/** Writes the file from `offset` to its end to stdout; returns the new offset. */
function copyFrom(file: string, offset: number): number {
  let size: number;
  try {
    size = statSync(file).size;
  } catch {
    return offset;
  }
  if (size < offset) offset = 0;
  if (size === offset) return offset;
  const fd = openSync(file, 'r');
  try {
    const buffer = Buffer.alloc(64 * 1024);
    while (offset < size) {
      const n = readSync(fd, buffer, 0, Math.min(buffer.length, size - offset), offset);
      if (n <= 0) break;
      process.stdout.write(buffer.subarray(0, n));
      offset += n;
    }
  } finally {
    closeSync(fd);
  }
  return offset;
}

/** Prints the lines of the reported tail that follow those already printed; returns the tail. */
function remoteTail(a: AttemptReport, printed: string[]): string[] {
  if (printed.length === 0) {
    err(
      a.logFile
        ? `(the log is on node ${a.nodeId ?? '?'} at ${a.logFile}; showing the last lines its agent reported)`
        : `(no log file reported yet; showing the last lines its agent reported)`,
    );
  }
  // Find where the new tail continues what was printed, and print from there.
  let start = 0;
  for (let k = Math.min(printed.length, a.logTail.length); k > 0; k--) {
    const end = printed.slice(-k).join('\n');
    if (a.logTail.slice(0, k).join('\n') === end) {
      start = k;
      break;
    }
  }
  for (const line of a.logTail.slice(start)) process.stdout.write(`${line}\n`);
  return [...printed, ...a.logTail.slice(start)].slice(-200);
}

async function footer(handle: WorkflowHandle, a: AttemptReport, attempts: number): Promise<void> {
  const { status } = await state(handle);
  const replica = a.rank !== undefined ? `replica ${a.rank}, ` : '';
  const where = `${replica}attempt ${a.attempt}${attempts > 1 ? ` of ${attempts}` : ''} on node ${a.nodeId ?? '?'}`;
  err(`── step ${handle.workflowId}: ${status}; ${where}: ${a.running ? 'running' : (a.ended ?? 'not started')}`);
  if (a.usage) err(`── usage: ${describeUsage(a.usage)}`);
}

async function follow(handle: WorkflowHandle, wanted: number | undefined, reports: Attempts): Promise<number> {
  let current: { attempt: number; logFile?: string; offset: number; printed: string[] } | undefined;
  let waitingSaid = false;
  let lastCheck = 0;
  let attempts: AttemptReport[] = [];
  let closed = false;
  for (;;) {
    const now = Date.now();
    if (now - lastCheck >= 1000 || !current) {
      lastCheck = now;
      closed = (await state(handle)).closed;
      attempts = await reports();
    }
    const target = wanted === undefined ? attempts[attempts.length - 1] : attempts.find((a) => a.attempt === wanted);
    if (!target) {
      if (closed) return once(handle, wanted, reports);
      if (!waitingSaid) err(`(step ${handle.workflowId} is queued; waiting for it to start)`);
      waitingSaid = true;
      await new Promise((r) => setTimeout(r, 500));
      continue;
    }
    if (current && current.attempt !== target.attempt) {
      // The attempt we followed ended and another started: finish the old one, then switch.
      const old = attempts.find((a) => a.attempt === current?.attempt);
      if (current.logFile && existsSync(current.logFile)) copyFrom(current.logFile, current.offset);
      if (old) await footer(handle, old, attempts.length);
      current = undefined;
    }
    if (!current) {
      if (attempts.length > 1) err(`── attempt ${target.attempt} on node ${target.nodeId ?? '?'}`);
      current = { attempt: target.attempt, offset: 0, printed: [] };
    }
    current.logFile ??= target.logFile;
    const local = current.logFile !== undefined && existsSync(current.logFile);
    if (local && current.logFile) current.offset = copyFrom(current.logFile, current.offset);
    else if (target.logTail.length > 0) current.printed = remoteTail(target, current.printed);
    const finished = closed || (wanted !== undefined && !target.running && target.ended !== undefined);
    if (finished) {
      if (local && current.logFile) copyFrom(current.logFile, current.offset);
      const final = await reports();
      await footer(handle, final.find((a) => a.attempt === target.attempt) ?? target, final.length);
      return 0;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}
