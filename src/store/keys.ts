/**
 * Keys: `/`-separated paths relative to a store's root. They are checked before every use so that
 * no key reaches outside the root, whatever the store: a folder would follow `..` out of itself,
 * and tools that turn object keys into paths would do the same with an object's key.
 */
import { StoreKeyError } from './errors';

const ALLOWED = 'keys are relative paths inside the store: no leading "/", no "." or ".." segments, no empty segments';

/** What is wrong with `key` as an object's key, or undefined when it is fine. */
export function keyProblem(key: string): string | undefined {
  if (key === '') return 'store key is empty: name an object inside the store';
  return relativePathProblem(key, 'key', false);
}

/** What is wrong with `prefix` as a listing prefix (empty, or ending in `/`, is fine), or undefined. */
export function prefixProblem(prefix: string): string | undefined {
  return prefix === '' ? undefined : relativePathProblem(prefix, 'prefix', true);
}

/** Throws `StoreKeyError` unless `key` names an object inside the store. */
export function checkKey(key: string): string {
  const problem = keyProblem(key);
  if (problem) throw new StoreKeyError(key, problem);
  return key;
}

/** Throws `StoreKeyError` unless `prefix` stays inside the store. */
export function checkPrefix(prefix: string): string {
  const problem = prefixProblem(prefix);
  if (problem) throw new StoreKeyError(prefix, problem);
  return prefix;
}

/** What is wrong with `value` as a relative `/`-separated path (`trailingSlash`: one final `/` allowed). */
export function relativePathProblem(value: string, what: string, trailingSlash: boolean): string | undefined {
  const refuse = (why: string): string => `store ${what} ${JSON.stringify(value)} ${why}: ${ALLOWED}`;
  if (value.startsWith('/')) return refuse('is absolute');
  if (value.includes('\0')) return refuse('contains a NUL character');
  const segments = value.split('/');
  if (trailingSlash && segments[segments.length - 1] === '') segments.pop();
  for (const segment of segments) {
    if (segment === '..') return refuse('leaves the store (..)');
    if (segment === '.') return refuse('has a "." segment');
    if (segment === '') return refuse(value.endsWith('/') ? 'ends with "/"' : 'has an empty segment (//)');
  }
  return undefined;
}
