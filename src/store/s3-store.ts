/**
 * The S3 store (`s3://bucket/prefix`), for AWS S3 and S3-compatible servers, through the AWS SDK.
 * Uploads stream the file through a hash into a multipart upload (parts in parallel); the object
 * appears whole when the upload completes. Downloads are `s3-download.ts`. Every failure that
 * reaches a caller is a one-line `StoreRequestError` naming the URI and the S3 error code.
 */
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Transform } from 'node:stream';
import { checkKey, checkPrefix, keyProblem } from './keys';
import { READ_CHUNK, sha256File } from './local-files';
import { progressReporter } from './progress';
import { s3ClientConfig, s3ErrorCode, s3Failure } from './s3-client';
import { PART_SIZE, PARTS_IN_PARALLEL, downloadObject } from './s3-download';
import { StoreNotFoundError } from './types';
import type { Store, StoredObject, TransferOptions } from './types';

/** Keys per DeleteObjects request (S3's maximum). */
const DELETE_BATCH = 1000;

/** A store in an S3 bucket, under a key prefix. */
export class S3Store implements Store {
  readonly url: string;
  private readonly client: S3Client;
  private readonly endpoint: string | undefined;

  /** `prefix`: keys are stored under `prefix/` (no slash at either end; `''` for the bucket's root). */
  constructor(
    readonly bucket: string,
    readonly prefix: string,
    env: NodeJS.ProcessEnv = process.env,
  ) {
    this.url = `s3://${bucket}${prefix ? `/${prefix}` : ''}`;
    const config = s3ClientConfig(env);
    this.endpoint = typeof config.endpoint === 'string' ? config.endpoint : undefined;
    // allot supports Node 20, which the SDK's upcoming releases will not: its notice of that is
    // for allot's maintainers, not for every agent's log. A user's own setting is kept.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    this.client = new S3Client(config);
  }

  uri(key: string): string {
    return `s3://${this.bucket}/${this.objectKey(key)}`;
  }

  keyOf(uri: string): string | undefined {
    const base = `s3://${this.bucket}/${this.prefix ? `${this.prefix}/` : ''}`;
    if (!uri.startsWith(base)) return undefined;
    const key = uri.slice(base.length);
    return keyProblem(key) === undefined ? key : undefined;
  }

