/**
 * The `launch` activity: runs a step's workload on this node as its own process group, pinned to
 * the granted GPUs, with its output in a log file; heartbeats its log tail and usage while it
 * runs; enforces its memory and time limits; on cancellation sends SIGTERM to the group and
 * SIGKILL after the grace period.
 *
 * Failures it raises, each a non-retryable `ApplicationFailure` of that type, with
 * {@link LaunchFailureDetails} (see outcome.ts): `MemoryLimitExceeded` (peak and limit in the message),
 * `TimeLimitExceeded`, `NodeDraining` (the agent is stopping and handed the step back),
 * `NodeFenced` (the agent could not reach Temporal and stopped the workload), `LeaseNotHeld` (the
 * pool no longer holds its lease: the agent stopped it), `StaleLease`, `FencingUnavailable` and
 * `DeviceConflict` (fencing), `LaunchFailed` (the command could not start), `InputUnavailable` (an
 * input artifact is missing or does not match its sha256), `OutputMissing` (a declared output
 * was not left), `StoreUnavailable` (the store could not be read or written; the step runs again).
 *
 * Each attempt runs in a work dir of its own (its cwd unless the step sets one), removed after it
 * unless the step keeps it. With a store, the step's checkpoint folder follows it (restored before
 * the run, saved while it runs and after it ends, see checkpoint-sync.ts), its inputs are
 * downloaded before the run and its outputs uploaded after a successful one (artifacts.ts).
 *
 * When the workload has ended, the agent gives the lease back to the pool at once: after a
 * normal end, and when its step is gone (terminated) or its launch timed out, whose steps cannot.
 */
