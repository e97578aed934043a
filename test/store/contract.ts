/**
 * The store contract (`src/store/types.ts`) as one suite, run against every store: a folder and a
 * real S3 server. Each test works under its own key prefix, so that the tests of one store share
 * it without seeing each other's objects.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { StoreKeyError, StoreNotFoundError, openStoreForUri } from '../../src/store';
import type { Store, TransferProgress } from '../../src/store';
import { PARTS_IN_PARALLEL, PART_SIZE } from '../../src/store/s3-download';
import { tempDir } from '../helpers/temp';

const MiB = 1024 * 1024;
/** Large enough for a multipart upload and a ranged, parallel download (parts of 16 MiB) on S3. */
const LARGE = 40 * MiB;
/**
 * More ranged parts than S3 downloads at once: a try stops taking parts once aborted, so the parts
 * after the first ones in flight are left for the next try, however fast the first ones finish.
 */
const RESUMABLE = PART_SIZE * PARTS_IN_PARALLEL + 8 * MiB;

/** A file of `size` random bytes, and its sha256. */
function randomFile(dir: string, name: string, size: number): { file: string; sha256: string } {
  const file = path.join(dir, name);
  const bytes = randomBytes(size);
  writeFileSync(file, bytes);
  return { file, sha256: createHash('sha256').update(bytes).digest('hex') };
}