  async putFile(key: string, file: string, options: TransferOptions = {}): Promise<{ size: number; sha256: string }> {
    const uri = this.uri(key);
    const { size: total } = await stat(file);
    const hash = createHash('sha256');
    let size = 0;
    const hashing = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        hash.update(chunk);
        size += chunk.length;
        callback(null, chunk);
      },
    });
    const source = createReadStream(file, { highWaterMark: READ_CHUNK });
    source.once('error', (err) => hashing.destroy(err));
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key: this.objectKey(key), Body: source.pipe(hashing) },
      partSize: PART_SIZE,
      queueSize: PARTS_IN_PARALLEL,
      leavePartsOnError: false,
    });
    const report = progressReporter(key, total, options.onProgress);
    upload.on('httpUploadProgress', (p) => report(p.loaded ?? 0));
    const abort = (): void => void upload.abort();
    options.signal?.addEventListener('abort', abort, { once: true });
    try {
      options.signal?.throwIfAborted();
      await upload.done();
      options.signal?.throwIfAborted();
    } catch (err) {
      source.destroy();
      options.signal?.throwIfAborted();
      throw this.failure(err, uri);
    } finally {
      options.signal?.removeEventListener('abort', abort);
    }
    report(size);
    return { size, sha256: hash.digest('hex') };
  }

  async putBytes(key: string, body: Uint8Array | string): Promise<void> {
    await this.request(this.uri(key), () =>
      this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key), Body: body })),
    );
  }

  async getFile(key: string, file: string, options: TransferOptions = {}): Promise<{ size: number; sha256: string }> {
    const uri = this.uri(key);
    const head = await this.head(key, options.signal);
    if (!head) throw new StoreNotFoundError(uri);
    try {
      await downloadObject({
        client: this.client,
        bucket: this.bucket,
        objectKey: this.objectKey(key),
        size: head.size,
        etag: head.etag,
        file,
        report: progressReporter(key, head.size, options.onProgress),
        signal: options.signal,
      });
    } catch (err) {
      options.signal?.throwIfAborted();
      throw this.failure(err, uri);
    }
    return { size: head.size, sha256: await sha256File(file) };
  }

  async getBytes(key: string): Promise<Uint8Array | undefined> {
    const uri = this.uri(key);
    try {
      const got = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
      return got.Body ? await got.Body.transformToByteArray() : new Uint8Array();
    } catch (err) {
      if (s3ErrorCode(err) === 'NoSuchKey') return undefined;
      throw this.failure(err, uri);
    }
  }

  async stat(key: string): Promise<StoredObject | undefined> {
    const head = await this.head(key);
    return head && { key, size: head.size };
  }

  async list(prefix: string): Promise<StoredObject[]> {
    const base = this.prefix ? `${this.prefix}/` : '';
    const uri = `s3://${this.bucket}/${base}${checkPrefix(prefix)}`;
    const found: StoredObject[] = [];
    let token: string | undefined;
    do {
      const page = await this.request(uri, () =>
        this.client.send(
          new ListObjectsV2Command({ Bucket: this.bucket, Prefix: `${base}${prefix}`, ContinuationToken: token }),
        ),
      );
      for (const o of page.Contents ?? [])
        if (o.Key !== undefined && !o.Key.endsWith('/'))
          found.push({ key: o.Key.slice(base.length), size: o.Size ?? 0 });
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return found.sort((a, b) => Buffer.compare(Buffer.from(a.key), Buffer.from(b.key)));
  }

  async remove(key: string): Promise<void> {
    await this.request(this.uri(key), () =>
      this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) })),
    );
  }

  async removePrefix(prefix: string): Promise<number> {
    const objects = await this.list(prefix);
    const uri = `s3://${this.bucket}/${this.prefix ? `${this.prefix}/` : ''}${prefix}`;
    for (let i = 0; i < objects.length; i += DELETE_BATCH) {
      const batch = objects.slice(i, i + DELETE_BATCH);
      const result = await this.request(uri, () =>
        this.client.send(
          new DeleteObjectsCommand({
            Bucket: this.bucket,
            Delete: { Objects: batch.map((o) => ({ Key: this.objectKey(o.key) })), Quiet: true },
          }),
        ),
      );
      const refused = result.Errors?.[0];
      if (refused)
        throw this.failure(
          Object.assign(new Error(refused.Message ?? ''), { name: refused.Code ?? 'DeleteFailed' }),
          `s3://${this.bucket}/${refused.Key ?? ''}`,
        );
    }
    return objects.length;
  }

  /** The object's key in the bucket; throws `StoreKeyError` for a key that would leave the prefix. */
  private objectKey(key: string): string {
    checkKey(key);
    return this.prefix ? `${this.prefix}/${key}` : key;
  }

  /** Size and ETag of an object, or undefined when there is none (a missing bucket is an error). */
  private async head(key: string, signal?: AbortSignal): Promise<{ size: number; etag: string } | undefined> {
    const uri = this.uri(key);
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }), {
        abortSignal: signal,
      });
      return { size: head.ContentLength ?? 0, etag: head.ETag ?? '' };
    } catch (err) {
      if (s3ErrorCode(err) !== 'NotFound' && s3ErrorCode(err) !== 'NoSuchKey') throw this.failure(err, uri);
    }
    // A HEAD answer has no body, so a missing bucket and a missing key look alike: ask the bucket.
    await this.request(uri, () => this.client.send(new HeadBucketCommand({ Bucket: this.bucket })), {
      NotFound: 'NoSuchBucket',
    });
    return undefined;
  }

  /** Sends a request; a failure becomes one line naming `uri` (`rename` maps codes to clearer ones). */
  private async request<T>(uri: string, send: () => Promise<T>, rename: Record<string, string> = {}): Promise<T> {
    try {
      return await send();
    } catch (err) {
      const code = s3ErrorCode(err);
      const renamed = rename[code];
      throw this.failure(renamed ? Object.assign(new Error(''), { name: renamed }) : err, uri);
    }
  }

  private failure(err: unknown, uri: string): unknown {
    return s3Failure(err, uri, this.endpoint);
  }
}
