/**
 * The S3 store against the store contract on a real S3 server (SeaweedFS), and what only S3 has:
 * multipart uploads, and failures of the service reported as one line.
 */
import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Store, StoreRequestError, openStore } from '../../src/store';
import type { Store } from '../../src/store';
import { s3SkipReason, startS3Server } from '../helpers/s3-server';
import type { S3Server } from '../helpers/s3-server';
import { tempDir } from '../helpers/temp';
import { storeContract } from './contract';

const skip = s3SkipReason();
if (skip) process.stderr.write(`[store tests] ${skip}\n`);

describe.skipIf(skip !== undefined)('S3Store', () => {
  let server: S3Server;
  let store: Store;
  beforeAll(async () => {
    server = await startS3Server();
    store = openStore(`s3://${server.bucket}/contract`, server.env);
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('opens from an s3:// URL as a bucket store', () => {
    expect(store).toBeInstanceOf(S3Store);
    expect(store.url).toBe(`s3://${server.bucket}/contract`);
    expect(store.uri('a/b')).toBe(`s3://${server.bucket}/contract/a/b`);
  });

  storeContract(
    () => store,
    () => server.env,
  );

  it('uploads a large file in several parts', async () => {
    const file = `${tempDir('s3-parts')}/large.bin`;
    writeFileSync(file, Buffer.alloc(40 * 1024 * 1024, 7));
    await store.putFile('parts/a.bin', file);
    const client = new S3Client({
      endpoint: server.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'any', secretAccessKey: 'any' },
    });
    const head = await client.send(new HeadObjectCommand({ Bucket: server.bucket, Key: 'contract/parts/a.bin' }));
    client.destroy();
    // A multipart object's ETag ends in -<number of parts>: 40 MiB in parts of 16 MiB.
    expect(head.ETag).toMatch(/-3"?$/);
  });

  it('reports a missing bucket in one line naming the URI and the S3 error code', async () => {
    const missing = openStore('s3://no-such-bucket/p', server.env);
    for (const attempt of [() => missing.list(''), () => missing.stat('k'), () => missing.getBytes('k')]) {
      const err: unknown = await attempt().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StoreRequestError);
      expect((err as StoreRequestError).reason).toBe('NoSuchBucket');
      expect((err as Error).message).toMatch(/^s3:\/\/no-such-bucket\/p\/k?: NoSuchBucket: the bucket does not exist/);
      expect((err as Error).message).not.toContain('\n');
    }
  });

  it('reports an endpoint that refuses connections in one line naming it', async () => {
    const down = openStore('s3://bucket/p', { ...server.env, AWS_ENDPOINT_URL: 'http://127.0.0.1:1' });
    const err: unknown = await down.stat('k').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreRequestError);
    expect((err as Error).message).toMatch(
      /^s3:\/\/bucket\/p\/k: ECONNREFUSED: cannot reach the S3 endpoint http:\/\/127\.0\.0\.1:1 /,
    );
    expect((err as Error).message).not.toContain('\n');
  });
});