/** The sha256 of a file's bytes. */
function sha256Of(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

/** Runs a transfer, aborting it at its first report of some bytes in place (and before the end). */
async function interrupted(
  transfer: (options: { onProgress: (p: TransferProgress) => void; signal: AbortSignal }) => Promise<unknown>,
): Promise<unknown> {
  const controller = new AbortController();
  return transfer({
    signal: controller.signal,
    onProgress: (p) => {
      if (p.done > 0 && p.done < p.total) controller.abort();
    },
  }).then(
    () => undefined,
    (err: unknown) => err,
  );
}

/**
 * The contract's tests against the store `store()` returns (called inside tests, after the
 * caller's `beforeAll`); `env()` is the environment that reaches it, for `openStoreForUri`.
 */
export function storeContract(store: () => Store, env: () => NodeJS.ProcessEnv = () => process.env): void {
  let dir: string;
  beforeAll(() => {
    dir = tempDir('store-contract');
  });

  it('uploads and downloads a file whole, with the sha256 of its bytes', async () => {
    const source = randomFile(dir, 'small.bin', MiB + 123);
    const put = await store().putFile('roundtrip/small.bin', source.file);
    expect(put).toEqual({ size: MiB + 123, sha256: source.sha256 });
    const target = path.join(dir, 'out', 'small.bin');
    const got = await store().getFile('roundtrip/small.bin', target);
    expect(got).toEqual({ size: MiB + 123, sha256: source.sha256 });
    expect(sha256Of(target)).toBe(source.sha256);
    expect(existsSync(`${target}.partial`) || existsSync(`${target}.partial.json`)).toBe(false);
  });

  it('moves a file of several parts, reporting progress up to its size', async () => {
    const source = randomFile(dir, 'large.bin', LARGE);
    const putReports: TransferProgress[] = [];
    const put = await store().putFile('large/a.bin', source.file, { onProgress: (p) => putReports.push(p) });
    expect(put).toEqual({ size: LARGE, sha256: source.sha256 });
    const getReports: TransferProgress[] = [];
    const target = path.join(dir, 'out', 'large.bin');
    const got = await store().getFile('large/a.bin', target, { onProgress: (p) => getReports.push(p) });
    expect(got).toEqual({ size: LARGE, sha256: source.sha256 });
    expect(sha256Of(target)).toBe(source.sha256);
    for (const reports of [putReports, getReports]) {
      expect(reports.at(-1)).toEqual({ key: 'large/a.bin', done: LARGE, total: LARGE });
      const done = reports.map((r) => r.done);
      expect(done).toEqual([...done].sort((a, b) => a - b));
    }
  });

  it('resumes an interrupted download, keeping what the first try wrote and fetching the rest', async () => {
    const source = randomFile(dir, 'resume.bin', RESUMABLE);
    await store().putFile('resume/a.bin', source.file);
    const target = path.join(dir, 'out', 'resume.bin');
    const err = await interrupted((options) => store().getFile('resume/a.bin', target, options));
    expect(err).toMatchObject({ name: 'AbortError' });
    expect(existsSync(target)).toBe(false);
    // Invert every byte of the partial file: what the second try keeps stays inverted, what it
    // fetches is right, so the bytes that differ from the source are exactly the bytes it kept.
    const partial = readFileSync(`${target}.partial`);
    writeFileSync(
      `${target}.partial`,
      partial.map((b) => b ^ 0xff),
    );

    const reports: TransferProgress[] = [];
    const got = await store().getFile('resume/a.bin', target, { onProgress: (p) => reports.push(p) });
    const result = readFileSync(target);
    expect(got).toEqual({ size: RESUMABLE, sha256: createHash('sha256').update(result).digest('hex') });
    const original = readFileSync(source.file);
    let kept = 0;
    for (let i = 0; i < RESUMABLE; i++) if (result[i] !== original[i]) kept++;
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThan(RESUMABLE);
    // The first report says how much was kept.
    expect(reports[0]?.done).toBe(kept);
    expect(existsSync(`${target}.partial`) || existsSync(`${target}.partial.json`)).toBe(false);
  });

  it('does not resume a download when the object changed since: it starts over', async () => {
    const first = randomFile(dir, 'changed-1.bin', LARGE);
    const second = randomFile(dir, 'changed-2.bin', LARGE);
    await store().putFile('changed/a.bin', first.file);
    const target = path.join(dir, 'out', 'changed.bin');
    expect(await interrupted((options) => store().getFile('changed/a.bin', target, options))).toMatchObject({
      name: 'AbortError',
    });
    await store().putFile('changed/a.bin', second.file);
    const got = await store().getFile('changed/a.bin', target);
    expect(got).toEqual({ size: LARGE, sha256: second.sha256 });
    expect(sha256Of(target)).toBe(second.sha256);
  });

  it('leaves no object behind an aborted upload', async () => {
    const source = randomFile(dir, 'aborted.bin', LARGE);
    const err = await interrupted((options) => store().putFile('aborted/a.bin', source.file, options));
    expect(err).toMatchObject({ name: 'AbortError' });
    expect(await store().stat('aborted/a.bin')).toBeUndefined();
    expect(await store().list('aborted/')).toEqual([]);
  });

  it('writes and reads small objects whole', async () => {
    await store().putBytes('bytes/manifest.json', '{"step":"train"}');
    await store().putBytes('bytes/raw', new Uint8Array([0, 1, 255]));
    expect(Buffer.from((await store().getBytes('bytes/manifest.json')) ?? []).toString()).toBe('{"step":"train"}');
    expect([...((await store().getBytes('bytes/raw')) ?? [])]).toEqual([0, 1, 255]);
    expect(await store().stat('bytes/raw')).toEqual({ key: 'bytes/raw', size: 3 });
  });

  it('answers a missing object with undefined, or StoreNotFoundError naming its URI for a download', async () => {
    expect(await store().getBytes('missing/x')).toBeUndefined();
    expect(await store().stat('missing/x')).toBeUndefined();
    const err: unknown = await store()
      .getFile('missing/x', path.join(dir, 'out', 'missing'))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreNotFoundError);
    expect((err as StoreNotFoundError).uri).toBe(store().uri('missing/x'));
    await expect(store().remove('missing/x')).resolves.toBeUndefined();
  });

  it('lists the objects under a prefix in key order, with their sizes', async () => {
    for (const key of ['list/b', 'list/a/2', 'list/ab', 'list/a/1', 'lister/x']) await store().putBytes(key, key);
    const keys = async (prefix: string): Promise<string[]> => (await store().list(prefix)).map((o) => o.key);
    expect(await keys('list/')).toEqual(['list/a/1', 'list/a/2', 'list/ab', 'list/b']);
    expect(await keys('list/a')).toEqual(['list/a/1', 'list/a/2', 'list/ab']);
    expect(await keys('list/a/')).toEqual(['list/a/1', 'list/a/2']);
    expect(await keys('list/none/')).toEqual([]);
    expect(await store().list('list/b')).toEqual([{ key: 'list/b', size: 'list/b'.length }]);
  });

  it('removes one object, or every object under a prefix and no other', async () => {
    for (const key of ['rm/a', 'rm/b/c', 'rm/b/d', 'rmx/keep']) await store().putBytes(key, 'x');
    await store().remove('rm/a');
    expect(await store().stat('rm/a')).toBeUndefined();
    expect(await store().removePrefix('rm/')).toBe(2);
    expect(await store().list('rm/')).toEqual([]);
    expect(await store().list('rmx/')).toEqual([{ key: 'rmx/keep', size: 1 }]);
    expect(await store().removePrefix('rm/')).toBe(0);
  });

  it.each(['../escape', 'a/../../escape', '/etc/passwd', 'a//b', './a', 'a/.', ''])(
    'refuses the key %j, which is not a path inside the store',
    async (key) => {
      expect(() => store().uri(key)).toThrow(StoreKeyError);
      await expect(store().putBytes(key, 'x')).rejects.toThrow(StoreKeyError);
      await expect(store().getBytes(key)).rejects.toThrow(StoreKeyError);
      await expect(store().getFile(key, path.join(dir, 'out', 'refused'))).rejects.toThrow(StoreKeyError);
      await expect(store().remove(key)).rejects.toThrow(StoreKeyError);
    },
  );

  it.each(['../', '/abs/', 'a/../'])('refuses to list or remove the prefix %j', async (prefix) => {
    await expect(store().list(prefix)).rejects.toThrow(StoreKeyError);
    await expect(store().removePrefix(prefix)).rejects.toThrow(StoreKeyError);
  });

  it('names each object by a URI that maps back to its key, and that openStoreForUri reads', async () => {
    const key = 'uri/with space/model #1.ckpt';
    await store().putBytes(key, 'weights');
    const uri = store().uri(key);
    expect(store().keyOf(uri)).toBe(key);
    expect(store().keyOf(`${store().url}-elsewhere/x`)).toBeUndefined();
    const found = openStoreForUri(uri, env());
    expect(Buffer.from((await found.store.getBytes(found.key)) ?? []).toString()).toBe('weights');
  });
}
