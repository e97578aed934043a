/**
 * cgroup v2 limits for workloads, where the machine allows them: each launch gets a cgroup of its
 * own under the agent's, with `memory.max` (the kernel kills the whole group past it:
 * `memory.oom.group`), no swap, and `cpu.max`. The agent moves itself into a leaf
 * (`allot-agent`) so that its own cgroup may delegate the memory and cpu controllers.
 *
 * Where this is not possible (cgroup v1 or a hybrid layout, a read-only `/sys/fs/cgroup`, a
 * cgroup shared with other processes), `prepareCgroups` says why and the agent falls back to
 * watching the resident memory of the workload's processes, and CPU limits are advisory.
 */
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** Where step cgroups go, once the agent's cgroup delegates the controllers. */
export interface CgroupParent {
  /** Directory of the agent's cgroup; step cgroups are created in it. */
  dir: string;
  /** Whether the cpu controller is delegated too (`cpu.max`). */
  cpu: boolean;
}

/** The outcome of {@link prepareCgroups}: a parent for step cgroups, or why there is none. */
export type CgroupSupport = { available: true; parent: CgroupParent } | { available: false; why: string };

/** Where to look; tests point these at a fake tree. */
export interface CgroupPaths {
  /** Mount point of the cgroup v2 hierarchy. @default "/sys/fs/cgroup" */
  root?: string;
  /** This process's cgroup membership file. @default "/proc/self/cgroup" */
  selfFile?: string;
  /** The pid moved into the agent's leaf. @default process.pid */
  pid?: number;
}

function read(file: string): string {
  return readFileSync(file, 'utf8').trim();
}

/** Finds this process's cgroup v2 and makes it able to hold limited step cgroups. */
export function prepareCgroups(paths: CgroupPaths = {}): CgroupSupport {
  const root = paths.root ?? '/sys/fs/cgroup';
  if (process.platform !== 'linux') return { available: false, why: 'cgroups exist on Linux only' };
  if (!existsSync(path.join(root, 'cgroup.controllers'))) {
    return { available: false, why: `no cgroup v2 hierarchy at ${root} (cgroup v1 or a hybrid layout)` };
  }
  let rel: string | undefined;
  try {
    rel = read(paths.selfFile ?? '/proc/self/cgroup')
      .split('\n')
      .find((l) => l.startsWith('0::'))
      ?.slice(3);
  } catch (err) {
    return { available: false, why: `cannot read this process's cgroup: ${(err as Error).message}` };
  }
  if (rel === undefined) return { available: false, why: 'this process is in no cgroup v2' };
  const own = path.join(root, rel);
  try {
    const controllers = read(path.join(own, 'cgroup.controllers')).split(/\s+/);
    if (!controllers.includes('memory')) {
      return { available: false, why: `the memory controller is not delegated to ${own}` };
    }
    const cpu = controllers.includes('cpu');
    const enabled = read(path.join(own, 'cgroup.subtree_control')).split(/\s+/);
    const wanted = ['memory', ...(cpu ? ['cpu'] : [])].filter((c) => !enabled.includes(c));
    if (wanted.length > 0) {
      // A cgroup with processes in it cannot delegate controllers: move the agent into a leaf.
      const leaf = path.join(own, 'allot-agent');
      mkdirSync(leaf, { recursive: true });
      writeFileSync(path.join(leaf, 'cgroup.procs'), String(paths.pid ?? process.pid));
      writeFileSync(path.join(own, 'cgroup.subtree_control'), wanted.map((c) => `+${c}`).join(' '));
    }
    return { available: true, parent: { dir: own, cpu } };
  } catch (err) {
    return { available: false, why: `cannot set up step cgroups under ${own}: ${(err as Error).message}` };
  }
}

/** Limits of one launch's cgroup. */
export interface CgroupLimits {
  /** `memory.max`, bytes. */
  memoryMaxBytes?: number;
  /** `cpu.max` as milli-CPU (quota per 100 ms period). */
  cpuMaxMilli?: number;
}

/** What a step cgroup reports. */
export interface CgroupReading {
  memoryBytes?: number;
  /** `memory.peak` where the kernel has it (5.19+). */
  peakBytes?: number;
  /** `usage_usec` of `cpu.stat`, in seconds. */
  cpuSeconds?: number;
  /** `oom_kill` of `memory.events`: processes the kernel killed at `memory.max`. */
  oomKills: number;
}

const CPU_PERIOD_US = 100_000;

/** The cgroup of one launch. */
export class StepCgroup {
  private constructor(
    /** Directory of the cgroup. */
    readonly dir: string,
  ) {}

  /** Creates the cgroup and sets its limits. */
  static create(parent: CgroupParent, name: string, limits: CgroupLimits): StepCgroup {
    const dir = path.join(parent.dir, `allot-${name}`);
    mkdirSync(dir, { recursive: true });
    const set = (file: string, value: string): void => writeFileSync(path.join(dir, file), value);
    if (limits.memoryMaxBytes !== undefined) {
      set('memory.max', String(limits.memoryMaxBytes));
      set('memory.oom.group', '1');
      try {
        set('memory.swap.max', '0');
      } catch {
        // No swap accounting on this kernel: nothing to turn off.
      }
    }
    if (limits.cpuMaxMilli !== undefined && parent.cpu) {
      const quota = Math.max(1000, Math.round((limits.cpuMaxMilli / 1000) * CPU_PERIOD_US));
      set('cpu.max', `${quota} ${CPU_PERIOD_US}`);
    }
    return new StepCgroup(dir);
  }

  /** The file a process writes its pid into to join the cgroup. */
  get procsFile(): string {
    return path.join(this.dir, 'cgroup.procs');
  }

  /** Current memory, peak, CPU time and OOM kills. */
  read(): CgroupReading {
    const value = (file: string): string | undefined => {
      try {
        return read(path.join(this.dir, file));
      } catch {
        return undefined;
      }
    };
    const number = (text: string | undefined): number | undefined => {
      const n = Number(text);
      return text !== undefined && text !== '' && Number.isFinite(n) ? n : undefined;
    };
    const field = (text: string | undefined, key: string): number | undefined =>
      number(
        text
          ?.split('\n')
          .find((l) => l.startsWith(`${key} `))
          ?.split(' ')[1],
      );
    const usec = field(value('cpu.stat'), 'usage_usec');
    return {
      memoryBytes: number(value('memory.current')),
      peakBytes: number(value('memory.peak')),
      cpuSeconds: usec !== undefined ? usec / 1e6 : undefined,
      oomKills: field(value('memory.events'), 'oom_kill') ?? 0,
    };
  }

  /** Kills what is left in the cgroup and removes it (waiting up to a second for its processes to die). */
  async remove(): Promise<void> {
    try {
      writeFileSync(path.join(this.dir, 'cgroup.kill'), '1');
    } catch {
      for (const pid of this.pids()) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
    }
    for (let i = 0; i < 50; i++) {
      try {
        rmdirSync(this.dir);
        return;
      } catch (err) {
        // EBUSY: processes are still dying. Anything else (gone, or not a kernel cgroup): leave it.
        if ((err as NodeJS.ErrnoException).code !== 'EBUSY') return;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }

  private pids(): number[] {
    try {
      return read(this.procsFile)
        .split('\n')
        .filter((l) => l !== '')
        .map(Number);
    } catch {
      return [];
    }
  }
}
