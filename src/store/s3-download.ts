/**
 * Downloading one S3 object to a local file without holding it in memory. A small object is one
 * GetObject streamed to `<file>.partial`; a large one is fetched in ranged parts, several at a
 * time, each written at its offset. The sidecar `<file>.partial.json` records the object's ETag
 * and size, the part size and the parts already written (synced first), so a later try fetches
 * only the missing parts, and only while the object is the same one (else it starts over).
 */
import { GetObjectCommand } from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import { open, rm, stat } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import {
  BatchedWriter,
  finishDownload,
  makeParent,
  partialPaths,
  readSidecar,
  writeSidecar,
  writeStream,
} from './local-files';

/** Objects larger than this (bytes) are fetched in ranged parts. */
const RANGED_ABOVE = 32 * 1024 * 1024;
/** Bytes per ranged part (and per part of a multipart upload). */
export const PART_SIZE = 16 * 1024 * 1024;
/** Parts in flight at once, downloading or uploading. */
export const PARTS_IN_PARALLEL = 4;

/** One object to download, as HeadObject described it. */
export interface ObjectDownload {
  client: S3Client;
  bucket: string;
  objectKey: string;
  size: number;
  etag: string;
  /** The local file that appears once the object is whole. */
  file: string;
  /** Called with the bytes in place so far (for a ranged download, the parts finished). */
  report: (done: number) => void;
  signal?: AbortSignal;
}

/** What the sidecar of a ranged download records. */
interface RangedRecord {
  etag: string;
  size: number;
  partSize: number;
  parts: number[];
}

/** Downloads the object to its file (see the module's comment). */
export async function downloadObject(d: ObjectDownload): Promise<void> {
  d.signal?.throwIfAborted();
  const { partial, sidecar } = partialPaths(d.file);
  await makeParent(d.file);
  if (d.size <= RANGED_ABOVE) {
    await rm(sidecar, { force: true });
    const body = await getBody(d, undefined, d.signal);
    d.report(0); // An empty object's only report, its end.
    await writeStream(body, partial, { offset: 0, report: d.report, signal: d.signal });
  } else {
    await downloadRanged(d, partial, sidecar);
  }
  const { size } = await stat(partial);
  if (size !== d.size) throw new Error(`downloaded ${size} bytes of ${d.size}; try again`);
  await finishDownload(partial, sidecar, d.file);
}

async function downloadRanged(d: ObjectDownload, partial: string, sidecar: string): Promise<void> {
  const count = Math.ceil(d.size / PART_SIZE);
  const record = await resumable(d, partial, sidecar);
  const finished = new Set(record.parts);
  const missing = [...Array(count).keys()].filter((i) => !finished.has(i));
  const partBytes = (i: number): number => Math.min(PART_SIZE, d.size - i * PART_SIZE);
  let done = record.parts.reduce((sum, i) => sum + partBytes(i), 0);
  d.report(done);

  // One failed part stops the others; the first failure is the one reported.
  const stop = new AbortController();
  const onAbort = (): void => stop.abort(d.signal?.reason);
  d.signal?.addEventListener('abort', onAbort, { once: true });
  const fh = await open(partial, 'r+');
  let failure: { err: unknown } | undefined;
  // Sidecar writes one after another, each recording every part finished so far.
  let recorded = Promise.resolve();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < missing.length && !stop.signal.aborted) {
      const index = missing[next++] as number;
      const start = index * PART_SIZE;
      const body = await getBody(d, `bytes=${start}-${start + partBytes(index) - 1}`, stop.signal);
      await writePart(fh, body, start, partBytes(index), stop.signal);
      finished.add(index);
      recorded = recorded.then(async () => {
        await fh.datasync();
        await writeSidecar(sidecar, { ...record, parts: [...finished].sort((a, b) => a - b) });
      });
      await recorded;
      done += partBytes(index);
      d.report(done);
    }
  };
  const workers = Array.from({ length: Math.min(PARTS_IN_PARALLEL, missing.length) }, () =>
    worker().catch((err: unknown) => {
      failure ??= { err };
      stop.abort(err);
    }),
  );
  await Promise.all(workers);
  await recorded.catch(() => undefined);
  await fh.close();
  d.signal?.removeEventListener('abort', onAbort);
  d.signal?.throwIfAborted();
  if (failure) throw failure.err;
}

/** Streams a part's body into the file at `start`; throws unless exactly `length` bytes came. */
async function writePart(
  fh: FileHandle,
  body: Readable,
  start: number,
  length: number,
  signal: AbortSignal,
): Promise<void> {
  const writer = new BatchedWriter(fh, start);
  try {
    for await (const chunk of body) {
      signal.throwIfAborted();
      await writer.add(chunk as Uint8Array);
    }
    await writer.finish();
  } finally {
    await writer.settle();
  }
  if (writer.position !== start + length)
    throw new Error(`a part of ${length} bytes at ${start} ended after ${writer.position - start} bytes; try again`);
}

/** The sidecar's record when the partial file may be resumed, else a fresh partial file and record. */
async function resumable(d: ObjectDownload, partial: string, sidecar: string): Promise<RangedRecord> {
  const was = await readSidecar(sidecar);
  const partialSize = await stat(partial).then(
    (s) => s.size,
    () => undefined,
  );
  const same = was?.etag === d.etag && was.size === d.size && was.partSize === PART_SIZE && partialSize === d.size;
  if (
    same &&
    Array.isArray(was.parts) &&
    was.parts.every((p) => Number.isInteger(p) && p >= 0 && p * PART_SIZE < d.size)
  )
    return { etag: d.etag, size: d.size, partSize: PART_SIZE, parts: was.parts as number[] };
  const record: RangedRecord = { etag: d.etag, size: d.size, partSize: PART_SIZE, parts: [] };
  const fh = await open(partial, 'w');
  try {
    await fh.truncate(d.size);
  } finally {
    await fh.close();
  }
  await writeSidecar(sidecar, record);
  return record;
}

/** The body of the object (or of a range of it), refused should the object have changed. */
async function getBody(d: ObjectDownload, range: string | undefined, signal?: AbortSignal): Promise<Readable> {
  const got = await d.client.send(
    new GetObjectCommand({ Bucket: d.bucket, Key: d.objectKey, Range: range, IfMatch: d.etag || undefined }),
    { abortSignal: signal },
  );
  return got.Body as Readable;
}
