/**
 * The artifact store: one place, local or S3-compatible, where checkpoints and step artifacts live
 * so that they follow a step to any machine. Keys are `/`-separated paths relative to the store's
 * root (its folder, or its bucket and prefix); every transfer streams, so no whole file is held in
 * memory.
 */

/** What the store knows of one object. */
export interface StoredObject {
  /** Key relative to the store's root. */
  key: string;
  /** Bytes. */
  size: number;
}

/** Progress of one transfer, for a log line. */
export interface TransferProgress {
  key: string;
  /** Bytes moved so far. */
  done: number;
  /** Bytes in all. */
  total: number;
}

/** Options of a transfer. */
export interface TransferOptions {
  /** Called as bytes move (at most a few times a second). */
  onProgress?: (p: TransferProgress) => void;
  /** Aborts the transfer; the promise then rejects. */
  signal?: AbortSignal;
}

/** A store: a folder (`file:///path`) or a bucket and prefix (`s3://bucket/prefix`). */
export interface Store {
  /** The store's URL as given, without credentials (safe to show and to record). */
  readonly url: string;
  /** The URI of a key: `file:///path/key` or `s3://bucket/prefix/key`. */
  uri(key: string): string;
  /** The key of a URI inside this store, or undefined when the URI is elsewhere. */
  keyOf(uri: string): string | undefined;
  /**
   * Uploads a local file to `key`, streaming (multipart with parallel parts for large files); the
   * object appears whole or not at all. Resolves with its size and sha256 (hex), computed as it streams.
   */
  putFile(key: string, file: string, options?: TransferOptions): Promise<{ size: number; sha256: string }>;
  /** Writes a small object (a manifest) whole. */
  putBytes(key: string, body: Uint8Array | string): Promise<void>;
  /**
   * Downloads `key` to a local file, streaming (ranged parts in parallel for large objects);
   * the file appears whole at `file` (renamed into place). A partial download left by an earlier
   * try (`<file>.partial`) is resumed when the object has not changed since. Resolves with its
   * size and sha256 (hex). Rejects with `StoreNotFoundError` when there is no such object.
   */
  getFile(key: string, file: string, options?: TransferOptions): Promise<{ size: number; sha256: string }>;
  /** Reads a small object whole; undefined when there is none. */
  getBytes(key: string): Promise<Uint8Array | undefined>;
  /** Size of an object, or undefined when there is none. */
  stat(key: string): Promise<StoredObject | undefined>;
  /** Every object whose key starts with `prefix` (a folder prefix ends with `/`), in key order. */
  list(prefix: string): Promise<StoredObject[]>;
  /** Removes one object (no error when there is none). */
  remove(key: string): Promise<void>;
  /** Removes every object under `prefix`; resolves with how many. */
  removePrefix(prefix: string): Promise<number>;
}

/** No object at that key. */
export class StoreNotFoundError extends Error {
  constructor(readonly uri: string) {
    super(`no object at ${uri}`);
    this.name = 'StoreNotFoundError';
  }
}
