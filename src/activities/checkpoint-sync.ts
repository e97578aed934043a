/**
 * Keeps a step's checkpoint folder (`ALLOT_CHECKPOINT_DIR`, a local folder on the node, for fast
 * writes) in the store, so that the step's next attempt resumes from it on any node.
 *
 * - Before an attempt starts, `restore` makes the local folder the store's latest checkpoint,
 *   wherever the earlier attempt ran. When the store's latest is the one this node saved or
 *   restored last, the local folder is kept as it is: it is as new or newer (the agent stopped
 *   before it could send the newest files).
 * - While the workload runs, a pass every `intervalMs` sends what changed: only files the
 *   workload does not hold open for writing (or, where that cannot be told, files unchanged since
 *   the previous pass), so a half-written file never becomes the latest.
 * - `finish` sends everything once the workload has ended (preempted, drained, cancelled or done).
 *
 * A save writes file contents as blobs named by their sha256, then a new manifest that lists them,
 * under a key of its own: `manifests/<lease number>-<save number>.json`. The latest checkpoint is
 * the manifest with the highest key, so a reader sees one whole checkpoint, and an attempt whose
 * step has moved on (its agent was cut off, and a later attempt runs elsewhere under a later
 * lease, whose number the pool raises with each grant) can never make its late save the latest.
 * After a save, an attempt whose manifest is the latest removes the older manifests and the blobs
 * only they list; one that finds a later manifest saves no more and removes nothing. A blob
 * listed by a restored manifest is checked to be in the store before this attempt lists it itself.
 * A pass that fails is tried again on the next; it never stops the workload.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { formatBytes } from '../store/format';
import { checkpointBlobPrefix, checkpointManifestPrefix, checkpointPrefix, folderUri } from '../store/layout';
import type { Store } from '../store/types';
import type { LocalFile } from './files';
import { sha256File } from '../store/local-files';
import { progressLines, walkFiles } from './files';

/** One file of a checkpoint. */
export interface CheckpointFile {
  /** Path relative to the checkpoint folder, `/`-separated. */
  path: string;
  size: number;
  sha256: string;
}

/** The latest checkpoint of a step, as the store keeps it (`manifest.json`). */
export interface CheckpointManifest {
  version: 1;
  stepId: string;
  /** Names this save: node, attempt and a counter. */
  id: string;
  nodeId: string;
  attempt: number;
  /** The lease it was saved under (`<pool>-<n>`, n growing with each grant of the pool). */
  leaseId?: string;
  /** When it was saved, ms since the epoch. */
  savedAt: number;
  files: CheckpointFile[];
}

/** What this node last knew the store to hold, kept beside the local folder. */
interface LocalState {
  id: string;
  files: Record<string, { size: number; mtimeMs: number; sha256: string }>;
}

/** Time between passes while the workload runs, ms. */
export const DEFAULT_CHECKPOINT_SYNC_MS = 2000;

/** Options of a checkpoint sync. */
export interface CheckpointSyncOptions {
  store: Store;
  stepId: string;
  /** The local checkpoint folder. */
  dir: string;
  nodeId: string;
  attempt: number;
  /** The lease this attempt runs under (`<pool>-<n>`: later grants have higher numbers). */
  leaseId: string;
  /** Where this node keeps what it last knew of the store's checkpoint. @default beside `dir` */
  stateFile?: string;
  /** Time between passes while the workload runs, ms. @default DEFAULT_CHECKPOINT_SYNC_MS */
  intervalMs?: number;
  /** Writes a line to the step's log. */
  log: (line: string) => void;
  /** Files the workload holds open for writing now (absolute paths); undefined when that cannot be told. */
  openForWriting?: () => Set<string> | undefined;
  /** Bytes sent (for metrics). */
  onSent?: (bytes: number) => void;
  /** Bytes received (for metrics). */
  onReceived?: (bytes: number) => void;
  /** A pass that failed (for metrics). */
  onFailed?: (err: unknown) => void;
}

/** Keeps one attempt's checkpoint folder in the store (see the module comment). */
export class CheckpointSync {
  /** What the store holds of each local file, by relative path. */
  private synced = new Map<string, { size: number; mtimeMs: number; sha256: string }>();
  /** Blobs the store holds for this step (referenced by the current manifest, or sent since). */
  private blobs = new Set<string>();
  /** Blobs this attempt sent, or found in the store: safe to list in a manifest. */
  private verified = new Set<string>();
  /** A later attempt saved: this one saves no more. */
  private superseded = false;
  /** Each file's size and mtime at the previous pass, for files whose writers cannot be told. */
  private seen = new Map<string, string>();
  private manifestId: string | undefined;
  /** The key of this attempt's latest manifest in the store. */
  private ownKey: string | undefined;
  private seq = 0;
  private timer: NodeJS.Timeout | undefined;
  private pass: Promise<void> | undefined;
  private failing = false;
  private saves = 0;
  private lastLogAt = 0;
  private readonly stateFile: string;
  readonly uri: string;

