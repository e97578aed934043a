/**
 * The `launch` activity: runs a step's workload on this node as its own process group, pinned to
 * the granted GPUs, with its output in a log file; heartbeats while it runs; on cancellation sends
 * SIGTERM to the group and SIGKILL after the grace period.
 */
import { spawn } from 'node:child_process';
import {
  appendFileSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
} from 'node:fs';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { LaunchInput, LaunchResult } from '../workflows/step-types';
import { DEFAULT_ENV_ALLOWLIST, workloadEnv } from './environment';
import type { LeaseLedger } from './ledger';
import { DeviceConflictError } from './ledger';

/** What the agent gives its activities. */
export interface AgentContext {
  nodeId: string;
  /** Root of logs, outputs and checkpoints on this node. */
  dataDir: string;
  ledger: LeaseLedger;
  /** Agent variables passed through to workloads. @default DEFAULT_ENV_ALLOWLIST */
  envAllowlist?: string[];
  /** Interval between heartbeats, ms. @default 1000 */
  heartbeatMs?: number;
  /**
   * Asks the pool whether it holds a lease for this node (fencing). `undefined` when the pool
   * cannot be asked; the launch then goes ahead on the grant it carries.
   */
  leaseHeld?: (pool: string, leaseId: string) => Promise<boolean | undefined>;
}

/** Number of log lines kept in results and heartbeats. */
export const LOG_TAIL_LINES = 20;

/** A file-system-safe form of a step id. */
export function safeName(id: string): string {
  return id.replace(/[^A-Za-z0-9._-]/g, '_');
}

/** Paths used by one attempt of a step on this node. */
export function stepPaths(
  dataDir: string,
  stepId: string,
  attempt: number,
): { log: string; output: string; checkpoint: string } {
  const step = safeName(stepId);
  return {
    log: path.join(dataDir, 'logs', step, `attempt-${attempt}.log`),
    output: path.join(dataDir, 'outputs', step, `attempt-${attempt}.json`),
    checkpoint: path.join(dataDir, 'checkpoints', step),
  };
}

/** Creates the agent's activities. */
export function createActivities(ctx: AgentContext) {
  return {
    /** Runs a workload to its end (see the module comment). */
    async launch(input: LaunchInput): Promise<LaunchResult> {
      return launch(ctx, input);
    },
  };
}

async function launch(ctx: AgentContext, input: LaunchInput): Promise<LaunchResult> {
  const activity = Context.current();
  if (input.pool !== undefined && ctx.leaseHeld) {
    const held = await ctx.leaseHeld(input.pool, input.leaseId);
    if (held === false) {
      throw ApplicationFailure.nonRetryable(
        `lease ${input.leaseId} is not held by pool ${input.pool} for node ${ctx.nodeId}; refusing a stale launch`,
        'StaleLease',
      );
    }
  }
  try {
    ctx.ledger.claim({
      leaseId: input.leaseId,
      stepId: input.stepId,
      gpus: input.gpuIndices.map((index) => ({
        index,
        milli: input.gpuFraction !== undefined ? Math.round(input.gpuFraction * 1000) : 1000,
      })),
    });
  } catch (err) {
    if (err instanceof DeviceConflictError) throw ApplicationFailure.nonRetryable(err.message, err.code);
    throw err;
  }
  try {
    const paths = stepPaths(ctx.dataDir, input.stepId, input.attempt);
    for (const p of [path.dirname(paths.log), path.dirname(paths.output), paths.checkpoint])
      mkdirSync(p, { recursive: true });
    rmSync(paths.output, { force: true });
    const devices = input.gpuIndices.join(',');
    const allotEnv: Record<string, string> = {
      CUDA_VISIBLE_DEVICES: devices,
      NVIDIA_VISIBLE_DEVICES: devices === '' ? 'void' : devices,
      ALLOT_STEP_ID: input.stepId,
      ALLOT_STEP_NAME: input.name,
      ALLOT_ATTEMPT: String(input.attempt),
      ALLOT_LEASE_ID: input.leaseId,
      ALLOT_NODE_ID: ctx.nodeId,
      ALLOT_CHECKPOINT_DIR: paths.checkpoint,
      ALLOT_OUTPUT: paths.output,
    };
    if (input.gpuFraction !== undefined) {
      allotEnv.ALLOT_GPU_FRACTION = String(input.gpuFraction);
      allotEnv.CUDA_MPS_ACTIVE_THREAD_PERCENTAGE = String(Math.max(1, Math.round(input.gpuFraction * 100)));
    }
    const env = workloadEnv(process.env, ctx.envAllowlist ?? DEFAULT_ENV_ALLOWLIST, input.env, allotEnv);
    const logFd = openSync(paths.log, 'a');
    const startedAt = Date.now();
    let exit: { code: number | null; signal: NodeJS.Signals | null };
    try {
      exit = await runProcessGroup(input, env, logFd, paths.log, activity, ctx.heartbeatMs ?? 1000, (pgid) =>
        ctx.ledger.setProcessGroup(input.leaseId, pgid),
      );
    } finally {
      closeSync(logFd);
    }
    const runningMs = Date.now() - startedAt;
    const logTail = tail(paths.log, LOG_TAIL_LINES);
    if (activity.cancellationSignal.aborted) {
      throw activity.cancellationSignal.reason instanceof Error
        ? activity.cancellationSignal.reason
        : ApplicationFailure.create({ message: 'cancelled', type: 'Cancelled' });
    }
    return {
      exitCode: exit.code,
      signal: exit.signal,
      outputs: readOutputs(paths.output, paths.log),
      runningMs,
      logFile: paths.log,
      logTail,
    };
  } finally {
    ctx.ledger.free(input.leaseId);
  }
}

