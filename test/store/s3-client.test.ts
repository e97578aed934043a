/**
 * The S3 client's settings come from the environment the way the AWS SDK and CLI read it, with
 * path-style addressing for custom endpoints.
 */
import { describe, expect, it } from 'vitest';
import { s3ClientConfig } from '../../src/store/s3-client';

describe('s3ClientConfig', () => {
  it.each([
    ['no region set: us-east-1', {}, { region: 'us-east-1' }],
    ['AWS_REGION', { AWS_REGION: 'eu-west-1', AWS_DEFAULT_REGION: 'us-west-2' }, { region: 'eu-west-1' }],
    ['AWS_DEFAULT_REGION when AWS_REGION is not set', { AWS_DEFAULT_REGION: 'us-west-2' }, { region: 'us-west-2' }],
    [
      'AWS_ENDPOINT_URL_S3 before AWS_ENDPOINT_URL',
      { AWS_ENDPOINT_URL_S3: 'http://s3.local:9000', AWS_ENDPOINT_URL: 'http://other:1' },
      { endpoint: 'http://s3.local:9000' },
    ],
    ['AWS_ENDPOINT_URL', { AWS_ENDPOINT_URL: 'http://s3.local:9000' }, { endpoint: 'http://s3.local:9000' }],
    ['no endpoint: AWS, virtual-hosted', {}, { endpoint: undefined, forcePathStyle: false }],
    ['a custom endpoint: path-style', { AWS_ENDPOINT_URL: 'http://s3.local:9000' }, { forcePathStyle: true }],
    [
      'a custom endpoint with ALLOT_S3_ADDRESSING=virtual',
      { AWS_ENDPOINT_URL: 'http://s3.local:9000', ALLOT_S3_ADDRESSING: 'virtual' },
      { forcePathStyle: false },
    ],
    ['ALLOT_S3_ADDRESSING=path without an endpoint', { ALLOT_S3_ADDRESSING: 'path' }, { forcePathStyle: true }],
    [
      'keys of the environment',
      { AWS_ACCESS_KEY_ID: 'id', AWS_SECRET_ACCESS_KEY: 'secret', AWS_SESSION_TOKEN: 'token' },
      { credentials: { accessKeyId: 'id', secretAccessKey: 'secret', sessionToken: 'token' } },
    ],
    ['AWS_PROFILE', { AWS_PROFILE: 'ml' }, { credentials: undefined, profile: 'ml' }],
    ['the default chain when none is set', {}, { credentials: undefined, profile: undefined }],
    [
      'checksums only where S3 requires them',
      {},
      { requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' },
    ],
    [
      'checksums wherever supported when the environment asks',
      { AWS_REQUEST_CHECKSUM_CALCULATION: 'when_supported', AWS_RESPONSE_CHECKSUM_VALIDATION: 'WHEN_SUPPORTED' },
      { requestChecksumCalculation: 'WHEN_SUPPORTED', responseChecksumValidation: 'WHEN_SUPPORTED' },
    ],
  ])('%s', (_name, env, expected) => {
    const config: Record<string, unknown> = { ...s3ClientConfig(env) };
    for (const [field, value] of Object.entries(expected)) expect(config[field], field).toEqual(value);
  });

  it('refuses an addressing it does not know, naming it', () => {
    expect(() => s3ClientConfig({ ALLOT_S3_ADDRESSING: 'dns' })).toThrow(
      'ALLOT_S3_ADDRESSING is "dns": use "path" or "virtual" (or leave it unset)',
    );
  });

  it('refuses a checksum setting it does not know, naming it', () => {
    expect(() => s3ClientConfig({ AWS_REQUEST_CHECKSUM_CALCULATION: 'always' })).toThrow(
      'AWS_REQUEST_CHECKSUM_CALCULATION is "always": use "when_supported" or "when_required" (or leave it unset)',
    );
  });
});
