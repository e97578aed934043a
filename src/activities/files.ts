/**
 * Local files as the agent moves them to and from the store: walking a folder, hashing bytes, the
 * files a workload has open for writing (so that a half-written file is never sent), and progress
 * lines for large transfers. Files are hashed with the store's `sha256File`.
 */
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import type { Stats } from 'node:fs';
import path from 'node:path';
import { formatBytes } from '../store/format';
import type { TransferProgress } from '../store/types';
import { workloadProcesses } from './proc';

/** A file under a folder. */
export interface LocalFile {
  /** Path relative to the folder, `/`-separated. */
  rel: string;
  abs: string;
  size: number;
  mtimeMs: number;
}

/** Every regular file under `dir` (symbolic links are not followed), sorted by path; none when it is missing. */
export function walkFiles(dir: string): LocalFile[] {
  const out: LocalFile[] = [];
  const visit = (abs: string, rel: string): void => {
    let names: string[];
    try {
      names = readdirSync(abs);
    } catch {
      return;
    }
    for (const name of names) {
      const childAbs = path.join(abs, name);
      const childRel = rel === '' ? name : `${rel}/${name}`;
      let st: Stats;
      try {
        st = lstatSync(childAbs);
      } catch {
        continue; // Removed meanwhile.
      }
      if (st.isDirectory()) visit(childAbs, childRel);
      else if (st.isFile()) out.push({ rel: childRel, abs: childAbs, size: st.size, mtimeMs: st.mtimeMs });
    }
  };
  visit(dir, '');
  return out.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
}

/** The sha256 (hex) of bytes. */
export function sha256Bytes(bytes: string | Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** `O_WRONLY` and `O_RDWR` in `/proc/<pid>/fdinfo/<fd>` flags (octal). */
const WRITE_FLAGS = 0o1 | 0o2;

/**
 * Files the processes of a workload (its group and descendants, see proc.ts) hold open for
 * writing, by absolute path; undefined where `/proc` cannot tell (then callers wait for a file
 * to stay unchanged instead).
 */
export function filesOpenForWriting(rootPid: number): Set<string> | undefined {
  const open = new Set<string>();
  try {
    statSync('/proc/self/fdinfo');
  } catch {
    return undefined;
  }
  for (const p of workloadProcesses(rootPid)) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${p.pid}/fd`);
    } catch {
      continue; // Gone, or not ours to read.
    }
    for (const fd of fds) {
      try {
        const target = readlinkSync(`/proc/${p.pid}/fd/${fd}`);
        if (!target.startsWith('/')) continue;
        const flags = /flags:\s*([0-7]+)/.exec(readFileSync(`/proc/${p.pid}/fdinfo/${fd}`, 'utf8'));
        if (flags && (parseInt(flags[1] ?? '0', 8) & WRITE_FLAGS) !== 0) open.add(target);
      } catch {
        // Closed meanwhile.
      }
    }
  }
  return open;
}

/** Transfers this large or larger get progress lines in the step's log. */
export const PROGRESS_LINE_BYTES = 100 * 1024 * 1024;

/**
 * A progress callback that writes a line for a large transfer every `everyMs` and at its end:
 * `allot: uploading output model (1.2 GiB): 35%, 410 MiB/s`. Small transfers write nothing.
 */
export function progressLines(
  log: (line: string) => void,
  what: string,
  everyMs = 5000,
): (p: TransferProgress) => void {
  const started = Date.now();
  let lastAt = started;
  let ended = false;
  return (p) => {
    if (p.total < PROGRESS_LINE_BYTES || ended) return;
    const now = Date.now();
    const done = p.done >= p.total;
    if (!done && now - lastAt < everyMs) return;
    lastAt = now;
    ended = done;
    const rate = p.done / Math.max(0.001, (now - started) / 1000);
    log(
      `${what} (${formatBytes(p.total)}): ${Math.floor((100 * p.done) / p.total)}%, ${formatBytes(rate)}/s` +
        (done ? ` in ${((now - started) / 1000).toFixed(1)} s` : ''),
    );
  };
}
