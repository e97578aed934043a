/**
 * The S3 client of a store, configured the way the AWS SDK and CLI configure themselves, and the
 * translation of its failures into one line a user can act on.
 *
 * - Region: `AWS_REGION`, else `AWS_DEFAULT_REGION`, else `us-east-1` (S3-compatible servers
 *   mostly ignore it, and the SDK refuses to start without one).
 * - Endpoint: `AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL`, else AWS.
 * - Addressing: path-style (`endpoint/bucket/key`) when a custom endpoint is set, since most
 *   S3-compatible servers have no wildcard DNS for virtual hosts; `ALLOT_S3_ADDRESSING=virtual` or
 *   `path` overrides.
 * - Credentials: `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN`) of the given
 *   environment, else `AWS_PROFILE`, else the SDK's default chain (shared files, SSO, instance roles).
 * - Checksums: only where S3 requires them, unless `AWS_REQUEST_CHECKSUM_CALCULATION` or
 *   `AWS_RESPONSE_CHECKSUM_VALIDATION` asks for `when_supported` (see `checksumSetting`).
 */
import { S3ServiceException } from '@aws-sdk/client-s3';
import type { S3ClientConfig } from '@aws-sdk/client-s3';
import { StoreRequestError } from './errors';

/** The client settings that `env` asks for; throws on a value that means nothing. */
export function s3ClientConfig(env: NodeJS.ProcessEnv): S3ClientConfig {
  const endpoint = env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined;
  const addressing = env.ALLOT_S3_ADDRESSING || undefined;
  if (addressing !== undefined && addressing !== 'path' && addressing !== 'virtual')
    throw new Error(`ALLOT_S3_ADDRESSING is "${addressing}": use "path" or "virtual" (or leave it unset)`);
  const config: S3ClientConfig = {
    region: env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1',
    endpoint,
    forcePathStyle: addressing === undefined ? endpoint !== undefined : addressing === 'path',
    requestChecksumCalculation: checksumSetting(env, 'AWS_REQUEST_CHECKSUM_CALCULATION'),
    responseChecksumValidation: checksumSetting(env, 'AWS_RESPONSE_CHECKSUM_VALIDATION'),
  };
  if (env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY)
    config.credentials = {
      accessKeyId: env.AWS_ACCESS_KEY_ID,
      secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
      sessionToken: env.AWS_SESSION_TOKEN || undefined,
    };
  else if (env.AWS_PROFILE) config.profile = env.AWS_PROFILE;
  return config;
}

/**
 * `WHEN_REQUIRED` unless the environment says otherwise. The SDK's own default computes a CRC32 of
 * every byte (in JavaScript, on Node before 22), which halves upload speed; the store already
 * hashes every byte with sha256, and many S3-compatible servers refuse those checksum headers.
 */
function checksumSetting(env: NodeJS.ProcessEnv, name: string): 'WHEN_REQUIRED' | 'WHEN_SUPPORTED' {
  const value = (env[name] || 'when_required').toUpperCase();
  if (value !== 'WHEN_REQUIRED' && value !== 'WHEN_SUPPORTED')
    throw new Error(`${name} is "${env[name]}": use "when_supported" or "when_required" (or leave it unset)`);
  return value;
}

/** What to do about an S3 error code, where there is something to say. */
const HINTS: Record<string, string> = {
  NoSuchBucket: 'the bucket does not exist: create it, or fix the store URL',
  AccessDenied: 'check the credentials (AWS_ACCESS_KEY_ID, AWS_PROFILE...) and their permissions on the bucket',
  InvalidAccessKeyId: 'check AWS_ACCESS_KEY_ID (or the profile AWS_PROFILE names)',
  SignatureDoesNotMatch: 'check AWS_SECRET_ACCESS_KEY (or the profile AWS_PROFILE names)',
  PermanentRedirect: 'the bucket is in another region: set AWS_REGION to it',
  PreconditionFailed: 'the object changed during the transfer: try again',
  CredentialsProviderError: 'no credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE',
};

/** Codes of errors from a server that gives no body (HEAD requests), by HTTP status. */
const STATUS_CODES: Record<number, string> = { 301: 'PermanentRedirect', 403: 'AccessDenied', 404: 'NotFound' };

/** The S3 error code of a failure (`NoSuchBucket`), or the network error's code (`ECONNREFUSED`). */
export function s3ErrorCode(err: unknown): string {
  if (err instanceof S3ServiceException) {
    const status = err.$metadata.httpStatusCode;
    const generic = /^(Unknown|UnknownError|\d+)$/.test(err.name);
    return generic && status !== undefined ? (STATUS_CODES[status] ?? `HTTP ${status}`) : err.name;
  }
  const e = err as { code?: unknown; name?: unknown };
  if (typeof e.code === 'string') return e.code;
  return typeof e.name === 'string' ? e.name : 'Error';
}

/**
 * `err` as a `StoreRequestError` whose message is one line: the URI, the code, and what the
 * service or a hint says. An abort passes through unchanged.
 */
export function s3Failure(err: unknown, uri: string, endpoint: string | undefined): unknown {
  if (err instanceof StoreRequestError || (err as { name?: unknown }).name === 'AbortError') return err;
  const code = s3ErrorCode(err);
  const said = oneLine(err instanceof Error ? err.message : String(err));
  const network = /^E[A-Z]+$/.test(code) || code === 'TimeoutError';
  const detail = network
    ? `cannot reach ${endpoint ? `the S3 endpoint ${endpoint}` : 'S3'} (${said || code})`
    : (HINTS[code] ?? said);
  return new StoreRequestError(uri, code, `${uri}: ${code}${detail && detail !== code ? `: ${detail}` : ''}`);
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}
