/**
 * The baseline's activity: takes a free GPU index of this worker (the worker runs at most as many
 * activities as it has GPUs), runs the workload as a process group with `CUDA_VISIBLE_DEVICES`
 * set, and waits for it; what a team would write without allot.
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import path from 'node:path';

/** Creates the baseline's activities for a worker with `gpus` GPUs, logging under `logDir`. */
export function createNativeActivities(gpus: number, logDir: string) {
  const free = Array.from({ length: gpus }, (_, i) => i);
  mkdirSync(logDir, { recursive: true });
  let launches = 0;
  return {
    /** Runs `command` on a free GPU and returns its exit code. */
    async runWorkload(command: string[]): Promise<number | null> {
      const gpu = free.shift();
      if (gpu === undefined) throw new Error('no free GPU: the worker runs more activities than it has GPUs');
      const [file, ...args] = command;
      if (file === undefined) throw new Error('the command is empty');
      const logFd = openSync(path.join(logDir, `${++launches}.log`), 'a');
      try {
        return await new Promise<number | null>((resolve, reject) => {
          const child = spawn(file, args, {
            env: { PATH: process.env.PATH ?? '', CUDA_VISIBLE_DEVICES: String(gpu) },
            detached: true,
            stdio: ['ignore', logFd, logFd],
          });
          child.once('error', reject);
          child.once('exit', (code) => resolve(code));
        });
      } finally {
        closeSync(logFd);
        free.push(gpu);
      }
    },
  };
}

/** The activity interface, for `proxyActivities` in the baseline's workflow. */
export type NativeActivities = ReturnType<typeof createNativeActivities>;