import { createHash } from 'node:crypto';
import { appendFileSync, closeSync, mkdirSync, openSync, rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { poolWorkflowId, releaseSignal } from '../workflows/messages';
import { LaunchFailure } from '../workflows/failures';
import type { LaunchInput, LaunchResult } from '../workflows/step-types';
import type { Store } from '../store/types';
import { ArtifactError, outputPaths, stageInputs, uploadOutputs } from './artifacts';
import { StepCgroup } from './cgroup';
import { CheckpointSync } from './checkpoint-sync';
import type { AgentContext, Stopped } from './context';
import { stepEnvironment } from './environment';
import { claimDevices, fence } from './fencing';
import type { WorkloadMonitor } from './monitor';
import { filesOpenForWriting } from './files';
import { LOG_TAIL_LINES, tail } from './log-tail';
import { workloadOutcome } from './outcome';
import { runProcessGroup } from './process-group';

const MiB = 1024 * 1024;

/** A file-system-safe form of a step id. */
export function safeName(id: string): string {
  return id.replace(/[^A-Za-z0-9._-]/g, '_');
}

/**
 * A folder name of its own for each step id: percent-encoded, so that ids that differ (`P/s/t` and
 * `P/s_t`, `train 1` and `train_1`) never share a folder; a long one is cut and told apart by a
 * hash of the whole id.
 */
export function stepFolderName(stepId: string): string {
  const encoded = encodeURIComponent(stepId).replace(/^\.{1,2}$/, (dots) => '%2E'.repeat(dots.length));
  if (encoded.length <= 200) return encoded;
  return `${encoded.slice(0, 180)}~${createHash('sha256').update(stepId).digest('hex').slice(0, 16)}`;
}

/**
 * Paths used by one attempt of a step on this node. A gang's replicas other than rank 0 get their
 * own (`…-rank-1`), so that replicas packed on one node never share a log, an output, a work dir
 * or a checkpoint folder; a step folder name never holds `@` (it is percent-encoded).
 */
export function stepPaths(
  dataDir: string,
  stepId: string,
  attempt: number,
  rank = 0,
): { log: string; output: string; checkpoint: string; checkpointState: string; work: string } {
  const step = stepFolderName(stepId);
  const replica = rank > 0 ? `-rank-${rank}` : '';
  const own = rank > 0 ? `${step}@rank-${rank}` : step;
  return {
    log: path.join(dataDir, 'logs', step, `attempt-${attempt}${replica}.log`),
    output: path.join(dataDir, 'outputs', step, `attempt-${attempt}${replica}.json`),
    checkpoint: path.join(dataDir, 'checkpoints', own),
    checkpointState: path.join(dataDir, 'checkpoint-state', `${own}.json`),
    work: path.join(dataDir, 'work', step, `attempt-${attempt}${replica}`),
  };
}

/**
 * A free TCP port on this node now: the kernel picks one, which is closed again at once for the
 * gang's replica 0 to listen on (as torchrun's own `--master-port 0` does).
 */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

/** Creates the agent's activities. */
export function createActivities(ctx: AgentContext) {
  return {
    /** Runs a workload to its end (see the module comment). */
    async launch(input: LaunchInput): Promise<LaunchResult> {
      let result: LaunchResult;
      try {
        result = await launch(ctx, input);
      } catch (err) {
        // A step that is gone (terminated) cannot release, and one whose launch timed out waits to
        // hear that its workload has stopped: the workload has ended here, so give the lease back.
        const details = cancellationDetails();
        if (!input.gang && (details?.notFound || details?.timedOut)) {
          await releaseToPool(input, details.timedOut ? { requeue: true, stopped: true } : {});
        }
        throw err;
      }
      // The workload has ended and the ledger has freed its devices: give the lease back now
      // rather than after the step has heard of the end, so that the next step starts sooner. A
      // gang's replica does not: its release would free every replica's lease, and the others may
      // still run; the step releases once all have ended.
      if (input.gang) return result;
      return (await releaseToPool(input)) ? { ...result, released: true } : result;
    },

    /** Where a gang's replica 0 on this node will listen: this node's advertised address and a free port. */
    async gangRendezvous(): Promise<{ address: string; port: number }> {
      return { address: ctx.advertiseAddress ?? '127.0.0.1', port: await freePort() };
    },
  };
}

/** The reasons the running activity was cancelled, if it was (and the SDK says). */
function cancellationDetails(): { notFound: boolean; timedOut: boolean } | undefined {
  try {
    const d = Context.current().cancellationDetails;
    return d ? { notFound: d.notFound, timedOut: d.timedOut } : undefined;
  } catch {
    return undefined;
  }
}

async function launch(ctx: AgentContext, input: LaunchInput): Promise<LaunchResult> {
  const activity = Context.current();
  await fence(ctx, input, activity);
  if (ctx.handback?.aborted || ctx.draining?.()) {
    throw ApplicationFailure.nonRetryable(
      `node ${ctx.nodeId} is draining; it starts no new step`,
      LaunchFailure.NodeDraining,
    );
  }
  await claimDevices(ctx, input, activity);
  if (activity.cancellationSignal.aborted) {
    ctx.ledger.free(input.leaseId);
    throw cancelledBeforeStart(activity);
  }
  let cgroup: StepCgroup | undefined;
  const rank = input.gang?.rank ?? 0;
  const paths = stepPaths(ctx.dataDir, input.stepId, input.attempt, rank);
  try {
    for (const p of [path.dirname(paths.log), path.dirname(paths.output), paths.checkpoint])
      mkdirSync(p, { recursive: true });
    rmSync(paths.output, { force: true });
    rmSync(paths.work, { recursive: true, force: true });
    mkdirSync(paths.work, { recursive: true });
    const log = (line: string): void => appendFileSync(paths.log, `${line}\n`);
    const store = await ctx.store;
    const prepared = await heartbeating(activity, () => prepare(ctx, input, paths, store, log));
    if (activity.cancellationSignal.aborted) throw cancelledBeforeStart(activity);
    const env = stepEnvironment(ctx, input, paths, prepared.env);
    const limitBytes = input.memoryLimitMiB !== undefined ? input.memoryLimitMiB * MiB : undefined;
    if (ctx.cgroups?.available && (limitBytes !== undefined || input.cpuLimitMilli !== undefined)) {
      try {
        cgroup = StepCgroup.create(ctx.cgroups.parent, safeName(input.leaseId), {
          memoryMaxBytes: limitBytes,
          cpuMaxMilli: input.cpuLimitMilli,
        });
      } catch (err) {
        log(`allot: no cgroup for this step (${(err as Error).message}); watching memory`);
      }
    }
    const enforcement = limitBytes === undefined ? 'none' : cgroup ? 'cgroup' : 'polling';
    const logFd = openSync(paths.log, 'a');
    const startedAt = Date.now();
    const checkpoints = prepared.checkpoints;
    let exit: { code: number | null; signal: NodeJS.Signals | null; stopped?: Stopped; monitor?: WorkloadMonitor };
    // Rank 0's checkpoint is the step's: the other replicas of a gang restore it and save nothing.
    const saving = rank === 0 ? checkpoints : undefined;
    try {
      saving?.start();
      exit = await runProcessGroup({
        ctx,
        input: { ...input, cwd: input.cwd !== undefined ? path.resolve(input.cwd) : paths.work },
        env,
        log: { fd: logFd, file: paths.log },
        activity,
        startedAt,
        cgroup,
        ...(checkpoints ? { checkpoint: checkpoints.uri } : {}),
      });
    } catch (err) {
      ctx.onEnded?.(input, 'launch_failed');
      throw err;
    } finally {
      closeSync(logFd);
      if (saving) {
        // Whatever ended the workload (its end, a preemption, a drain), its last checkpoint is sent
        // before the step hears of the end, so that the next attempt resumes from it.
        ctx.finishing?.add(input.leaseId);
        await heartbeating(activity, () => saving.finish()).catch(() => undefined);
      }
    }
    const runningMs = Date.now() - startedAt;
    const oomKilled = cgroup !== undefined && cgroup.read().oomKills > 0;
    await cgroup?.remove();
    cgroup = undefined;
    const result = workloadOutcome(ctx, input, activity, { ...exit, runningMs, oomKilled, enforcement, paths });
    if (rank > 0) return { ...result, logTail: tail(paths.log, LOG_TAIL_LINES) };
    return await heartbeating(activity, () => afterRun(ctx, input, paths, store, checkpoints, result, log));
  } finally {
    ctx.finishing?.delete(input.leaseId);
    await cgroup?.remove();
    ctx.ledger.free(input.leaseId);
    if (!input.keepWorkDir) rmSync(paths.work, { recursive: true, force: true });
  }
}

/** The failure of a launch cancelled before its workload started. */
function cancelledBeforeStart(activity: Context): Error {
  return activity.cancellationSignal.reason instanceof Error
    ? activity.cancellationSignal.reason
    : new CancelledFailure('cancelled before the workload started');
}

/** Heartbeats while `work` runs (a long download or upload), so that the step does not take the agent for lost. */
async function heartbeating<T>(activity: Context, work: () => Promise<T>): Promise<T> {
  const beat = setInterval(() => activity.heartbeat({ transferring: true }), 1000);
  try {
    return await work();
  } finally {
    clearInterval(beat);
  }
}

/**
 * Before the workload starts: its inputs downloaded and checked, its checkpoint restored from the
 * store, and the variables that name them.
 */
async function prepare(
  ctx: AgentContext,
  input: LaunchInput,
  paths: ReturnType<typeof stepPaths>,
  store: Store | undefined,
  log: (line: string) => void,
): Promise<{ env: Record<string, string>; checkpoints?: CheckpointSync }> {
  const events = ctx.storeEvents;
  const rank = input.gang?.rank ?? 0;
  // A gang's outputs are replica 0's: the other replicas get the paths, and nothing is uploaded.
  if (rank === 0 && input.outputs && Object.keys(input.outputs).length > 0 && !store) {
    throw ApplicationFailure.nonRetryable(
      `step ${input.name} declares outputs, but node ${ctx.nodeId} has no store to put them in; ` +
        'give the worker or the agent one with --store (or ALLOT_STORE)',
      LaunchFailure.OutputMissing,
    );
  }
  let env: Record<string, string> = {};
  if (input.inputs && Object.keys(input.inputs).length > 0) {
    try {
      env = await stageInputs({
        store,
        inputs: input.inputs,
        workDir: paths.work,
        log,
        onReceived: (n) => events?.transferred('artifact', 'download', n),
      });
    } catch (err) {
      const message = `step ${input.name}: ${(err as Error).message}`;
      log(`allot: ${message}; the workload was not started`);
      throw ApplicationFailure.nonRetryable(message, LaunchFailure.InputUnavailable);
    }
  }
  if (input.outputs) env = { ...env, ...outputPaths(input.outputs, paths.work) };
  if (!store) return { env };
  const checkpoints = new CheckpointSync({
    store,
    stepId: input.stepId,
    dir: paths.checkpoint,
    nodeId: ctx.nodeId,
    attempt: input.attempt,
    leaseId: input.leaseId,
    stateFile: paths.checkpointState,
    intervalMs: ctx.checkpointSyncMs,
    log,
    openForWriting: () => {
      const pgid = ctx.ledger.list().find((c) => c.leaseId === input.leaseId)?.pgid;
      return pgid === undefined ? new Set<string>() : filesOpenForWriting(pgid);
    },
    onSent: (n) => events?.transferred('checkpoint', 'upload', n),
    onReceived: (n) => events?.transferred('checkpoint', 'download', n),
    onFailed: () => events?.checkpointSaveFailed(),
  });
  if (rank > 0) {
    // Every replica starts from the store's checkpoint, whatever its own folder held.
    rmSync(paths.checkpoint, { recursive: true, force: true });
    rmSync(paths.checkpointState, { force: true });
  }
  try {
    await checkpoints.restore();
  } catch (err) {
    const message = `could not read the checkpoint of step ${input.name} at ${checkpoints.uri}: ${(err as Error).message}`;
    log(`allot: ${message}; the step runs again`);
    throw ApplicationFailure.nonRetryable(message, LaunchFailure.StoreUnavailable);
  }
  return { env, checkpoints };
}

/**
 * After a workload that ended on its own: a successful one's outputs uploaded and its checkpoint
 * kept or removed (`checkpointRetention`); the result names both.
 */
async function afterRun(
  ctx: AgentContext,
  input: LaunchInput,
  paths: ReturnType<typeof stepPaths>,
  store: Store | undefined,
  checkpoints: CheckpointSync | undefined,
  result: LaunchResult,
  log: (line: string) => void,
): Promise<LaunchResult> {
  if (result.exitCode !== 0 || !store) return checkpoints ? { ...result, checkpoint: checkpoints.uri } : result;
  let artifacts: LaunchResult['artifacts'];
  if (input.outputs && Object.keys(input.outputs).length > 0) {
    try {
      artifacts = await uploadOutputs({
        store,
        stepId: input.stepId,
        attempt: input.attempt,
        outputs: input.outputs,
        workDir: paths.work,
        log,
        onSent: (n) => ctx.storeEvents?.transferred('artifact', 'upload', n),
      });
    } catch (err) {
      const missing = err instanceof ArtifactError;
      const message = missing
        ? `step ${input.name}: ${err.message}`
        : `step ${input.name}: could not upload its outputs to ${store.url}: ${(err as Error).message}`;
      log(`allot: ${message}${missing ? '' : '; the step runs again (from its checkpoint)'}`);
      throw ApplicationFailure.create({
        message,
        type: missing ? LaunchFailure.OutputMissing : LaunchFailure.StoreUnavailable,
        nonRetryable: true,
        details: [
          {
            exitCode: result.exitCode,
            signal: result.signal,
            logFile: result.logFile,
            logTail: tail(paths.log, LOG_TAIL_LINES),
          },
        ],
      });
    }
  }
  let checkpoint: string | undefined = checkpoints?.uri;
  if (checkpoints && (input.checkpointRetention ?? 'remove') === 'remove') {
    try {
      await checkpoints.remove();
      checkpoint = undefined;
    } catch (err) {
      log(`allot: could not remove the checkpoint at ${checkpoints.uri}: ${(err as Error).message}; it is left there`);
    }
  }
  return {
    ...result,
    logTail: tail(paths.log, LOG_TAIL_LINES),
    ...(artifacts ? { artifacts } : {}),
    ...(checkpoint ? { checkpoint } : {}),
  };
}

/** Longest wait for the pool to take a release from the agent, ms; past it the step releases. */
const RELEASE_WAIT_MS = 2_000;

/**
 * Signals the pool that a launch's lease is free, with the worker's own client. True when the
 * signal was accepted; otherwise the step releases, as it always did (releasing twice is a no-op).
 */
async function releaseToPool(input: LaunchInput, how: { requeue?: true; stopped?: true } = {}): Promise<boolean> {
  if (input.pool === undefined || input.requestId === undefined) return false;
  let client: Client;
  try {
    client = Context.current().client;
  } catch {
    return false; // No client, as in a MockActivityEnvironment.
  }
  const signalled = client.workflow
    .getHandle(poolWorkflowId(input.pool))
    .signal(releaseSignal, { requestId: input.requestId, ...how })
    .then(
      () => true,
      () => false,
    );
  const timeout = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), RELEASE_WAIT_MS).unref());
  return Promise.race([signalled, timeout]);
}
