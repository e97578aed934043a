/**
 * Store URLs: `file:///absolute/path` for a folder, `s3://bucket[/prefix]` for a bucket. Parsing
 * returns either where the store lives or one line that names the value and says what is allowed;
 * a URL that carries credentials is refused (they belong in the environment, where logs and
 * recorded step inputs do not see them), and is never repeated with its secret.
 */
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { StoreUrlError } from './errors';
import { relativePathProblem } from './keys';

/** Where a store lives: a folder (absolute path), or a bucket and a key prefix (no slash at either end). */
export type StoreLocation = { kind: 'file'; root: string } | { kind: 's3'; bucket: string; prefix: string };

const USE = 'use file:///path or s3://bucket/prefix';
// S3's rules, loosely: 3-63 characters, lowercase letters, digits, dots, hyphens (and underscores,
// which older buckets and some S3-compatible servers accept), starting and ending alphanumeric.
const BUCKET = /^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$/;

/** `url` with any user information replaced by `***`, safe to print. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-zA-Z][a-zA-Z0-9+.-]*:\/\/)[^/?#]*@/, '$1***@');
}

/** Parses a store URL; a string is the problem with it. */
export function parseStoreUrl(url: string): StoreLocation | string {
  const shown = JSON.stringify(redactUrl(url));
  if (url.trim() === '') return `store URL is empty: ${USE}`;
  if (url.startsWith('/'))
    return `store URL ${shown} is not supported: use file://${url} for a folder, or s3://bucket/prefix`;
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(url)?.[1]?.toLowerCase();
  if (scheme === 'file') return parseFileUrl(url, shown);
  if (scheme === 's3') return parseS3Url(url, shown);
  return `store URL ${shown} is not supported: ${USE}`;
}

/** A user-facing problem with a store URL, or undefined when `openStore` can use it. */
export function storeUrlProblem(url: string): string | undefined {
  const parsed = parseStoreUrl(url);
  return typeof parsed === 'string' ? parsed : undefined;
}

/** Where the store of `url` lives; throws `StoreUrlError` with the problem. */
export function storeLocation(url: string): StoreLocation {
  const parsed = parseStoreUrl(url);
  if (typeof parsed === 'string') throw new StoreUrlError(redactUrl(url), parsed);
  return parsed;
}

/** The URL of a location, as `Store.url` shows it. */
export function locationUrl(location: StoreLocation): string {
  if (location.kind === 's3') return `s3://${location.bucket}${location.prefix ? `/${location.prefix}` : ''}`;
  return pathToFileURL(location.root).href;
}

function parseFileUrl(url: string, shown: string): StoreLocation | string {
  const absolute = 'a folder is file:// followed by an absolute path, as in file:///srv/allot-store';
  if (!/^file:\/\//i.test(url)) return `store URL ${shown} is a relative path: ${absolute}`;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `store URL ${shown} is not a valid URL: ${absolute}`;
  }
  if (parsed.host !== '' && parsed.host !== 'localhost')
    return `store URL ${shown} names the host "${parsed.host}" (or a relative path): ${absolute}`;
  if (parsed.search || parsed.hash) return `store URL ${shown} has a query or fragment: ${absolute}`;
  let root: string;
  try {
    root = path.resolve(fileURLToPath(parsed));
  } catch (err) {
    // An encoded "/" (%2F) in a path, for one.
    return `store URL ${shown} is not a folder path (${(err as Error).message}): ${absolute}`;
  }
  if (root === path.parse(root).root) return `store URL ${shown} names the root of the file system: ${absolute}`;
  return { kind: 'file', root };
}

function parseS3Url(url: string, shown: string): StoreLocation | string {
  const match = /^s3:\/\/([^/?#]*)(.*)$/i.exec(url);
  if (!match) return `store URL ${shown} is not supported: an S3 store is s3://bucket or s3://bucket/prefix`;
  const [, bucket = '', rest = ''] = match;
  if (bucket.includes('@'))
    return (
      `store URL ${shown} carries credentials: put credentials in the environment ` +
      '(AWS_ACCESS_KEY_ID, AWS_PROFILE...), never in the URL'
    );
  if (rest.includes('?'))
    return `store URL ${shown} has a query: S3 settings come from the environment (AWS_REGION, AWS_ENDPOINT_URL...)`;
  if (bucket === '') return `store URL ${shown} has no bucket: use s3://bucket or s3://bucket/prefix`;
  if (!BUCKET.test(bucket) || bucket.includes('..'))
    return (
      `store URL ${shown} has an invalid bucket name "${bucket}": bucket names are 3-63 lowercase letters, ` +
      'digits, ".", "-" and "_", starting and ending with a letter or digit'
    );
  let prefix = rest.replace(/^\//, '');
  if (prefix.endsWith('/')) prefix = prefix.slice(0, -1);
  const problem = prefix === '' ? undefined : relativePathProblem(prefix, 'prefix', false);
  if (problem) return `store URL ${shown} has a prefix that cannot be used: ${problem}`;
  return { kind: 's3', bucket, prefix };
}
