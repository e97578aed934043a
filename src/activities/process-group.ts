/**
 * A workload as a process group: spawned in a cgroup when there is one, watched for memory and
 * time, stopped with SIGTERM and then SIGKILL after its grace period (on cancellation, at its time
 * limit, on a handback, or when its agent fences it), and killed with its agent by a watchdog.
 */
import { spawn } from 'node:child_process';
import type { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { LaunchFailure } from '../workflows/failures';
import type { LaunchInput } from '../workflows/step-types';
import type { StepCgroup } from './cgroup';
import type { AgentContext, Stopped } from './context';
import { LOG_TAIL_LINES, tail } from './log-tail';
import { WorkloadMonitor } from './monitor';

const MiB = 1024 * 1024;

/** What a process group runs with. */
export interface ProcessGroupRun {
  ctx: AgentContext;
  input: LaunchInput;
  env: Record<string, string>;
  /** The attempt's log: an open descriptor for the workload's output, and its file. */
  log: { fd: number; file: string };
  activity: Context;
  startedAt: number;
  cgroup: StepCgroup | undefined;
  /** Where the step's checkpoint lives in the store, shown with each heartbeat (the step's page in the UI). */
  checkpoint?: string;
}

/**
 * Spawns the workload as a process group and waits for it. It stops the group (SIGTERM, then
 * SIGKILL after the grace period) on cancellation, at the time limit and on a handback, and kills
 * it at once past the memory limit.
 */
export function runProcessGroup({
  ctx,
  input,
  env,
  log,
  activity,
  startedAt,
  cgroup,
  checkpoint,
}: ProcessGroupRun): Promise<{
  code: number | null;
  signal: NodeJS.Signals | null;
  stopped?: Stopped;
  monitor?: WorkloadMonitor;
}> {
  return new Promise((resolve, reject) => {
    const [file, ...args] = input.command;
    if (file === undefined) {
      reject(ApplicationFailure.nonRetryable('the command is empty', 'InvalidInput'));
      return;
    }
    // In a cgroup, a small shell joins it first and then becomes the workload (exec), so that
    // every process of the workload is in the cgroup from its start. The argv is never parsed.
    const [spawnFile, spawnArgs] = cgroup
      ? [
          'sh',
          [
            '-c',
            'echo $$ > "$0" || { echo "allot: cannot join cgroup $0" >&2; exit 125; }; exec "$@"',
            cgroup.procsFile,
            file,
            ...args,
          ],
        ]
      : [file, args];
    const child = spawn(spawnFile, spawnArgs, {
      cwd: input.cwd,
      env,
      detached: true,
      stdio: ['ignore', log.fd, log.fd],
    });
    let stopped: Stopped | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    let limitTimer: NodeJS.Timeout | undefined;
    const signalGroup = (signal: NodeJS.Signals): void => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, signal);
      } catch {
        // The group is already gone.
      }
    };
    let killAt = Infinity;
    const terminate = (graceMs = input.gracePeriodMs): void => {
      // A second, shorter deadline (a fence after a cancellation) brings the SIGKILL forward.
      if (killTimer && Date.now() + graceMs >= killAt) return;
      if (!killTimer) signalGroup('SIGTERM');
      else clearTimeout(killTimer);
      killAt = Date.now() + graceMs;
      killTimer = setTimeout(() => signalGroup('SIGKILL'), graceMs);
    };
    const onCancel = (): void => terminate();
    const onHandback = (): void => {
      stopped ??= { why: 'handback' };
      terminate();
    };
    let monitor: WorkloadMonitor | undefined;
    if (child.pid !== undefined) {
      ctx.ledger.setProcessGroup(input.leaseId, child.pid);
      watchAgent(child.pid);
      const pid = child.pid;
      monitor = new WorkloadMonitor({
        rootPid: pid,
        intervalMs: ctx.sampleMs ?? 500,
        memoryLimitBytes: input.memoryLimitMiB !== undefined ? input.memoryLimitMiB * MiB : undefined,
        cgroup,
        gpu: ctx.gpu,
        gpuIndices: input.gpuIndices.map((i) => Number(ctx.visibleIds?.[i] ?? i)).filter((i) => Number.isInteger(i)),
        onMemoryExceeded: (peakBytes) => {
          stopped = { why: 'memory', peakBytes };
          signalGroup('SIGKILL');
        },
      });
      monitor.start();
      const m = monitor;
      ctx.running?.set(input.leaseId, {
        input,
        startedAt,
        logFile: log.file,
        usage: () => ({ ...m.usage(), ...(input.requested ? { requested: input.requested } : {}) }),
        current: () => m.latest(),
        stop: (why, graceMs) => {
          stopped ??= { why };
          terminate(Math.min(graceMs, input.gracePeriodMs));
        },
      });
    }
    if (input.timeLimitMs !== undefined) {
      limitTimer = setTimeout(() => {
        stopped ??= { why: 'time' };
        terminate();
      }, input.timeLimitMs);
    }
    activity.cancellationSignal.addEventListener('abort', onCancel, { once: true });
    ctx.handback?.addEventListener('abort', onHandback, { once: true });
    const details = (): Record<string, unknown> => ({
      pid: child.pid,
      attempt: input.attempt,
      ...(input.gang ? { rank: input.gang.rank } : {}),
      logFile: log.file,
      logTail: tail(log.file, LOG_TAIL_LINES),
      ...(checkpoint !== undefined ? { checkpoint } : {}),
      ...(monitor
        ? {
            usage: { ...monitor.usage(), ...(input.requested ? { requested: input.requested } : {}) },
            current: monitor.latest(),
          }
        : {}),
    });
    const beat = setInterval(() => activity.heartbeat(details()), ctx.heartbeatMs ?? 1000);
    activity.heartbeat({
      pid: child.pid,
      attempt: input.attempt,
      ...(input.gang ? { rank: input.gang.rank } : {}),
      logFile: log.file,
    });
    const cleanup = (): void => {
      clearInterval(beat);
      if (killTimer) clearTimeout(killTimer);
      if (limitTimer) clearTimeout(limitTimer);
      monitor?.stop();
      ctx.running?.delete(input.leaseId);
      activity.cancellationSignal.removeEventListener('abort', onCancel);
      ctx.handback?.removeEventListener('abort', onHandback);
    };
    child.once('error', (err: NodeJS.ErrnoException) => {
      cleanup();
      const why = err.code === 'ENOENT' ? `command not found: ${file}` : `could not start ${file}: ${err.message}`;
      reject(ApplicationFailure.nonRetryable(why, LaunchFailure.LaunchFailed));
    });
    child.once('exit', (code, signal) => {
      cleanup();
      // What the workload left behind in its group does not outlive the step.
      signalGroup('SIGKILL');
      resolve({ code, signal, stopped, monitor });
    });
  });
}

/**
 * A small watchdog in its own process group: if the agent dies (even by kill -9), it kills the
 * workload's group within a second, so a step never runs on after its agent and then again
 * elsewhere. It exits by itself when the group is gone.
 */
export function watchAgent(pgid: number): void {
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