  constructor(private readonly o: CheckpointSyncOptions) {
    this.stateFile = o.stateFile ?? `${o.dir.replace(/\/+$/, '')}.store.json`;
    this.uri = folderUri(o.store, checkpointPrefix(o.stepId));
  }

  /**
   * Makes the local folder the store's latest checkpoint (see the module comment); throws when the
   * store cannot be read, so that the attempt does not start over a checkpoint it could not see.
   */
  async restore(): Promise<void> {
    const { store, dir, log } = this.o;
    mkdirSync(dir, { recursive: true });
    const latest = await latestCheckpoint(store, this.o.stepId);
    const manifest = latest?.manifest;
    if (latest && !manifest) log(`allot: ignored an unreadable checkpoint manifest at ${store.uri(latest.key)}`);
    const local = this.readState();
    if (!manifest) {
      if (local) {
        // This node's copy was saved to the store once, and the store's is gone (removed after the
        // step succeeded): the step starts over, as it would anywhere else.
        rmSync(dir, { recursive: true, force: true });
        mkdirSync(dir, { recursive: true });
        rmSync(this.stateFile, { force: true });
        log(`allot: the checkpoint at ${this.uri} was removed; this node's copy too: the step starts over`);
      }
      return;
    }
    this.manifestId = manifest.id;
    for (const f of manifest.files) this.blobs.add(f.sha256);
    if (local && local.id === manifest.id) {
      // This node saved or restored the store's latest: what it has is as new or newer.
      for (const [rel, v] of Object.entries(local.files)) this.synced.set(rel, v);
      log(`allot: checkpoint at ${this.uri}: the local copy is up to date (${describe(manifest)})`);
      return;
    }
    const wanted = new Map(manifest.files.map((f) => [f.path, f]));
    const present = new Map<string, LocalFile>();
    for (const f of walkFiles(dir)) {
      if (wanted.has(f.rel)) present.set(f.rel, f);
      else rmSync(f.abs, { force: true });
    }
    let received = 0;
    for (const f of manifest.files) {
      const abs = path.join(dir, ...f.path.split('/'));
      const have = present.get(f.path);
      if (!(have && have.size === f.size && (await sha256File(abs)) === f.sha256)) {
        mkdirSync(path.dirname(abs), { recursive: true });
        const got = await store.getFile(`${checkpointBlobPrefix(this.o.stepId)}${f.sha256}`, abs, {
          onProgress: progressLines(log, `allot: restoring checkpoint file ${f.path}`),
        });
        if (got.sha256 !== f.sha256)
          throw new Error(
            `checkpoint file ${f.path} at ${this.uri} is damaged (sha256 ${got.sha256}, expected ${f.sha256})`,
          );
        received += got.size;
      }
      const now = statSync(abs);
      this.synced.set(f.path, { size: now.size, mtimeMs: now.mtimeMs, sha256: f.sha256 });
    }
    this.o.onReceived?.(received);
    this.writeState();
    log(`allot: restored checkpoint from ${this.uri} (${describe(manifest)})`);
  }

  /** Starts the passes while the workload runs. */
  start(): void {
    const every = this.o.intervalMs ?? DEFAULT_CHECKPOINT_SYNC_MS;
    this.timer = setInterval(() => {
      if (!this.pass) void this.runPass(false);
    }, every);
  }

  /** Stops the passes and sends everything the folder holds now (the workload has ended). */
  async finish(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.pass;
    await this.runPass(true);
    if (this.failing) throw new Error(`the last checkpoint could not be saved to ${this.uri}`);
  }

  /**
   * Removes the checkpoint from the store and the node (after the step succeeded), unless a later
   * attempt has saved one since (this attempt's step has moved on: its checkpoint is not ours).
   */
  async remove(): Promise<void> {
    const { store, stepId } = this.o;
    const manifests = await store.list(checkpointManifestPrefix(stepId));
    const mine = manifestKeyOrder(this.o.leaseId, Number.MAX_SAFE_INTEGER);
    const later = manifests.find((m) => manifestName(m.key) > mine);
    if (later) {
      this.o.log(`allot: kept the checkpoint at ${this.uri}: a later attempt of this step saved it`);
      return;
    }
    const blobs = await store.list(checkpointBlobPrefix(stepId));
    for (const m of manifests) await store.remove(m.key);
    for (const b of blobs) if (/\/[0-9a-f]{64}$/.test(b.key)) await store.remove(b.key);
    rmSync(this.o.dir, { recursive: true, force: true });
    rmSync(this.stateFile, { force: true });
    if (manifests.length > 0)
      this.o.log(`allot: removed the checkpoint at ${this.uri} (the step succeeded; checkpointRetention "remove")`);
  }

