/**
 * The store's errors beyond "no such object" (which the contract declares in `types.ts`): a store
 * URL or a key that is refused before anything is read, and a request the storage service
 * refused. Each message is one line that names the value or the URI, so that a user can act on it
 * without a stack trace.
 */

/** A store URL or artifact URI that allot cannot use; the message says what is allowed. */
export class StoreUrlError extends Error {
  readonly code = 'StoreUrl';
  constructor(
    readonly url: string,
    message: string,
  ) {
    super(message);
    this.name = 'StoreUrlError';
  }
}

/** A key that would leave the store's root (`..`, an absolute path) or is not a key at all. */
export class StoreKeyError extends Error {
  readonly code = 'StoreKey';
  constructor(
    readonly key: string,
    message: string,
  ) {
    super(message);
    this.name = 'StoreKeyError';
  }
}

/** The storage service refused or could not be reached; `reason` is its error code (`NoSuchBucket`, `ECONNREFUSED`). */
export class StoreRequestError extends Error {
  readonly code = 'StoreRequest';
  constructor(
    readonly uri: string,
    readonly reason: string,
    message: string,
  ) {
    super(message);
    this.name = 'StoreRequestError';
  }
}
