/**
 * Local file work shared by the stores: writing a stream into a file at an offset, hashing, the
 * sidecar that says whether a partial download may be resumed, and moving a finished file into
 * place. Data is synced before a file is renamed into place or a sidecar vouches for it, so that a
 * crash leaves either the old state or the new one.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readFile, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';

/** Bytes read from a local file at a time. */
export const READ_CHUNK = 1024 * 1024;

/** The partial file of a download to `file`, and the sidecar that records what it holds. */
export function partialPaths(file: string): { partial: string; sidecar: string } {
  const partial = `${file}.partial`;
  return { partial, sidecar: `${partial}.json` };
}

/** A fresh temporary name beside `file` (`<file>.partial-<random>`), for a write that is renamed into place. */
export function temporaryBeside(file: string): string {
  return `${file}.partial-${randomBytes(6).toString('hex')}`;
}

/** Whether `name` is a temporary file of `temporaryBeside` (hidden from listings). */
export function isTemporaryName(name: string): boolean {
  return /\.partial-[0-9a-f]{12}$/.test(name);
}

/** Bytes gathered before one write: a write per network chunk (16-64 KiB) costs more than the copy. */
const WRITE_BATCH = 1024 * 1024;

/**
 * Writes chunks at increasing positions of an open file, gathered into batches of about 1 MiB
 * with one batch in flight while the next is gathered; `onWritten` hears each position reached.
 */
export class BatchedWriter {
  private batch: Uint8Array[] = [];
  private batchBytes = 0;
  private inFlight: Promise<void> = Promise.resolve();

  /** `position`: where the first chunk goes; it then says where the next one will. */
  constructor(
    private readonly fh: FileHandle,
    public position: number,
    private readonly onWritten: (position: number) => void = () => undefined,
  ) {}

  /** Adds a chunk; resolves once it is gathered (or written, when its batch is full). */
  async add(chunk: Uint8Array): Promise<void> {
    this.batch.push(chunk);
    this.batchBytes += chunk.length;
    this.position += chunk.length;
    if (this.batchBytes >= WRITE_BATCH) await this.send();
  }

  /** Writes what is gathered and waits for every write. */
  async finish(): Promise<void> {
    if (this.batchBytes > 0) await this.send();
    await this.inFlight;
  }

  /** Waits for the write in flight, whatever its outcome (before the file is closed after a failure). */
  async settle(): Promise<void> {
    await this.inFlight.catch(() => undefined);
  }

  private async send(): Promise<void> {
    const [chunks, at, end] = [this.batch, this.position - this.batchBytes, this.position];
    this.batch = [];
    this.batchBytes = 0;
    await this.inFlight;
    this.inFlight = writeAllAt(this.fh, chunks, at).then(() => this.onWritten(end));
  }
}

/** Writes all of `chunks`, one after another, from `position`. */
async function writeAllAt(fh: FileHandle, chunks: Uint8Array[], position: number): Promise<void> {
  const total = chunks.reduce((sum, c) => sum + c.length, 0);
  let written = (await fh.writev(chunks, position)).bytesWritten;
  // A regular file takes a whole write but for a full disk or a signal; then go on with the rest.
  if (written < total) {
    const all = Buffer.concat(chunks);
    while (written < total) written += (await fh.write(all, written, total - written, position + written)).bytesWritten;
  }
}

/**
 * Writes `source` into `target` from `offset` (truncating it there), feeding `hash` and calling
 * `report` with the bytes in the file so far; syncs the file, and resolves with its length.
 */
export async function writeStream(
  source: AsyncIterable<Uint8Array>,
  target: string,
  options: { offset: number; hash?: Hash; report: (done: number) => void; signal?: AbortSignal },
): Promise<number> {
  const fh = await open(target, options.offset === 0 ? 'w' : 'r+');
  const writer = new BatchedWriter(fh, options.offset, options.report);
  try {
    if (options.offset > 0) await fh.truncate(options.offset);
    for await (const chunk of source) {
      options.signal?.throwIfAborted();
      options.hash?.update(chunk);
      await writer.add(chunk);
    }
    await writer.finish();
    await fh.datasync();
    return writer.position;
  } finally {
    await writer.settle();
    await fh.close();
  }
}

/** Feeds the first `length` bytes of `file` (all of it when omitted) to `hash`. */
export async function hashFile(file: string, hash: Hash, length?: number): Promise<void> {
  if (length === 0) return;
  const end = length === undefined ? undefined : length - 1;
  for await (const chunk of createReadStream(file, { end, highWaterMark: READ_CHUNK })) hash.update(chunk as Buffer);
}

/** The sha256 (hex) of a whole file, read once. */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  await hashFile(file, hash);
  return hash.digest('hex');
}

/** The sidecar's record, or undefined when there is none or it cannot be read. */
export async function readSidecar(sidecar: string): Promise<Record<string, unknown> | undefined> {
  try {
    const value: unknown = JSON.parse(await readFile(sidecar, 'utf8'));
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Replaces the sidecar's record whole (a crash leaves the old record or the new one). */
export async function writeSidecar(sidecar: string, record: object): Promise<void> {
  const temporary = temporaryBeside(sidecar);
  await writeFile(temporary, JSON.stringify(record));
  await rename(temporary, sidecar);
}

/** Moves a finished download into place and forgets its sidecar. */
export async function finishDownload(partial: string, sidecar: string, file: string): Promise<void> {
  await rename(partial, file);
  await rm(sidecar, { force: true });
}

/** Creates the folder that will hold `file`. */
export async function makeParent(file: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
}

/** Removes the empty folders from `dir` up to (not including) `root`. */
export async function pruneEmptyFolders(root: string, dir: string): Promise<void> {
  for (let current = dir; current.startsWith(`${root}${path.sep}`); current = path.dirname(current)) {
    try {
      await rmdir(current);
    } catch {
      return;
    }
  }
}