  private runPass(final: boolean): Promise<void> {
    const pass = this.sync(final).then(
      () => {
        if (this.failing) this.o.log(`allot: checkpoint saves to ${this.uri} work again`);
        this.failing = false;
      },
      (err: unknown) => {
        if (!this.failing || final)
          this.o.log(
            `allot: could not save the checkpoint to ${this.uri}: ${(err as Error).message}` +
              (final
                ? ''
                : `; trying again every ${Math.round((this.o.intervalMs ?? DEFAULT_CHECKPOINT_SYNC_MS) / 1000)} s (the workload goes on)`),
          );
        this.failing = true;
        this.o.onFailed?.(err);
      },
    );
    this.pass = pass.finally(() => (this.pass = undefined));
    return this.pass;
  }

  /** One pass: sends the files that changed and are whole, then the manifest. */
  private async sync(final: boolean): Promise<void> {
    const { store, stepId, dir } = this.o;
    if (this.superseded) return;
    const files = walkFiles(dir);
    const open = final ? new Set<string>() : this.o.openForWriting?.();
    let changed = false;
    let sent = 0;
    let sentFiles = 0;
    const present = new Set<string>();
    for (const f of files) {
      present.add(f.rel);
      const have = this.synced.get(f.rel);
      if (have && have.size === f.size && have.mtimeMs === f.mtimeMs) continue;
      if (!final && !this.whole(f, open)) continue;
      const sha256 = await sha256File(f.abs);
      if (have && have.sha256 === sha256) {
        this.synced.set(f.rel, { size: f.size, mtimeMs: f.mtimeMs, sha256 });
        continue;
      }
      if (!this.blobs.has(sha256)) {
        const put = await store.putFile(`${checkpointBlobPrefix(stepId)}${sha256}`, f.abs, {
          onProgress: progressLines(this.o.log, `allot: saving checkpoint file ${f.rel}`),
        });
        if (put.sha256 !== sha256) {
          // The file changed while it was sent: drop the blob, try again on the next pass.
          await store.remove(`${checkpointBlobPrefix(stepId)}${put.sha256}`);
          continue;
        }
        this.blobs.add(sha256);
        this.verified.add(sha256);
        sent += put.size;
        sentFiles++;
      }
      this.synced.set(f.rel, { size: f.size, mtimeMs: f.mtimeMs, sha256 });
      changed = true;
    }
    for (const rel of [...this.synced.keys()]) {
      if (!present.has(rel)) {
        this.synced.delete(rel);
        changed = true;
      }
    }
    if (!changed) return;
    for (const [rel, v] of this.synced) {
      if (this.verified.has(v.sha256)) continue;
      const blob = `${checkpointBlobPrefix(stepId)}${v.sha256}`;
      if (!(await store.stat(blob))) {
        const put = await store.putFile(blob, path.join(dir, ...rel.split('/')));
        if (put.sha256 !== v.sha256) {
          await store.remove(`${checkpointBlobPrefix(stepId)}${put.sha256}`);
          throw new Error(`checkpoint file ${rel} changed while it was sent again`);
        }
        sent += put.size;
      }
      this.verified.add(v.sha256);
    }
    const key = `${checkpointManifestPrefix(stepId)}${manifestKeyOrder(this.o.leaseId, ++this.seq)}.json`;
    const manifest: CheckpointManifest = {
      version: 1,
      stepId,
      id: `${this.o.nodeId}:${this.o.attempt}:${this.o.leaseId}:${this.seq}`,
      nodeId: this.o.nodeId,
      attempt: this.o.attempt,
      leaseId: this.o.leaseId,
      savedAt: Date.now(),
      files: [...this.synced.entries()]
        .map(([p, v]) => ({ path: p, size: v.size, sha256: v.sha256 }))
        .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)),
    };
    await store.putBytes(key, JSON.stringify(manifest));
    this.manifestId = manifest.id;
    this.ownKey = key;
    this.writeState();
    this.o.onSent?.(sent);
    this.saves++;
    await this.tidy(key, manifest);
    const now = Date.now();
    if (final || this.saves === 1 || now - this.lastLogAt >= 60_000) {
      this.lastLogAt = now;
      this.o.log(
        `allot: checkpoint saved to ${this.uri} (${describe(manifest)}; sent ${sentFiles} file${sentFiles === 1 ? '' : 's'}, ${formatBytes(sent)})`,
      );
    }
  }

  /**
   * After a save: when this attempt's manifest is the latest, removes the older manifests and the
   * blobs only they listed; when a later attempt's is, this attempt saves no more (and says so).
   */
  private async tidy(key: string, manifest: CheckpointManifest): Promise<void> {
    const { store, stepId } = this.o;
    const manifests = await store.list(checkpointManifestPrefix(stepId));
    const name = manifestName(key);
    const later = manifests.filter((m) => manifestName(m.key) > name).pop();
    if (later) {
      this.superseded = true;
      if (this.timer) clearInterval(this.timer);
      this.o.log(
        `allot: a later attempt of this step has saved its checkpoint (${manifestName(later.key)}); this attempt saves no more`,
      );
      return;
    }
    for (const m of manifests) if (manifestName(m.key) < name) await store.remove(m.key);
    const listed = new Set(manifest.files.map((f) => f.sha256));
    for (const b of [...this.blobs]) {
      if (listed.has(b)) continue;
      await store.remove(`${checkpointBlobPrefix(stepId)}${b}`);
      this.blobs.delete(b);
      this.verified.delete(b);
    }
  }

  /** Whether a changed file is whole: not held open for writing, or unchanged since the previous pass. */
  private whole(f: LocalFile, open: Set<string> | undefined): boolean {
    if (open) return !open.has(f.abs);
    const mark = `${f.size}:${f.mtimeMs}`;
    const before = this.seen.get(f.rel);
    this.seen.set(f.rel, mark);
    return before === mark;
  }

  private readState(): LocalState | undefined {
    if (!existsSync(this.stateFile)) return undefined;
    try {
      const s = JSON.parse(readFileSync(this.stateFile, 'utf8')) as LocalState;
      return typeof s.id === 'string' && typeof s.files === 'object' && s.files !== null ? s : undefined;
    } catch {
      return undefined;
    }
  }

  private writeState(): void {
    if (this.manifestId === undefined) return;
    const state: LocalState = { id: this.manifestId, files: Object.fromEntries(this.synced) };
    mkdirSync(path.dirname(this.stateFile), { recursive: true });
    writeFileSync(this.stateFile, JSON.stringify(state));
  }
}