/** Spawns the workload as a process group and waits for it, killing the group on cancellation. */
function runProcessGroup(
  input: LaunchInput,
  env: Record<string, string>,
  logFd: number,
  logFile: string,
  activity: Context,
  heartbeatMs: number,
  started: (pgid: number) => void,
): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve, reject) => {
    const [file, ...args] = input.command;
    if (file === undefined) {
      reject(ApplicationFailure.nonRetryable('the command is empty', 'InvalidInput'));
      return;
    }
    const child = spawn(file, args, { cwd: input.cwd, env, detached: true, stdio: ['ignore', logFd, logFd] });
    if (child.pid !== undefined) {
      started(child.pid);
      watchAgent(child.pid);
    }
    let killTimer: NodeJS.Timeout | undefined;
    const signalGroup = (signal: NodeJS.Signals): void => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, signal);
      } catch {
        // The group is already gone.
      }
    };
    const onCancel = (): void => {
      signalGroup('SIGTERM');
      killTimer = setTimeout(() => signalGroup('SIGKILL'), input.gracePeriodMs);
    };
    activity.cancellationSignal.addEventListener('abort', onCancel, { once: true });
    const beat = setInterval(() => activity.heartbeat({ pid: child.pid, logTail: tail(logFile, 5) }), heartbeatMs);
    activity.heartbeat({ pid: child.pid });
    child.once('error', (err: NodeJS.ErrnoException) => {
      clearInterval(beat);
      activity.cancellationSignal.removeEventListener('abort', onCancel);
      const why = err.code === 'ENOENT' ? `command not found: ${file}` : `could not start ${file}: ${err.message}`;
      reject(ApplicationFailure.nonRetryable(why, 'LaunchFailed'));
    });
    child.once('exit', (code, signal) => {
      clearInterval(beat);
      if (killTimer) clearTimeout(killTimer);
      activity.cancellationSignal.removeEventListener('abort', onCancel);
      // What the workload left behind in its group does not outlive the step.
      signalGroup('SIGKILL');
      resolve({ code, signal });
    });
  });
}

/**
 * A small watchdog in its own process group: if the agent dies (even by kill -9), it kills the
 * workload's group within a second, so a step never runs on after its agent and then again
 * elsewhere. It exits by itself when the group is gone.
 */
function watchAgent(pgid: number): void {
  const script =
    'while kill -0 "$1" 2>/dev/null && kill -0 -"$2" 2>/dev/null; do sleep 1; done; kill -KILL -"$2" 2>/dev/null';
  const dog = spawn('sh', ['-c', script, 'allot-watchdog', String(process.pid), String(pgid)], {
    detached: true,
    stdio: 'ignore',
  });
  dog.unref();
}

/** Kills a process group, if it still exists. */
export function killGroup(pgid: number, signal: NodeJS.Signals = 'SIGKILL'): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

/** The last `n` lines of a file (reads at most its last 64 KiB). */
export function tail(file: string, n: number): string[] {
  if (!existsSync(file)) return [];
  const size = statSync(file).size;
  const length = Math.min(size, 64 * 1024);
  const buffer = Buffer.alloc(length);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, buffer, 0, length, size - length);
  } finally {
    closeSync(fd);
  }
  const lines = buffer.toString('utf8').split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines.slice(-n);
}

function readOutputs(file: string, logFile: string): Record<string, unknown> {
  if (!existsSync(file)) return {};
  try {
    const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed))
      return parsed as Record<string, unknown>;
    return { value: parsed };
  } catch (err) {
    appendFileSync(logFile, `allot: ignored $ALLOT_OUTPUT, which is not valid JSON: ${(err as Error).message}\n`);
    return {};
  }
}
