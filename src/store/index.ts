/**
 * The artifact store: where checkpoints and step artifacts live so that they follow a step to any
 * machine. A folder (`file:///path`) or an S3 bucket (`s3://bucket/prefix`, AWS or any
 * S3-compatible server, configured from the environment as the AWS CLI is).
 *
 * ```ts
 * const problem = storeUrlProblem(url);
 * if (problem) throw new Error(problem);
 * const store = openStore(url);
 * const { sha256 } = await store.putFile('runs/42/model.ckpt', 'model.ckpt', { onProgress: log });
 * await store.getFile('runs/42/model.ckpt', '/scratch/model.ckpt');
 * ```
 */
import path from 'node:path';
import { StoreUrlError } from './errors';
import { FileStore } from './file-store';
import { S3Store } from './s3-store';
import type { Store } from './types';
import { redactUrl, storeLocation } from './url';

export * from './types';
export { StoreKeyError, StoreRequestError, StoreUrlError } from './errors';
export { FileStore } from './file-store';
export { S3Store } from './s3-store';
export { storeUrlProblem } from './url';

/** Opens the store at `url` (`file:///path` or `s3://bucket[/prefix]`); throws `StoreUrlError` for a URL it refuses. */
export function openStore(url: string, env: NodeJS.ProcessEnv = process.env): Store {
  const location = storeLocation(url);
  return location.kind === 'file' ? new FileStore(location.root) : new S3Store(location.bucket, location.prefix, env);
}

/**
 * The store that holds the object an artifact URI names, and its key there: `file:///a/b/c` is
 * key `c` in the folder `/a/b`, `s3://bucket/k/e/y` is key `k/e/y` in the bucket. Throws
 * `StoreUrlError` for a URI that names no object.
 */
export function openStoreForUri(uri: string, env: NodeJS.ProcessEnv = process.env): { store: Store; key: string } {
  const location = storeLocation(uri);
  if (location.kind === 's3') {
    if (location.prefix === '' || uri.endsWith('/'))
      throw new StoreUrlError(
        redactUrl(uri),
        `artifact URI "${redactUrl(uri)}" names a bucket or folder, not an object`,
      );
    return { store: new S3Store(location.bucket, '', env), key: location.prefix };
  }
  const file = location.root;
  if (uri.endsWith('/') || file === path.dirname(file))
    throw new StoreUrlError(uri, `artifact URI "${uri}" names a folder, not a file`);
  return { store: new FileStore(path.dirname(file)), key: path.basename(file) };
}
