/**
 * The folder store (`file:///path`): objects are files under the root, keys their relative paths.
 * It serves a single machine, or several that mount one shared file system. An upload is written
 * beside its destination and renamed into place, so readers see the old file or the new one
 * whole; a download resumes from its partial file when the source has not changed since.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { checkKey, checkPrefix, keyProblem } from './keys';
import {
  READ_CHUNK,
  finishDownload,
  hashFile,
  isTemporaryName,
  makeParent,
  partialPaths,
  pruneEmptyFolders,
  readSidecar,
  temporaryBeside,
  writeSidecar,
  writeStream,
} from './local-files';
import { StoreRequestError } from './errors';
import { progressReporter } from './progress';
import { StoreNotFoundError } from './types';
import type { Store, StoredObject, TransferOptions } from './types';

/**
 * A store in a local (or mounted) folder. The folder must exist: a missing one (a share that is
 * not mounted) is an error for every call, never an empty store, so that an attempt does not start
 * over a checkpoint it could not see, nor write to the local disk under the mount point.
 */
export class FileStore implements Store {
  readonly url: string;

  /** `root`: the folder's absolute path. */
  constructor(readonly root: string) {
    this.url = pathToFileURL(root).href;
  }

  uri(key: string): string {
    return pathToFileURL(this.pathOf(key)).href;
  }

  keyOf(uri: string): string | undefined {
    let file: string;
    try {
      file = fileURLToPath(uri);
    } catch {
      return undefined;
    }
    const relative = path.relative(this.root, file);
    if (relative === '' || relative.startsWith('..') || path.isAbsolute(relative)) return undefined;
    const key = relative.split(path.sep).join('/');
    return keyProblem(key) === undefined ? key : undefined;
  }

  /** Throws when the store's folder is not there. */
  private async rootThere(): Promise<void> {
    const found = await stat(this.root).catch(() => undefined);
    if (!found?.isDirectory()) {
      throw new StoreRequestError(
        this.url,
        'ENOENT',
        `${this.url}: the store's folder does not exist (is its share mounted?); create it to use it as a store`,
      );
    }
  }

  async putFile(key: string, file: string, options: TransferOptions = {}): Promise<{ size: number; sha256: string }> {
    await this.rootThere();
    const destination = this.pathOf(key);
    const { size: total } = await stat(file);
    await makeParent(destination);
    const temporary = temporaryBeside(destination);
    const hash = createHash('sha256');
    try {
      const size = await writeStream(
        createReadStream(file, { signal: options.signal, highWaterMark: READ_CHUNK }),
        temporary,
        {
          offset: 0,
          hash,
          report: progressReporter(key, total, options.onProgress),
          signal: options.signal,
        },
      );
      await rename(temporary, destination);
      return { size, sha256: hash.digest('hex') };
    } catch (err) {
      await rm(temporary, { force: true });
      throw err;
    }
  }

  async putBytes(key: string, body: Uint8Array | string): Promise<void> {
    await this.rootThere();
    const destination = this.pathOf(key);
    await makeParent(destination);
    const temporary = temporaryBeside(destination);
    try {
      await writeFile(temporary, body, { flush: true });
      await rename(temporary, destination);
    } catch (err) {
      await rm(temporary, { force: true });
      throw err;
    }
  }

  async getFile(key: string, file: string, options: TransferOptions = {}): Promise<{ size: number; sha256: string }> {
    await this.rootThere();
    const source = this.pathOf(key);
    const origin = await stat(source).then(
      (found) => (found.isFile() ? { size: found.size, mtimeMs: found.mtimeMs } : undefined),
      (err: unknown) => {
        if (isMissing(err)) return undefined;
        throw err;
      },
    );
    if (!origin) throw new StoreNotFoundError(this.uri(key));
    const { partial, sidecar } = partialPaths(file);
    await makeParent(file);
    const offset = await resumableLength(partial, sidecar, origin);
    if (offset === 0) await writeSidecar(sidecar, origin);
    const hash = createHash('sha256');
    await hashFile(partial, hash, offset);
    const report = progressReporter(key, origin.size, options.onProgress);
    report(offset);
    const size = await writeStream(
      createReadStream(source, { start: offset, signal: options.signal, highWaterMark: READ_CHUNK }),
      partial,
      { offset, hash, report, signal: options.signal },
    );
    if (size !== origin.size) {
      await rm(partial, { force: true });
      throw new Error(`${this.uri(key)} changed while it was read (${origin.size} bytes, then ${size}); try again`);
    }
    await finishDownload(partial, sidecar, file);
    return { size, sha256: hash.digest('hex') };
  }

  async getBytes(key: string): Promise<Uint8Array | undefined> {
    await this.rootThere();
    try {
      return new Uint8Array(await readFile(this.pathOf(key)));
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
  }

  async stat(key: string): Promise<StoredObject | undefined> {
    await this.rootThere();
    try {
      const found = await stat(this.pathOf(key));
      return found.isFile() ? { key, size: found.size } : undefined;
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
  }

  async list(prefix: string): Promise<StoredObject[]> {
    checkPrefix(prefix);
    await this.rootThere();
    // Only the folder the prefix names can hold matches; below it, names must start with the rest.
    const cut = prefix.lastIndexOf('/') + 1;
    const found: StoredObject[] = [];
    await this.walk(prefix.slice(0, cut), prefix.slice(cut), found);
    return found.sort((a, b) => Buffer.compare(Buffer.from(a.key), Buffer.from(b.key)));
  }

  async remove(key: string): Promise<void> {
    const file = this.pathOf(key);
    await rm(file, { force: true });
    await pruneEmptyFolders(this.root, path.dirname(file));
  }

  async removePrefix(prefix: string): Promise<number> {
    const objects = await this.list(prefix);
    for (const { key } of objects) await this.remove(key);
    return objects.length;
  }

  /** The file of a key; throws `StoreKeyError` for a key that would leave the root. */
  private pathOf(key: string): string {
    return path.join(this.root, ...checkKey(key).split('/'));
  }

  /** Collects the files under the folder `dirKey` (`''` or ending in `/`) whose names start with `namePrefix`. */
  private async walk(dirKey: string, namePrefix: string, found: StoredObject[]): Promise<void> {
    const dir = path.join(this.root, ...dirKey.split('/').filter(Boolean));
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (isMissing(err)) return;
      throw err;
    }
    for (const entry of entries) {
      if (!entry.name.startsWith(namePrefix)) continue;
      const key = `${dirKey}${entry.name}`;
      if (entry.isDirectory()) await this.walk(`${key}/`, '', found);
      else if (entry.isFile() && !isTemporaryName(entry.name))
        found.push({ key, size: (await stat(path.join(dir, entry.name))).size });
    }
  }
}

/** How much of `partial` may be kept: its length when the sidecar records the same origin, else 0. */
async function resumableLength(
  partial: string,
  sidecar: string,
  origin: { size: number; mtimeMs: number },
): Promise<number> {
  const recorded = await readSidecar(sidecar);
  if (recorded?.size !== origin.size || recorded.mtimeMs !== origin.mtimeMs) return 0;
  try {
    const { size } = await stat(partial);
    return size <= origin.size ? size : 0;
  } catch {
    return 0;
  }
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR';
}