/** A manifest read from the store, or undefined when it is not one. */
function parseManifest(raw: Uint8Array): CheckpointManifest | undefined {
  try {
    const m = JSON.parse(Buffer.from(raw).toString('utf8')) as CheckpointManifest;
    const ok =
      m.version === 1 &&
      typeof m.id === 'string' &&
      Array.isArray(m.files) &&
      m.files.every(
        (f) =>
          typeof f.path === 'string' &&
          !f.path.split('/').includes('..') &&
          !f.path.startsWith('/') &&
          typeof f.size === 'number' &&
          typeof f.sha256 === 'string' &&
          /^[0-9a-f]{64}$/.test(f.sha256),
      );
    return ok ? m : undefined;
  } catch {
    return undefined;
  }
}

function describe(m: CheckpointManifest): string {
  const bytes = m.files.reduce((s, f) => s + f.size, 0);
  return (
    `${m.files.length} file${m.files.length === 1 ? '' : 's'}, ${formatBytes(bytes)}, ` +
    `saved by node ${m.nodeId} in attempt ${m.attempt} at ${new Date(m.savedAt).toISOString()}`
  );
}

/** The number of a lease (`<pool>-<n>`): later grants of a pool have higher numbers; 0 when it has none. */
function leaseNumber(leaseId: string): number {
  const m = /-(\d+)$/.exec(leaseId);
  return m ? Number(m[1]) : 0;
}

/** A manifest's name, in the order of saves: lease number, then save number, both zero-padded. */
export function manifestKeyOrder(leaseId: string, save: number): string {
  return `${String(leaseNumber(leaseId)).padStart(16, '0')}-${String(save).padStart(16, '0')}`;
}

/** The name of a manifest key, without its folder and `.json`. */
function manifestName(key: string): string {
  return key.slice(key.lastIndexOf('/') + 1).replace(/\.json$/, '');
}

/** The key and content of a step's latest checkpoint manifest (undefined content: unreadable), or undefined when none. */
export async function latestCheckpoint(
  store: Store,
  stepId: string,
): Promise<{ key: string; manifest: CheckpointManifest | undefined } | undefined> {
  const manifests = (await store.list(checkpointManifestPrefix(stepId))).filter((m) => m.key.endsWith('.json'));
  const latest = manifests.sort((a, b) => (manifestName(a.key) < manifestName(b.key) ? -1 : 1)).pop();
  if (!latest) return undefined;
  const raw = await store.getBytes(latest.key);
  return { key: latest.key, manifest: raw ? parseManifest(raw) : undefined };
}
